"""Staged and committed template imports, with their row errors."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from aid_service import tables as t
from aid_service.domain.enums import Term
from aid_service.domain.periods import AidPeriod
from aid_service.repository.common import aware

_i = t.aid_import

STAGED, COMMITTED, FAILED = 1, 2, 3


@dataclass
class StoredImport:
    """One import as kept: its target, counts, errors and, while staged, the file."""

    import_id: str
    project_code: str
    period: AidPeriod
    school_org_code: str
    school_org_path: str
    file_name: str
    file_sha256: str
    status: int
    total_rows: int
    valid_rows: int
    error_rows: int
    created_count: int
    submit: bool
    created_by: str
    created_at: datetime
    expires_at: datetime
    committed_at: datetime | None = None
    content: bytes | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)


def pack_errors(errors: list[dict[str, Any]]) -> bytes:
    """Row errors as compressed JSON."""
    return zlib.compress(json.dumps(errors, ensure_ascii=False).encode(), 6)


def unpack_errors(blob: bytes | None) -> list[dict[str, Any]]:
    """The inverse of pack_errors."""
    return json.loads(zlib.decompress(blob)) if blob else []


def _stored(row: Any, *, with_content: bool, with_errors: bool) -> StoredImport:
    return StoredImport(
        import_id=row.import_id,
        project_code=row.project_code,
        period=AidPeriod(row.school_year, Term(row.term)),
        school_org_code=row.school_org_code,
        school_org_path=row.school_org_path,
        file_name=row.file_name,
        file_sha256=row.file_sha256,
        status=row.status,
        total_rows=row.total_rows,
        valid_rows=row.valid_rows,
        error_rows=row.error_rows,
        created_count=row.created_count,
        submit=bool(row.submit),
        created_by=row.created_by,
        created_at=aware(row.created_at),  # type: ignore[arg-type]
        expires_at=aware(row.expires_at),  # type: ignore[arg-type]
        committed_at=aware(row.committed_at),
        content=row.content if with_content else None,
        errors=unpack_errors(row.errors) if with_errors else [],
    )


class ImportRepository:
    """aid_import."""

    async def insert(self, session: AsyncSession, imp: StoredImport) -> None:
        """Keep a new import."""
        await session.execute(
            _i.insert().values(
                import_id=imp.import_id,
                project_code=imp.project_code,
                school_year=imp.period.school_year,
                term=int(imp.period.term),
                school_org_code=imp.school_org_code,
                school_org_path=imp.school_org_path,
                file_name=imp.file_name,
                file_sha256=imp.file_sha256,
                content=imp.content,
                status=imp.status,
                total_rows=imp.total_rows,
                valid_rows=imp.valid_rows,
                error_rows=imp.error_rows,
                created_count=imp.created_count,
                errors=pack_errors(imp.errors) if imp.errors else None,
                submit=imp.submit,
                created_by=imp.created_by,
                created_at=imp.created_at,
                expires_at=imp.expires_at,
                committed_at=imp.committed_at,
            )
        )

    async def get(
        self,
        session: AsyncSession,
        import_id: str,
        *,
        with_content: bool = False,
        with_errors: bool = False,
    ) -> StoredImport | None:
        """One import."""
        row = (await session.execute(select(_i).where(_i.c.import_id == import_id))).first()
        return _stored(row, with_content=with_content, with_errors=with_errors) if row else None

    async def committed_with_hash(
        self,
        session: AsyncSession,
        *,
        sha256: str,
        project_code: str,
        period: AidPeriod,
        school: str,
    ) -> StoredImport | None:
        """A committed import of the same file for the same project, period and school."""
        row = (
            await session.execute(
                select(_i).where(
                    and_(
                        _i.c.file_sha256 == sha256,
                        _i.c.project_code == project_code,
                        _i.c.school_year == period.school_year,
                        _i.c.term == int(period.term),
                        _i.c.school_org_code == school,
                        _i.c.status == COMMITTED,
                    )
                )
            )
        ).first()
        return _stored(row, with_content=False, with_errors=True) if row else None

    async def finish(
        self,
        session: AsyncSession,
        import_id: str,
        *,
        status: int,
        total_rows: int,
        valid_rows: int,
        error_rows: int,
        created_count: int,
        errors: list[dict[str, Any]],
        committed_at: datetime | None,
    ) -> None:
        """Record the outcome of a commit attempt; the staged file is dropped once committed."""
        values: dict[str, Any] = {
            "status": status,
            "total_rows": total_rows,
            "valid_rows": valid_rows,
            "error_rows": error_rows,
            "created_count": created_count,
            "errors": pack_errors(errors) if errors else None,
            "committed_at": committed_at,
        }
        if status == COMMITTED:
            values["content"] = None
        await session.execute(update(_i).where(_i.c.import_id == import_id).values(**values))

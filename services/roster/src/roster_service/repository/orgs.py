"""The read copy of identity's org tree."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from roster_service import tables as t
from roster_service.repository.sql import chunks, in_subtree, ints, join_ints


@dataclass(frozen=True, slots=True)
class OrgRef:
    """An organisation as the roster knows it."""

    org_code: str
    name: str
    level: str
    parent_code: str
    org_path: str
    stages: tuple[int, ...]
    status: str

    @property
    def is_school(self) -> bool:
        """True for a school (学校)."""
        return self.level == "school"

    @property
    def active(self) -> bool:
        """False once retired (撤销)."""
        return self.status == "active"


def _org(row: object) -> OrgRef:
    return OrgRef(
        org_code=row.org_code,  # type: ignore[attr-defined]
        name=row.name,  # type: ignore[attr-defined]
        level=row.level,  # type: ignore[attr-defined]
        parent_code=row.parent_code or "",  # type: ignore[attr-defined]
        org_path=row.org_path,  # type: ignore[attr-defined]
        stages=tuple(ints(row.stages or "")),  # type: ignore[attr-defined]
        status=row.status,  # type: ignore[attr-defined]
    )


class OrgRepository:
    """Reads and maintains the org read copy."""

    async def get(self, session: AsyncSession, code: str) -> OrgRef | None:
        """One org by code."""
        row = (await session.execute(select(t.org_ref).where(t.org_ref.c.org_code == code))).first()
        return _org(row) if row else None

    async def by_codes(self, session: AsyncSession, codes: Iterable[str]) -> dict[str, OrgRef]:
        """Orgs by code (missing codes absent)."""
        wanted = sorted(set(codes))
        found: dict[str, OrgRef] = {}
        for part in chunks(wanted):
            rows = await session.execute(select(t.org_ref).where(t.org_ref.c.org_code.in_(part)))
            for row in rows:
                found[row.org_code] = _org(row)
        return found

    async def children(self, session: AsyncSession, code: str) -> list[OrgRef]:
        """Direct children of an org."""
        rows = await session.execute(
            select(t.org_ref).where(t.org_ref.c.parent_code == code).order_by(t.org_ref.c.org_code)
        )
        return [_org(r) for r in rows]

    async def in_subtree(self, session: AsyncSession, path: str) -> list[OrgRef]:
        """Every org in a subtree (the root included)."""
        rows = await session.execute(
            select(t.org_ref).where(in_subtree(t.org_ref.c.org_path, path))
        )
        return [_org(r) for r in rows]

    async def upsert(
        self,
        session: AsyncSession,
        *,
        code: str,
        name: str,
        level: str,
        parent_code: str,
        org_path: str,
        stages: Iterable[int],
        status: str,
        version: int,
        now: datetime,
    ) -> None:
        """Create or update an org; an older version never overwrites a newer one."""
        values = {
            "org_code": code,
            "name": name,
            "level": level,
            "parent_code": parent_code or None,
            "org_path": org_path,
            "stages": join_ints(stages),
            "status": status,
            "version": version,
            "updated_at": now,
        }
        insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
        stmt = insert(t.org_ref).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["org_code"],
            set_={k: stmt.excluded[k] for k in values if k != "org_code"},
            where=t.org_ref.c.version <= stmt.excluded.version,
        )
        await session.execute(stmt)

    async def set_status(
        self, session: AsyncSession, code: str, status: str, now: datetime
    ) -> None:
        """Mark an org retired (or active)."""
        await session.execute(
            update(t.org_ref)
            .where(t.org_ref.c.org_code == code)
            .values(status=status, updated_at=now)
        )

    async def move_subtree(self, session: AsyncSession, old_path: str, new_path: str) -> None:
        """Rewrite every stored path under old_path to start with new_path (the subtree moved)."""
        targets = [
            (t.org_ref, t.org_ref.c.org_path),
            (t.enrollment, t.enrollment.c.school_org_path),
            (t.membership, t.membership.c.school_org_path),
            (t.recognition, t.recognition.c.school_org_path),
            (t.issued_row, t.issued_row.c.school_org_path),
            (t.issue_batch, t.issue_batch.c.issuing_org_path),
            (t.file_import, t.file_import.c.org_path),
        ]
        cut = len(old_path) + 1
        for table, column in targets:
            await session.execute(
                update(table)
                .where(in_subtree(column, old_path))
                .values({column.name: literal(new_path, String).concat(func.substr(column, cut))})
            )

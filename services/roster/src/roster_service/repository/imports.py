"""Staged and finished file imports, SyncStudents replays."""

from __future__ import annotations

import json
import zlib
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from roster_service import tables as t
from roster_service.domain.common import RowError

MAX_STORED_ERRORS = 100_000


def pack_errors(errors: list[RowError]) -> bytes:
    """Compressed JSON of the row errors kept for the report."""
    rows = [[e.row, e.column, e.value, e.code, e.message] for e in errors[:MAX_STORED_ERRORS]]
    return zlib.compress(json.dumps(rows, ensure_ascii=False).encode())


def unpack_errors(blob: bytes | None) -> list[RowError]:
    """The row errors of a stored import."""
    if not blob:
        return []
    return [RowError(*r) for r in json.loads(zlib.decompress(blob))]


class ImportRepository:
    """file_import and sync_batch rows."""

    async def get(self, session: AsyncSession, import_id: str) -> Row[Any] | None:
        """One import."""
        return (
            await session.execute(
                select(t.file_import).where(t.file_import.c.import_id == import_id)
            )
        ).first()

    async def add(self, session: AsyncSession, values: dict[str, Any]) -> None:
        """Record an import."""
        await session.execute(insert(t.file_import).values(**values))

    async def update(self, session: AsyncSession, import_id: str, values: dict[str, Any]) -> None:
        """Change an import's record."""
        await session.execute(
            update(t.file_import).where(t.file_import.c.import_id == import_id).values(**values)
        )

    async def replay(self, session: AsyncSession, batch_id: str) -> Row[Any] | None:
        """A SyncStudents batch seen before."""
        return (
            await session.execute(select(t.sync_batch).where(t.sync_batch.c.batch_id == batch_id))
        ).first()

    async def remember(self, session: AsyncSession, values: dict[str, Any]) -> None:
        """Record a SyncStudents batch and its answer."""
        await session.execute(insert(t.sync_batch).values(**values))

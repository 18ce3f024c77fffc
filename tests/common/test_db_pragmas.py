"""Every SQLite connection is opened with the shared pragmas, the memory map included."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from zizhu_common.db import DEFAULT_MMAP_MB, Database, sqlite_mmap_bytes


async def _pragmas(path: Path) -> tuple[int, str]:
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        async with db.read() as session:
            mmap = (await session.execute(text("PRAGMA mmap_size"))).scalar_one()
            journal = (await session.execute(text("PRAGMA journal_mode"))).scalar_one()
        async with db.write() as session:
            assert (await session.execute(text("PRAGMA mmap_size"))).scalar_one() == mmap
        return int(mmap), str(journal)
    finally:
        await db.dispose()


async def test_reads_and_writes_go_through_the_configured_memory_map(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SQLITE_MMAP_MB", raising=False)
    assert await _pragmas(tmp_path / "a.db") == (DEFAULT_MMAP_MB * 1024 * 1024, "wal")
    monkeypatch.setenv("SQLITE_MMAP_MB", "64")
    assert await _pragmas(tmp_path / "b.db") == (64 * 1024 * 1024, "wal")
    monkeypatch.setenv("SQLITE_MMAP_MB", "0")
    assert await _pragmas(tmp_path / "c.db") == (0, "wal")


def test_a_malformed_size_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQLITE_MMAP_MB", "lots")
    with pytest.raises(ValueError, match="SQLITE_MMAP_MB"):
        sqlite_mmap_bytes()

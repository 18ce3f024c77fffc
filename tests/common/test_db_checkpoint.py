"""SQLite checkpoints: a bulk transaction's commit leaves the write-ahead log to a background
checkpoint, its connection gets the automatic checkpoint back, and ordinary writes keep the log
bounded (a log only checkpointed beside continuous writes was never reset: it filled the disk)."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import text
from zizhu_common.db import (
    AUTOCHECKPOINT_PAGES,
    CHECKPOINT_WAL_BYTES,
    DEFAULT_CACHE_KIB,
    Database,
    bulk_transaction,
)


async def _database_with_table(path: Path, columns: str) -> Database:
    db = Database(f"sqlite+aiosqlite:///{path}")
    async with db.write() as session:
        await session.execute(text(f"CREATE TABLE t ({columns})"))
    return db


async def _pragma(db: Database, name: str) -> int:
    async with db.write() as session:
        return int((await session.execute(text(f"PRAGMA {name}"))).scalar_one())


async def test_a_bulk_commit_is_checkpointed_after_it_returns(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    db = await _database_with_table(path, "k INTEGER PRIMARY KEY, v BLOB")
    try:
        await db.checkpoint_settled()
        main_before = os.stat(path).st_size
        async with db.write() as session:
            await bulk_transaction(session, cache_kib=64 * 1024)
            assert (await session.execute(text("PRAGMA cache_size"))).scalar_one() == -64 * 1024
            await session.execute(
                text("INSERT INTO t VALUES (:k, randomblob(2000))"),
                [{"k": i} for i in range(4000)],  # about 8 MB: over the threshold
            )
        # Committed: the rows are in the log, the database file has not grown yet.
        assert os.stat(f"{path}-wal").st_size > CHECKPOINT_WAL_BYTES
        assert os.stat(path).st_size == main_before
        async with db.read() as session:
            assert (await session.execute(text("SELECT count(*) FROM t"))).scalar_one() == 4000
        await db.checkpoint_settled()
        # The background checkpoint copied the whole log into the database file.
        assert os.stat(path).st_size > main_before + 4000 * 2000
        # The pooled connection is back to SQLite's defaults.
        assert await _pragma(db, "wal_autocheckpoint") == AUTOCHECKPOINT_PAGES
        assert await _pragma(db, "cache_size") == -DEFAULT_CACHE_KIB
    finally:
        await db.dispose()


async def test_a_failed_bulk_transaction_also_gives_the_defaults_back(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'f.db'}")
    try:
        try:
            async with db.write() as session:
                await bulk_transaction(session)
                raise RuntimeError("the import fails")
        except RuntimeError:
            pass
        assert await _pragma(db, "wal_autocheckpoint") == AUTOCHECKPOINT_PAGES
    finally:
        await db.dispose()


async def test_continuous_writes_keep_the_log_bounded(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    db = await _database_with_table(path, "k INTEGER PRIMARY KEY, v BLOB")
    try:
        largest = 0
        for n in range(60):  # 60 commits of about 1 MB, one right after the other
            async with db.write() as session:
                await session.execute(
                    text("INSERT INTO t VALUES (:k, randomblob(2000))"),
                    [{"k": n * 500 + i} for i in range(500)],
                )
            largest = max(largest, os.stat(f"{path}-wal").st_size)
        # The log is reused once checkpointed: a few times the threshold at most, not 60 MB.
        assert largest < 4 * CHECKPOINT_WAL_BYTES
        # Ordinary commits leave checkpoints to SQLite: none started in the background (the
        # log file keeps its size once grown, so a size test alone would start one each time).
        assert db._checkpointing is None
    finally:
        await db.dispose()


async def test_small_commits_start_no_background_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    db = await _database_with_table(path, "k INTEGER PRIMARY KEY")
    try:
        for i in range(20):
            async with db.write() as session:
                await session.execute(text("INSERT INTO t VALUES (:k)"), {"k": i})
        assert os.stat(f"{path}-wal").st_size <= CHECKPOINT_WAL_BYTES
        assert db._checkpointing is None
    finally:
        await db.dispose()

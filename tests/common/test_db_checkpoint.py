"""SQLite commits leave the write-ahead log to a background checkpoint: the commit that crosses
the threshold does not copy the log into the database file itself."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import text
from zizhu_common.db import CHECKPOINT_WAL_BYTES, Database


async def test_a_large_commit_is_checkpointed_after_it_returns(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        async with db.write() as session:
            await session.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)"))
        await db.checkpoint_settled()
        main_before = os.stat(path).st_size
        async with db.write() as session:
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
    finally:
        await db.dispose()


async def test_small_commits_start_no_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        async with db.write() as session:
            await session.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY)"))
        for i in range(20):
            async with db.write() as session:
                await session.execute(text("INSERT INTO t VALUES (:k)"), {"k": i})
        assert os.stat(f"{path}-wal").st_size <= CHECKPOINT_WAL_BYTES
        assert db._checkpointing is None
    finally:
        await db.dispose()

"""Process and database settings reconcile applies at start (and its ingest benchmark mirrors)."""

from __future__ import annotations

import gc
from pathlib import Path

from reconcile_service.wiring import (
    GC_THRESHOLDS,
    SQLITE_CACHE_KIB,
    SQLITE_WAL_CHECKPOINT_PAGES,
    tune_database,
    tune_process,
)
from sqlalchemy import text
from zizhu_common.db import Database


def test_tune_process_raises_the_collection_thresholds_and_freezes_start_up_objects() -> None:
    before = gc.get_threshold()
    try:
        tune_process()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
        assert gc.isenabled(), "cycles are still collected"
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


async def test_tune_database_sets_the_sqlite_cache_and_checkpoint_on_every_connection(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/tuned.db")
    tune_database(db)
    try:
        async with db.write() as session:
            cache = (await session.execute(text("PRAGMA cache_size"))).scalar_one()
            ckpt = (await session.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one()
        assert (cache, ckpt) == (-SQLITE_CACHE_KIB, SQLITE_WAL_CHECKPOINT_PAGES)
        async with db.read() as session:
            cache = (await session.execute(text("PRAGMA cache_size"))).scalar_one()
        assert cache == -SQLITE_CACHE_KIB
    finally:
        await db.dispose()

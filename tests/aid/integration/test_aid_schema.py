"""The hand-written migrations build exactly the tables the code declares, on SQLite and
PostgreSQL, and downgrade cleanly."""

from __future__ import annotations

import asyncio

from aid_service import tables
from aid_service.settings import Settings
from aid_service.wiring import MIGRATIONS_DIR, migrate
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from zizhu_common.migrations import alembic_config


async def test_migrations_match_the_declared_tables(database_url: str) -> None:
    await asyncio.to_thread(migrate, Settings(zizhu_env="test", database_url=database_url))
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), tables.metadata
                )
            )
    finally:
        await engine.dispose()
    assert diff == []
    cfg = alembic_config(script_location=MIGRATIONS_DIR, database_url=database_url)
    await asyncio.to_thread(command.downgrade, cfg, "aid_0001")
    await asyncio.to_thread(command.upgrade, cfg, "head")

"""The demo seed is complete and idempotent."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from roster_service import tables
from roster_service.demo import seed_demo
from roster_service.events import OrgCopyConsumer
from roster_service.wiring import build_services, migrate
from zizhu_common.db import Database
from zizhu_common.outbox import Outbox
from zizhu_contracts.identity.v1 import identity_pb2

from tests.roster.conftest import ORGS, roster_settings

EXTRA = [
    ("3644010001", "广州市轻工职业学校", 5, "440100", "/000000/440000/440100/3644010001/", [4]),
    ("4144010558", "中山大学", 5, "000000", "/000000/4144010558/", [5, 6]),
]


async def test_demo_seed_is_idempotent(sqlite_database_url):
    settings = roster_settings(sqlite_database_url)
    await asyncio.to_thread(migrate, settings)
    db = Database(settings.database_url)
    services = build_services(
        settings, db=db, outbox=Outbox(tables.outbox_event, producer="roster")
    )
    consumer = OrgCopyConsumer(services.deps.orgs)
    async with db.write() as session:
        for code, name, level, parent, path, stages in ORGS + EXTRA:
            org = identity_pb2.Org(
                org_code=code, name=name, level=level, parent_code=parent, org_path=path,
                stages=stages, status=1, version=1,
            )  # fmt: skip
            await consumer.apply_org(session, org, datetime.now(UTC))
    try:
        assert await seed_demo(services) == []
        counts = {}
        for table in ("student", "membership", "recognition", "issue_batch", "group_default_level"):
            async with db.read() as session:
                from sqlalchemy import func, select

                counts[table] = (
                    await session.execute(
                        select(func.count()).select_from(tables.metadata.tables[table])
                    )
                ).scalar_one()
        assert counts["student"] == 31 and counts["issue_batch"] == 1
        assert counts["membership"] == 8 and counts["recognition"] == 3
        events = await _count_events(db)
        await seed_demo(services)
        async with db.read() as session:
            again = (
                await session.execute(select(func.count()).select_from(tables.membership))
            ).scalar_one()
        assert again == counts["membership"]
        assert await _count_events(db) == events
    finally:
        await db.dispose()


async def _count_events(db: Database) -> int:
    from sqlalchemy import func, select

    async with db.read() as session:
        return int(
            (
                await session.execute(select(func.count()).select_from(tables.outbox_event))
            ).scalar_one()
        )

"""A roster servicer on a real gRPC server (port 0) over SQLite and PostgreSQL, with the org read
copy seeded from identity's Org messages, and callers at each level of the demo tree."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from roster_service import tables
from roster_service.events import OrgCopyConsumer
from roster_service.grpc_api import SERVICE_NAME, RosterServicer
from roster_service.service import RosterServices
from roster_service.settings import Settings
from roster_service.wiring import build_services, migrate
from zizhu_common.db import Database
from zizhu_common.outbox import Outbox
from zizhu_common.rpc import CallerContext, GrpcServer, open_channel
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.identity.v1 import identity_pb2
from zizhu_contracts.roster.v1 import roster_pb2_grpc

NAT = "/000000/"
GD = "/000000/440000/"
GZ = "/000000/440000/440100/"
TH = "/000000/440000/440100/440106/"
BY = "/000000/440000/440100/440111/"
SZ = "/000000/440000/440300/"
HUAYANG = TH + "2144010601/"  # 广州市天河区华阳小学 (义务教育)
TIANHE_MS = TH + "3444010601/"  # 广州市天河中学 (义务教育, 普通高中)
BAIYUN_KG = BY + "1144011101/"  # 广州市白云区实验幼儿园 (学前)
BAIYUN_PS = BY + "2144011102/"  # 白云区第二小学 (义务教育)
SZ_PS = SZ + "2144030001/"  # 深圳市 a school outside 广州

# (code, name, level, parent, path, stages)
ORGS = [
    ("000000", "全国", 1, "", NAT, []),
    ("440000", "广东省", 2, "000000", GD, []),
    ("440100", "广州市", 3, "440000", GZ, []),
    ("440300", "深圳市", 3, "440000", SZ, []),
    ("440106", "天河区", 4, "440100", TH, []),
    ("440111", "白云区", 4, "440100", BY, []),
    ("2144010601", "广州市天河区华阳小学", 5, "440106", HUAYANG, [2]),
    ("3444010601", "广州市天河中学", 5, "440106", TIANHE_MS, [2, 3]),
    ("1144011101", "广州市白云区实验幼儿园", 5, "440111", BAIYUN_KG, [1]),
    ("2144011102", "广州市白云区第二小学", 5, "440111", BAIYUN_PS, [2]),
    ("2144030001", "深圳市福田区第一小学", 5, "440300", SZ_PS, [2]),
]


def caller(path: str, level: str, *roles: str, account: str | None = None) -> CallerContext:
    """A caller at the org whose path is given."""
    code = path.strip("/").split("/")[-1]
    return CallerContext(
        account_id=account or f"acc-{code}-{'-'.join(roles) or 'viewer'}",
        org_code=code,
        org_path=path,
        level=level,
        roles=frozenset(roles or ("viewer",)),
        request_id=uuid.uuid4().hex,
    )


NATION = caller(NAT, "national", "operator", "admin")
PROVINCE = caller(GD, "province", "operator", "admin")
COUNTY_TH = caller(TH, "county", "viewer", "auditor")
COUNTY_BY = caller(BY, "county", "viewer", "auditor")
SCHOOL_HY = caller(HUAYANG, "school", "operator")
SCHOOL_HY_AUDITOR = caller(HUAYANG, "school", "auditor")
SCHOOL_MS = caller(TIANHE_MS, "school", "operator")
SCHOOL_BYPS = caller(BAIYUN_PS, "school", "operator")
SCHOOL_SZ = caller(SZ_PS, "school", "operator")
VIEWER_TH = caller(TH, "county", "viewer")


def md(c: CallerContext) -> list[tuple[str, str]]:
    """gRPC metadata of a caller."""
    return c.to_metadata()


@dataclass
class Roster:
    """The service under test."""

    services: RosterServices
    stub: roster_pb2_grpc.RosterServiceStub
    db: Database

    async def outbox_subjects(self) -> list[str]:
        from sqlalchemy import select

        async with self.db.read() as session:
            rows = await session.execute(
                select(tables.outbox_event.c.subject).order_by(tables.outbox_event.c.id)
            )
            return list(rows.scalars())

    async def outbox_events(self, subject: str) -> list[bytes]:
        from sqlalchemy import select

        async with self.db.read() as session:
            rows = await session.execute(
                select(tables.outbox_event.c.payload)
                .where(tables.outbox_event.c.subject == subject)
                .order_by(tables.outbox_event.c.id)
            )
            return list(rows.scalars())

    async def count(self, table: str) -> int:
        from sqlalchemy import func, select

        async with self.db.read() as session:
            return int(
                (
                    await session.execute(
                        select(func.count()).select_from(tables.metadata.tables[table])
                    )
                ).scalar_one()
            )


async def seed_orgs(services: RosterServices) -> None:
    """Write the org read copy as identity's events would."""
    consumer = OrgCopyConsumer(services.deps.orgs)
    now = datetime.now(UTC)
    async with services.deps.db.write() as session:
        for code, name, level, parent, path, stages in ORGS:
            org = identity_pb2.Org(
                org_code=code,
                name=name,
                level=level,
                parent_code=parent,
                org_path=path,
                stages=stages,
                status=1,
                version=1,
            )
            await consumer.apply_org(session, org, now)


def roster_settings(database_url: str) -> Settings:
    return Settings(zizhu_env="test", database_url=database_url, consume_identity=False)


@pytest.fixture
async def roster(database_url: str) -> AsyncIterator[Roster]:
    settings = roster_settings(database_url)
    await asyncio.to_thread(migrate, settings)
    db = Database(settings.database_url)
    outbox = Outbox(tables.outbox_event, producer="roster")
    services = build_services(settings, db=db, outbox=outbox)
    await seed_orgs(services)
    server = GrpcServer(host="127.0.0.1", port=0, service_names=[SERVICE_NAME])
    server.add(roster_pb2_grpc.add_RosterServiceServicer_to_server, RosterServicer(services))
    await server.start()
    channel = open_channel(f"127.0.0.1:{server.port}")
    try:
        yield Roster(services=services, stub=roster_pb2_grpc.RosterServiceStub(channel), db=db)
    finally:
        await services.groups.drain()
        services.deps.close()
        await channel.close()
        await server.stop(grace=0.1)
        await db.dispose()


__all__ = ["common_pb2"]

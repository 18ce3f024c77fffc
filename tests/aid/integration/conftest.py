"""One aid + roster environment per module and database dialect (aid on SQLite and on
PostgreSQL); tests keep apart by using their own students, projects and schools."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aid_harness import NATION, NOW, PERIOD, Clock, Env, org_events
from aid_service import tables
from aid_service.grpc_api import SERVICE_NAME, AidServicer
from aid_service.roster import GrpcRoster
from aid_service.settings import Settings
from aid_service.wiring import build_services, migrate
from roster_service import tables as roster_tables
from roster_service.events import OrgCopyConsumer
from roster_service.grpc_api import SERVICE_NAME as ROSTER_SERVICE
from roster_service.grpc_api import RosterServicer
from roster_service.settings import Settings as RosterSettings
from roster_service.wiring import build_services as build_roster
from roster_service.wiring import migrate as migrate_roster
from zizhu_common.db import Database
from zizhu_common.outbox import Outbox
from zizhu_common.rpc import CallerContext, GrpcServer, open_channel
from zizhu_contracts.aid.v1 import aid_pb2, aid_pb2_grpc
from zizhu_contracts.roster.v1 import roster_pb2_grpc

SYSTEM = CallerContext.system(job="aid-test")


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Env]:
    tmp = tmp_path_factory.mktemp("aid")
    if request.param == "postgres":
        pg = request.getfixturevalue("postgres_server")
        name = f"aid_{uuid.uuid4().hex[:12]}"
        pg.create_database(name)
        aid_url = pg.url(name)
    else:
        aid_url = f"sqlite+aiosqlite:///{tmp / 'aid.db'}"
    roster_settings = RosterSettings(
        zizhu_env="test", database_url=f"sqlite+aiosqlite:///{tmp / 'roster.db'}",
        consume_identity=False,
    )  # fmt: skip
    settings = Settings(zizhu_env="test", database_url=aid_url)
    # One after the other: Alembic's operation context is process-global.
    await asyncio.to_thread(migrate_roster, roster_settings)
    await asyncio.to_thread(migrate, settings)
    roster_db = Database(roster_settings.database_url)
    roster = build_roster(
        roster_settings, db=roster_db, outbox=Outbox(roster_tables.outbox_event, producer="roster")
    )
    db = Database(aid_url)
    events = org_events()
    async with roster_db.write() as session:
        await OrgCopyConsumer(roster.deps.orgs).handle(session, events)
    roster_server = GrpcServer(host="127.0.0.1", port=0, service_names=[ROSTER_SERVICE])
    roster_server.add(roster_pb2_grpc.add_RosterServiceServicer_to_server, RosterServicer(roster))
    await roster_server.start()
    roster_channel = open_channel(f"127.0.0.1:{roster_server.port}")
    clock = Clock()
    services = build_services(
        settings, db=db, outbox=Outbox(tables.outbox_event, producer="aid"),
        roster=GrpcRoster(roster_channel, timeout_s=60),
    )  # fmt: skip
    services.deps.clock = clock
    async with db.write() as session:
        await services.orgs.apply_events(session, events)
    await services.projects.ensure_catalogue(SYSTEM)
    server = GrpcServer(host="127.0.0.1", port=0, service_names=[SERVICE_NAME])
    server.add(aid_pb2_grpc.add_AidServiceServicer_to_server, AidServicer(services))
    await server.start()
    channel = open_channel(f"127.0.0.1:{server.port}")
    stub = aid_pb2_grpc.AidServiceStub(channel)
    await stub.OpenPeriod(
        aid_pb2.OpenPeriodRequest(period=PERIOD), metadata=NATION.to_metadata(), timeout=30
    )
    try:
        env = Env(
            aid=stub,
            roster=roster_pb2_grpc.RosterServiceStub(roster_channel),
            services=services,
            db=db,
            clock=clock,
            dialect=request.param,
        )
        env.made["roster_services"] = roster
        yield env
    finally:
        await channel.close()
        await server.stop(grace=0.1)
        await roster_channel.close()
        await roster_server.stop(grace=0.1)
        await roster.groups.drain()
        await db.dispose()
        await roster_db.dispose()


@pytest.fixture(autouse=True)
def _reset_clock(request: pytest.FixtureRequest) -> None:
    """Every test starts at NOW."""
    if "env" in request.fixturenames:
        request.getfixturevalue("env").clock.set(NOW)


@pytest.fixture
def roster_services(env: Env):
    """The roster service layer behind the env's roster server (for its demo seed)."""
    return env.made["roster_services"]

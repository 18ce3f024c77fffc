"""A running reconcile servicer over a real gRPC channel, on SQLite and PostgreSQL, with real
Redis (the run lock) and a private nats-server whose producer streams each test starts empty."""

from __future__ import annotations

import asyncio
import concurrent.futures
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from reconcile_service import tables
from reconcile_service.events import HANDLERS, SOURCES
from reconcile_service.grpc_api import SERVICE_NAME, ReconcileServicer
from reconcile_service.settings import Settings
from reconcile_service.wiring import build_services, migrate
from reconcile_world import Clock, Feed, World
from zizhu_common import devservers
from zizhu_common.consumer import DurableConsumer
from zizhu_common.db import Database
from zizhu_common.messaging import connect_nats, ensure_producer_stream, stream_for
from zizhu_common.outbox import Outbox
from zizhu_common.redis_client import connect_redis
from zizhu_common.rpc import GrpcServer, open_channel
from zizhu_contracts.reconcile.v1 import reconcile_pb2_grpc


@pytest.fixture(scope="session")
def reconcile_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devservers.NatsServer]:
    """A nats-server of our own: each test purges the producer streams it feeds."""
    server = devservers.start_nats(data_dir=tmp_path_factory.mktemp("rc-nats"), sync_always=False)
    try:
        yield server
    finally:
        server.stop()


def _in_thread(fn, *args):  # type: ignore[no-untyped-def]
    # Alembic runs its own event loop; fixtures may be set up inside the test loop.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


@pytest.fixture(scope="session")
def reconcile_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file each test copies (migrating once per session, not per test)."""
    path = tmp_path_factory.mktemp("rc-template") / "reconcile.db"
    _in_thread(migrate, Settings(zizhu_env="test", database_url=f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def reconcile_pg_template(postgres_server) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A migrated PostgreSQL database each test clones with CREATE DATABASE … TEMPLATE."""
    name = f"rc_tpl_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(name)
    _in_thread(migrate, Settings(zizhu_env="test", database_url=postgres_server.url(name)))
    yield name
    postgres_server.drop_database(name)


async def _pg(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"), timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, migrated reconcile database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "reconcile.db"
        shutil.copy(request.getfixturevalue("reconcile_sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    server = request.getfixturevalue("postgres_server")
    template = request.getfixturevalue("reconcile_pg_template")
    name = f"t_{uuid.uuid4().hex[:16]}"
    await _pg(server.url("postgres"), f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield server.url(name)
    await _pg(server.url("postgres"), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def reconcile_settings(database_url: str, redis_url: str, nats_url: str) -> Settings:
    return Settings(
        zizhu_env="test",
        database_url=database_url,
        redis_url=redis_url,
        nats_url=nats_url,
        daily_run_enabled=False,
        consumer_batch_size=500,
    )


@pytest.fixture
async def world(
    database_url: str, redis_server, reconcile_nats: devservers.NatsServer, tmp_path: Path
) -> AsyncIterator[World]:
    settings = reconcile_settings(database_url, redis_server.url, reconcile_nats.url)
    db = Database(settings.database_url)
    outbox = Outbox(tables.outbox_event, producer="reconcile")
    redis = connect_redis(settings.redis_url)
    await redis.delete("reconcile:lock:run")
    nc = await connect_nats(settings.nats_url, name="reconcile-test")
    js = nc.jetstream(timeout=10)
    for producer in ("identity", "roster", "aid", "funding", "reconcile"):
        await ensure_producer_stream(js, producer=producer, duplicate_window_s=120, replicas=1)
        await js.purge_stream(stream_for(producer))
    services = build_services(settings, db=db, outbox=outbox, redis=redis)
    clock = Clock()
    services.deps.clock = clock
    consumers = []
    for source in SOURCES:
        try:
            await js.delete_consumer(stream_for(source.producer), source.durable)
        except Exception:
            pass
        consumers.append(
            DurableConsumer(
                js=js,
                db=db,
                table=tables.processed_event,
                stream=stream_for(source.producer),
                durable=source.durable,
                subjects=list(source.subjects),
                handler=HANDLERS[source.producer],
                batch_size=settings.consumer_batch_size,
            )
        )
    server = GrpcServer(host="127.0.0.1", port=0, service_names=[SERVICE_NAME])
    server.add(
        reconcile_pb2_grpc.add_ReconcileServiceServicer_to_server, ReconcileServicer(services)
    )
    await server.start()
    channel = open_channel(f"127.0.0.1:{server.port}")
    feed = Feed(js, lambda n: services.deps.blind_index(n))
    w = World(
        services, reconcile_pb2_grpc.ReconcileServiceStub(channel), feed, clock, db, js, consumers
    )
    w.start_consumers()
    try:
        yield w
    finally:
        for task in list(services.runs.tasks.values()):
            await asyncio.gather(task, return_exceptions=True)
        await w.stop_consumers()
        await channel.close()
        await server.stop(grace=0)
        await nc.close()
        await redis.aclose()
        await db.dispose()

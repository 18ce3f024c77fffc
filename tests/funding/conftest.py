"""The funding service running for real: database (SQLite and PostgreSQL), gRPC over a channel,
durable consumers and outbox relay on a private nats-server (so no other test's events reach
it), fed with the demo org tree and two national projects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from funding_harness import Harness, project_created, tree_events
from funding_service import tables
from funding_service.events import AID_SUBJECTS, IDENTITY_ORG_SUBJECTS
from funding_service.grpc_api import SERVICE_NAME, FundingServicer
from funding_service.settings import Settings
from funding_service.wiring import build_services, migrate
from zizhu_common import devservers
from zizhu_common.consumer import DurableConsumer
from zizhu_common.db import Database
from zizhu_common.messaging import connect_nats, ensure_producer_stream
from zizhu_common.outbox import Outbox, OutboxRelay
from zizhu_common.rpc import GrpcServer, open_channel
from zizhu_contracts.funding.v1 import funding_pb2_grpc


@pytest.fixture
async def funding(
    database_url: str, nats_server_factory: Callable[..., devservers.NatsServer], tmp_path: Path
) -> AsyncIterator[Harness]:
    settings = Settings(zizhu_env="test", database_url=database_url)
    await asyncio.to_thread(migrate, settings)
    nats = nats_server_factory(sync_always=False)
    nc = await connect_nats(nats.url, name="funding-test")
    js = nc.jetstream(timeout=10)
    for producer in ("funding", "identity", "aid"):
        await ensure_producer_stream(js, producer=producer, duplicate_window_s=120, replicas=1)
    db = Database(database_url)
    outbox = Outbox(tables.outbox_event, producer="funding")
    services = build_services(db=db, outbox=outbox)
    consumers = {
        "identity": DurableConsumer(
            js=js, db=db, table=tables.processed_event, stream="IDENTITY",
            durable="funding-identity-org", subjects=IDENTITY_ORG_SUBJECTS,
            handler=services.feeds.apply_identity_events, fetch_timeout_s=0.2,
        ),
        "aid": DurableConsumer(
            js=js, db=db, table=tables.processed_event, stream="AID", durable="funding-aid",
            subjects=AID_SUBJECTS, handler=services.feeds.apply_aid_events, fetch_timeout_s=0.2,
        ),
    }  # fmt: skip
    stop = asyncio.Event()
    tasks = [asyncio.create_task(c.run(stop)) for c in consumers.values()]
    server = GrpcServer(host="127.0.0.1", port=0, service_names=[SERVICE_NAME])
    server.add(funding_pb2_grpc.add_FundingServiceServicer_to_server, FundingServicer(services))
    await server.start()
    channel = open_channel(f"127.0.0.1:{server.port}")
    harness = Harness(
        services=services,
        stub=funding_pb2_grpc.FundingServiceStub(channel),
        db=db,
        outbox=outbox,
        relay=OutboxRelay(db=db, outbox=outbox, js=js),
        nc=nc,
        js=js,
        consumers=consumers,
    )
    await harness.feed(
        [
            *tree_events(),
            project_created("XQ01", "学前教育政府资助"),
            project_created("PG01", "普通高中国家助学金"),
            project_created("TH-ZX", "天河区助学金", owner="440106"),
        ]
    )
    try:
        yield harness
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await channel.close()
        await server.stop(grace=0.1)
        await nc.close()
        await db.dispose()

"""Composition root of the funding service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zizhu_common.db import Database
from zizhu_common.migrations import upgrade_to_head
from zizhu_common.outbox import Outbox
from zizhu_common.runtime import ServiceRuntime
from zizhu_contracts.funding.v1 import funding_pb2_grpc

from funding_service import tables
from funding_service.events import AID_SUBJECTS, IDENTITY_ORG_SUBJECTS
from funding_service.grpc_api import SERVICE_NAME, FundingServicer
from funding_service.service import Deps, FundingServices
from funding_service.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def migrate(settings: Settings) -> None:
    """Bring the funding database to the latest schema."""
    upgrade_to_head(script_location=MIGRATIONS_DIR, database_url=settings.database_url)


def build_services(*, db: Database, outbox: Outbox) -> FundingServices:
    """The use cases over the given infrastructure (also used by tests, the demo and bench)."""
    return FundingServices(Deps.create(db, outbox))


async def build(settings: Settings) -> ServiceRuntime:
    """Start the infrastructure and register the funding servicer and consumers."""
    runtime = ServiceRuntime(
        settings=settings,
        producer="funding",
        metadata=tables.metadata,
        migrations_dir=MIGRATIONS_DIR,
    )
    await runtime.start_infrastructure()
    services = build_services(db=runtime.db, outbox=runtime.outbox)
    runtime.add_grpc(
        funding_pb2_grpc.add_FundingServiceServicer_to_server,
        FundingServicer(services),
        SERVICE_NAME,
    )
    await runtime.add_consumer(
        source="identity",
        durable="funding-identity-org",
        subjects=IDENTITY_ORG_SUBJECTS,
        handler=services.feeds.apply_identity_events,
    )
    await runtime.add_consumer(
        source="aid",
        durable="funding-aid",
        subjects=AID_SUBJECTS,
        handler=services.feeds.apply_aid_events,
    )
    return runtime


async def seed_demo_data(settings: Settings) -> list[dict[str, Any]]:
    """`seed-demo`: funding's part of the demo data, written through the use cases and the
    outbox of the running service's database (its relay publishes the events)."""
    from funding_service.demo import seed_demo

    db = Database(settings.database_url)
    try:
        outbox = Outbox(tables.outbox_event, producer="funding")
        await seed_demo(build_services(db=db, outbox=outbox))
    finally:
        await db.dispose()
    return []

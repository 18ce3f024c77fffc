"""Composition root of the roster service."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from zizhu_common.aio import wait_or_stop
from zizhu_common.crypto import FieldCipher, personal_data_cipher
from zizhu_common.db import Database
from zizhu_common.migrations import upgrade_to_head
from zizhu_common.outbox import Outbox
from zizhu_common.runtime import ServiceRuntime
from zizhu_contracts.roster.v1 import roster_pb2_grpc

from roster_service import tables
from roster_service.events import IDENTITY_ORG_SUBJECTS, OrgCopyConsumer
from roster_service.grpc_api import SERVICE_NAME, RosterServicer
from roster_service.prepare import PreparePool
from roster_service.service import Deps, RosterServices
from roster_service.settings import Settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def migrate(settings: Settings) -> None:
    """Bring the roster database to the latest schema."""
    upgrade_to_head(script_location=MIGRATIONS_DIR, database_url=settings.database_url)


def field_cipher(settings: Settings) -> FieldCipher:
    """The SM4 cipher and HMAC-SM3 blind index of personal data (same key scheme as identity)."""
    return personal_data_cipher(
        settings.personal_data_key,
        key_id=settings.personal_data_key_id,
        previous_keys=settings.personal_data_previous_keys,
    )


def build_services(settings: Settings, *, db: Database, outbox: Outbox) -> RosterServices:
    """The use cases over the given infrastructure (also used by tests, benches and the demo)."""
    previous = dict(
        part.split("=", 1)
        for part in settings.personal_data_previous_keys.split(",")
        if "=" in part
    )
    pool = (
        PreparePool(
            workers=settings.sync_workers,
            secret=settings.personal_data_key,
            key_id=settings.personal_data_key_id,
            previous=previous,
            index_secret=previous.get("index", settings.personal_data_key),
        )
        if settings.sync_workers > 0
        else None
    )
    return RosterServices(
        Deps(settings=settings, db=db, outbox=outbox, cipher=field_cipher(settings), pool=pool)
    )


async def build(settings: Settings) -> ServiceRuntime:
    """Start the infrastructure and register the roster servicer and consumers."""
    runtime = ServiceRuntime(
        settings=settings,
        producer="roster",
        metadata=tables.metadata,
        migrations_dir=MIGRATIONS_DIR,
    )
    await runtime.start_infrastructure()
    services = build_services(settings, db=runtime.db, outbox=runtime.outbox)
    runtime.add_grpc(
        roster_pb2_grpc.add_RosterServiceServicer_to_server, RosterServicer(services), SERVICE_NAME
    )
    if settings.consume_identity:
        await runtime.add_consumer(
            source="identity",
            durable="roster-org-copy",
            subjects=IDENTITY_ORG_SUBJECTS,
            handler=OrgCopyConsumer(services.deps.orgs).handle,
        )

    async def resume_matching(stop: asyncio.Event) -> None:
        # Batches left MATCHING by a crash or restart are matched again (one transaction each).
        while not stop.is_set():
            try:
                await services.groups.resume()
            except Exception:
                log.exception("resuming special-group matching failed; will retry")
            await wait_or_stop(stop, 300)
        await services.groups.drain()
        services.deps.close()

    runtime.add_background(resume_matching)
    return runtime


async def seed_demo_data(settings: Settings) -> list[dict[str, object]]:
    """`seed-demo`: the roster's demo data through the use cases and the outbox (the running
    service's relay publishes the events)."""
    from roster_service.demo import seed_demo

    db = Database(settings.database_url)
    try:
        outbox = Outbox(tables.outbox_event, producer="roster")
        services = build_services(settings, db=db, outbox=outbox)
        try:
            return list(await seed_demo(services))
        finally:
            services.deps.close()
    finally:
        await db.dispose()

"""Composition root of the aid service."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from zizhu_common.aio import wait_or_stop
from zizhu_common.crypto import FieldCipher, personal_data_cipher
from zizhu_common.db import Database
from zizhu_common.migrations import upgrade_to_head
from zizhu_common.outbox import Outbox
from zizhu_common.rpc import CallerContext, open_channel
from zizhu_common.runtime import ServiceRuntime
from zizhu_contracts.aid.v1 import aid_pb2_grpc

from aid_service import tables
from aid_service.domain.catalogue import NATIONAL_ORG
from aid_service.events import ORG_SUBJECTS
from aid_service.grpc_api import SERVICE_NAME, AidServicer
from aid_service.roster import GrpcRoster, Roster
from aid_service.service import AidServices, Deps
from aid_service.settings import Settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
PURGE_INTERVAL_S = 3600.0


def migrate(settings: Settings) -> None:
    """Bring the aid database to the latest schema."""
    upgrade_to_head(script_location=MIGRATIONS_DIR, database_url=settings.database_url)


def field_cipher(settings: Settings) -> FieldCipher:
    """SM4 encryption of bank card numbers and the HMAC-SM3 blind index of ID numbers."""
    return personal_data_cipher(
        settings.personal_data_key,
        key_id=settings.personal_data_key_id,
        previous_keys=settings.personal_data_previous_keys,
    )


def build_services(
    settings: Settings, *, db: Database, outbox: Outbox, roster: Roster
) -> AidServices:
    """The use cases over the given infrastructure (also used by tests, bench and demo seed)."""
    return AidServices(
        Deps(
            settings=settings,
            db=db,
            outbox=outbox,
            roster=roster,
            cipher=field_cipher(settings),
        )
    )


async def build(settings: Settings) -> ServiceRuntime:
    """Start the infrastructure and register the aid servicer and consumers."""
    runtime = ServiceRuntime(
        settings=settings, producer="aid", metadata=tables.metadata, migrations_dir=MIGRATIONS_DIR
    )
    await runtime.start_infrastructure()
    roster = GrpcRoster(open_channel(settings.roster_addr), timeout_s=settings.roster_timeout_s)
    services = build_services(settings, db=runtime.db, outbox=runtime.outbox, roster=roster)
    if settings.root_org_code == NATIONAL_ORG:
        try:
            created = await services.projects.ensure_catalogue(
                CallerContext.system(job="catalogue")
            )
            if created:
                log.info("national aid projects created: %d", created)
        except Exception:
            log.exception("could not create the national aid projects; will retry at next start")
    runtime.add_grpc(
        aid_pb2_grpc.add_AidServiceServicer_to_server, AidServicer(services), SERVICE_NAME
    )
    await runtime.add_consumer(
        source="identity",
        durable="aid-org-copy",
        subjects=ORG_SUBJECTS,
        handler=services.orgs.apply_events,
    )

    async def purge_imports(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await services.imports.purge_expired()
            except Exception:
                log.exception("purging expired imports failed; will retry")
            await wait_or_stop(stop, PURGE_INTERVAL_S)

    runtime.add_background(purge_imports)
    return runtime


async def seed_demo_data(settings: Settings) -> list[dict[str, Any]]:
    """`seed-demo`: aid's part of the demo data, written through the use cases and the outbox
    (the running service's relay publishes the events); roster is asked over gRPC."""
    from aid_service.demo import seed_demo

    db = Database(settings.database_url)
    channel = open_channel(settings.roster_addr)
    try:
        outbox = Outbox(tables.outbox_event, producer="aid")
        services = build_services(
            settings, db=db, outbox=outbox, roster=GrpcRoster(channel, timeout_s=30)
        )
        await seed_demo(services)
    finally:
        await channel.close()
        await db.dispose()
    return []

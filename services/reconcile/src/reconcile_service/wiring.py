"""Composition root of the reconcile service."""

from __future__ import annotations

import logging
from pathlib import Path

from nats.js import JetStreamContext
from redis.asyncio import Redis
from zizhu_common.crypto import FieldCipher
from zizhu_common.db import Database
from zizhu_common.messaging import stream_for
from zizhu_common.migrations import upgrade_to_head
from zizhu_common.outbox import Outbox
from zizhu_common.runtime import ServiceRuntime
from zizhu_contracts.reconcile.v1 import reconcile_pb2_grpc

from reconcile_service import tables
from reconcile_service.events import CONSUMERS, HANDLERS, SOURCES
from reconcile_service.grpc_api import SERVICE_NAME, ReconcileServicer
from reconcile_service.lock import RunLock
from reconcile_service.repository.readcopy import clear_read_copy
from reconcile_service.scheduler import DailyScheduler
from reconcile_service.service import Deps, ReconcileServices
from reconcile_service.settings import Settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def migrate(settings: Settings) -> None:
    """Bring the reconcile database to the latest schema."""
    upgrade_to_head(script_location=MIGRATIONS_DIR, database_url=settings.database_url)


def field_cipher(settings: Settings) -> FieldCipher:
    """The blind index of ID numbers, keyed exactly as roster keys it (the person key)."""
    previous = dict(
        part.split("=", 1)
        for part in settings.personal_data_previous_keys.split(",")
        if "=" in part
    )
    return FieldCipher(
        settings.personal_data_key,
        index_secret=previous.get("index", settings.personal_data_key),
    )


def build_services(
    settings: Settings, *, db: Database, outbox: Outbox, redis: Redis | None
) -> ReconcileServices:
    """The use cases over the given infrastructure (also used by tests, the demo and bench)."""
    deps = Deps(
        settings=settings,
        db=db,
        outbox=outbox,
        lock=RunLock(redis, lease_s=settings.run_lock_lease_s),
        cipher=field_cipher(settings),
    )
    return ReconcileServices(deps)


async def build(settings: Settings) -> ServiceRuntime:
    """Start the infrastructure and register the servicer, the consumers and the 02:00 job."""
    runtime = ServiceRuntime(
        settings=settings,
        producer="reconcile",
        metadata=tables.metadata,
        migrations_dir=MIGRATIONS_DIR,
    )
    await runtime.start_infrastructure()
    services = build_services(settings, db=runtime.db, outbox=runtime.outbox, redis=runtime.redis)
    runtime.add_grpc(
        reconcile_pb2_grpc.add_ReconcileServiceServicer_to_server,
        ReconcileServicer(services),
        SERVICE_NAME,
    )
    for source in SOURCES:
        await runtime.add_consumer(
            source=source.producer,
            durable=source.durable,
            subjects=list(source.subjects),
            handler=HANDLERS[source.producer],
        )
    if settings.daily_run_enabled:
        scheduler = DailyScheduler(services.runs, settings, services.deps.now)
        runtime.add_background(scheduler.run)
    return runtime


async def rebuild_read_copy(db: Database, js: JetStreamContext) -> None:
    """Forget the read copy and the durable consumers so that the next start replays every
    input stream from the beginning (entries, reasons and findings are kept)."""
    for source in SOURCES:
        try:
            await js.delete_consumer(stream=stream_for(source.producer), consumer=source.durable)
        except Exception as exc:  # not created yet
            log.info("consumer %s not deleted: %s", source.durable, exc)
    async with db.write() as session:
        await clear_read_copy(session, CONSUMERS)

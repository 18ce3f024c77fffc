"""Composition root of the reconcile service."""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Any

from nats.js import JetStreamContext
from redis.asyncio import Redis
from sqlalchemy import event
from zizhu_common.crypto import FieldCipher, personal_data_cipher
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


# The read copy takes transactions of thousands of rows: a page cache larger than SQLite's 2 MB
# default keeps its indexes (dedup, students, records) in memory, and checkpointing the WAL
# every ~40 MB instead of every ~4 MB (each checkpoint syncs the database file) keeps ingest
# from waiting on the disk after every batch.
SQLITE_CACHE_KIB = 65_536
SQLITE_WAL_CHECKPOINT_PAGES = 10_000


def tune_database(db: Database) -> None:
    """Connection settings of reconcile's SQLite database (no-op on PostgreSQL); call before the
    first connection is opened."""
    if not db.is_sqlite:
        return

    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_CHECKPOINT_PAGES}")
        cursor.close()

    for engine in {db.write_engine, db.read_engine}:
        event.listen(engine.sync_engine, "connect", _pragmas)


# Ingest allocates a few objects per event (messages, protobufs, rows) that live for a batch of
# thousands: with CPython's default thresholds (a young collection every 700 allocations) they are
# promoted and full collections keep traversing every long-lived object, which cost ~9 µs of the
# event loop per event. Collections every 50,000 allocations, and the objects of start-up frozen
# out of them, leave refcounting to free almost everything; cycles are still collected, later.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_process() -> None:
    """Garbage-collector settings of a reconcile process (service and benchmarks alike)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def migrate(settings: Settings) -> None:
    """Bring the reconcile database to the latest schema."""
    upgrade_to_head(script_location=MIGRATIONS_DIR, database_url=settings.database_url)


def field_cipher(settings: Settings) -> FieldCipher:
    """The blind index of ID numbers, keyed exactly as roster keys it (the person key)."""
    return personal_data_cipher(
        settings.personal_data_key, previous_keys=settings.personal_data_previous_keys
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
    tune_database(runtime.db)
    await runtime.start_infrastructure()
    tune_process()
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
            in_flight=settings.aid_ingest_in_flight if source.producer == "aid" else 1,
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

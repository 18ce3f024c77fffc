"""Composition root of the identity service."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from zizhu_common.aio import wait_or_stop
from zizhu_common.crypto import FieldCipher, personal_data_cipher
from zizhu_common.db import Database
from zizhu_common.migrations import upgrade_to_head
from zizhu_common.outbox import Outbox
from zizhu_common.runtime import ServiceRuntime
from zizhu_contracts.identity.v1 import identity_pb2_grpc

from identity_service import tables
from identity_service.domain.credentials import LockoutPolicy, PasswordPolicy
from identity_service.events import audit_subject
from identity_service.grpc_api import SERVICE_NAME, IdentityServicer
from identity_service.keys import load_token_keys
from identity_service.repository import (
    AccountRepository,
    AuditRepository,
    OrgRepository,
    SessionRepository,
)
from identity_service.revocation import Revocations
from identity_service.service import Deps, IdentityServices
from identity_service.settings import Settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def migrate(settings: Settings) -> None:
    """Bring the identity database to the latest schema."""
    upgrade_to_head(script_location=MIGRATIONS_DIR, database_url=settings.database_url)


def field_cipher(settings: Settings) -> FieldCipher:
    """The SM4 cipher and blind index of personal data."""
    return personal_data_cipher(
        settings.personal_data_key,
        key_id=settings.personal_data_key_id,
        previous_keys=settings.personal_data_previous_keys,
    )


def build_services(
    settings: Settings, *, db: Database, outbox: Outbox, redis: Redis | None
) -> IdentityServices:
    """The use cases over the given infrastructure (also used by tests and the demo seed)."""
    deps = Deps(
        settings=settings,
        db=db,
        outbox=outbox,
        revocations=Revocations(redis, access_ttl_s=settings.access_token_ttl_s),
        keys=load_token_keys(settings),
        orgs=OrgRepository(),
        accounts=AccountRepository(field_cipher(settings)),
        sessions=SessionRepository(),
        audit=AuditRepository(),
        password_policy=PasswordPolicy(
            min_length=settings.password_min_length,
            min_classes=settings.password_min_classes,
            history=settings.password_history,
            max_age_days=settings.password_max_age_days,
        ),
        lockout=LockoutPolicy(
            max_failures=settings.lockout_max_failures, lock_minutes=settings.lockout_minutes
        ),
    )
    return IdentityServices(deps)


async def build(settings: Settings) -> ServiceRuntime:
    """Start the infrastructure and register the identity servicer and consumers."""
    runtime = ServiceRuntime(
        settings=settings,
        producer="identity",
        metadata=tables.metadata,
        migrations_dir=MIGRATIONS_DIR,
    )
    await runtime.start_infrastructure()
    services = build_services(settings, db=runtime.db, outbox=runtime.outbox, redis=runtime.redis)
    await services.orgs.ensure_root()
    runtime.add_grpc(
        identity_pb2_grpc.add_IdentityServiceServicer_to_server,
        IdentityServicer(services),
        SERVICE_NAME,
    )
    for producer in settings.audit_sources:
        await runtime.add_consumer(
            source=producer,
            durable=f"identity-audit-{producer}",
            subjects=[audit_subject(producer)],
            handler=services.audit.apply_events,
        )

    async def purge_audit(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await services.audit.purge()
            except Exception:
                log.exception("audit purge failed; will retry")
            await wait_or_stop(stop, settings.audit_purge_interval_s)

    runtime.add_background(purge_audit)
    if services.orgs.pg_cache is not None:
        runtime.add_background(services.orgs.pg_cache.run)
    return runtime


async def seed_demo_data(settings: Settings) -> list[dict[str, Any]]:
    """`seed-demo`: the demo tree and accounts, written through the use cases and the outbox (the
    running service's relay publishes the events)."""
    from identity_service.demo import seed_demo

    db = Database(settings.database_url)
    try:
        outbox = Outbox(tables.outbox_event, producer="identity")
        services = build_services(settings, db=db, outbox=outbox, redis=None)
        logins = await seed_demo(services)
    finally:
        await db.dispose()
    return [
        {
            "org": login.org_code,
            "role": login.role,
            "username": login.username,
            "password": login.password,
            "totp_secret": login.totp_secret,
        }
        for login in logins
    ]

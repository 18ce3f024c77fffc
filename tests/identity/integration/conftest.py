"""A running identity servicer over a real gRPC channel, on SQLite and PostgreSQL, with real
Redis and NATS (outbox relayed to JetStream), demo data seeded, and a controllable clock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from identity_service import tables
from identity_service.demo import DemoLogin, seed_demo
from identity_service.grpc_api import SERVICE_NAME, IdentityServicer
from identity_service.service import IdentityServices
from identity_service.settings import Settings
from identity_service.wiring import build_services, migrate
from zizhu_common.db import Database
from zizhu_common.messaging import connect_nats, ensure_producer_stream
from zizhu_common.outbox import Outbox, OutboxRelay
from zizhu_common.redis_client import connect_redis
from zizhu_common.rpc import CallerContext, GrpcServer, open_channel
from zizhu_contracts.identity.v1 import identity_pb2, identity_pb2_grpc


@dataclass
class Clock:
    """A clock the test moves forward instead of sleeping."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@dataclass
class Identity:
    """The service under test and helpers to call it as a given user."""

    services: IdentityServices
    stub: identity_pb2_grpc.IdentityServiceStub
    clock: Clock
    logins: dict[str, DemoLogin]
    db: Database
    relay: OutboxRelay

    def totp(self, username: str, *, offset_s: float = 0) -> str:
        secret = self.logins[username].totp_secret
        return pyotp.TOTP(secret).at(self.clock.now + timedelta(seconds=offset_s))

    async def login(self, username: str, password: str | None = None) -> identity_pb2.LoginResponse:
        demo = self.logins.get(username)
        return await self.stub.Login(
            identity_pb2.LoginRequest(
                username=username,
                password=password or (demo.password if demo else ""),
                totp_code=self.totp(username) if demo and demo.totp_secret else "",
                client_ip="10.0.0.1",
            ),
            timeout=10,
        )

    async def caller(self, username: str) -> list[tuple[str, str]]:
        """Metadata the gateway would send for this user (from a verified token)."""
        resp = await self.login(username)
        self.clock.advance(seconds=31)  # next TOTP step for the next login of the same user
        p = resp.principal
        level = {1: "national", 2: "province", 3: "city", 4: "county", 5: "school"}[p.org_level]
        claims = await self.services.sessions.verify(resp.access_token)
        ctx = CallerContext(
            account_id=p.account_id,
            org_code=p.org_code,
            org_path=p.org_path,
            level=level,
            roles=frozenset(claims.roles),
            request_id=uuid.uuid4().hex,
        )
        return [*ctx.to_metadata(), ("authorization", f"Bearer {resp.access_token}")]


def identity_settings(database_url: str, redis_url: str, nats_url: str, tmp_path: Path) -> Settings:
    return Settings(
        zizhu_env="test",
        database_url=database_url,
        redis_url=redis_url,
        nats_url=nats_url,
        password_iterations=1000,
        token_key_file=str(tmp_path / "token_key.pem"),
    )


@pytest.fixture
async def identity(
    database_url: str, redis_server, nats_server, tmp_path: Path
) -> AsyncIterator[Identity]:
    settings = identity_settings(database_url, redis_server.url, nats_server.url, tmp_path)
    await asyncio.to_thread(migrate, settings)
    db = Database(settings.database_url)
    outbox = Outbox(tables.outbox_event, producer="identity")
    redis = connect_redis(settings.redis_url)
    nc = await connect_nats(settings.nats_url, name="identity-test")
    js = nc.jetstream(timeout=10)
    await ensure_producer_stream(js, producer="identity", duplicate_window_s=120, replicas=1)
    services = build_services(settings, db=db, outbox=outbox, redis=redis)
    clock = Clock()
    services.deps.clock = clock
    logins = {d.username: d for d in await seed_demo(services)}
    server = GrpcServer(host="127.0.0.1", port=0, service_names=[SERVICE_NAME])
    server.add(identity_pb2_grpc.add_IdentityServiceServicer_to_server, IdentityServicer(services))
    await server.start()
    channel = open_channel(f"127.0.0.1:{server.port}")
    relay = OutboxRelay(db=db, outbox=outbox, js=js)
    try:
        yield Identity(
            services=services,
            stub=identity_pb2_grpc.IdentityServiceStub(channel),
            clock=clock,
            logins=logins,
            db=db,
            relay=relay,
        )
    finally:
        await channel.close()
        await server.stop(grace=0.1)
        await nc.close()
        await redis.aclose()
        await db.dispose()

"""What the gateway runs on: gRPC clients, Redis, the token verifier, the request gate, audit."""

from __future__ import annotations

import logging

import grpc
from redis.asyncio import Redis
from zizhu_common.crypto import Sm2Verifier
from zizhu_common.errors import error_from_rpc
from zizhu_common.redis_client import connect_redis
from zizhu_contracts.identity.v1 import identity_pb2

from gateway.audit import AuditPublisher
from gateway.clients import Clients
from gateway.redis_pipe import PipelinedRedis
from gateway.security import Limit, RequestGate, revoked
from gateway.settings import Settings
from gateway.tokens import TokenVerifier, public_key_verifier

log = logging.getLogger(__name__)


class GatewayRuntime:
    """Built by create_app; started and stopped by the app's lifespan."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.clients = Clients(settings)
        self._redis: Redis | None = None
        self.verifier = TokenVerifier(
            self.fetch_public_keys,
            cache_size=settings.token_cache_size,
            leeway_s=settings.token_leeway_s,
            refresh_min_interval_s=settings.public_key_refresh_min_interval_s,
        )
        self._gate: RequestGate | None = None
        self.audit = AuditPublisher(
            settings.nats_url,
            queue_size=settings.audit_queue_size,
            publish_timeout_s=settings.audit_publish_timeout_s,
            duplicate_window_s=settings.nats_duplicate_window_s,
            replicas=settings.nats_stream_replicas,
            spool_dir=settings.audit_spool_dir,
        )

    @property
    def redis(self) -> Redis:
        """The Redis client (rate limits, revocation, idempotency)."""
        if self._redis is None:
            raise RuntimeError("gateway runtime not started")
        return self._redis

    @property
    def gate(self) -> RequestGate:
        """Revocation and rate limits per request."""
        if self._gate is None:
            raise RuntimeError("gateway runtime not started")
        return self._gate

    async def start(self) -> None:
        """Open channels and Redis, start the audit publisher, fetch identity's public keys."""
        s = self.settings
        self.clients.open()
        self._redis = connect_redis(s.redis_url)
        self._gate = RequestGate(
            self._redis,
            per_account=Limit(s.rate_limit_per_account, s.rate_limit_window_s),
            per_ip=Limit(s.rate_limit_per_ip, s.rate_limit_window_s),
            login_per_ip=Limit(s.login_limit_per_ip, s.login_limit_window_s),
            pipe=PipelinedRedis(s.redis_url) if PipelinedRedis.supports(s.redis_url) else None,
        )
        self.audit.start()
        try:
            await self.verifier.refresh_keys(force=True)
            log.info("token keys loaded: %s", self.verifier.key_ids)
        except grpc.RpcError as exc:  # identity not up yet: keys are fetched on first use
            log.warning("identity public keys not available yet: %s", exc)

    async def stop(self) -> None:
        """Flush audit events, close Redis and the channels."""
        await self.audit.stop()
        if self._gate is not None:
            await self._gate.aclose()
        if self._redis is not None:
            await self._redis.aclose()
        await self.clients.close()

    async def fetch_public_keys(self) -> dict[str, Sm2Verifier]:
        """Identity's token-verifying SM2 keys, by key id."""
        resp = await self.clients.identity.GetPublicKey(
            identity_pb2.GetPublicKeyRequest(),
            caller=None,
            deadline_s=min(self.settings.rpc_deadline_s, 5.0),
        )
        return {k.key_id: public_key_verifier(k.key_id, k.public_key_pem) for k in resp.keys}

    async def verify_with_identity(self, token: str) -> None:
        """Ask identity whether a token is still good (used when Redis is unavailable)."""
        try:
            await self.clients.identity.VerifyToken(
                identity_pb2.VerifyTokenRequest(access_token=token), caller=None
            )
        except grpc.RpcError as exc:
            err = error_from_rpc(exc)
            if err.grpc_status == grpc.StatusCode.UNAUTHENTICATED:
                raise revoked() from exc
            raise err from exc

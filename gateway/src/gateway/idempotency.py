"""`Idempotency-Key` on mutating POSTs, per account, kept 24 h in Redis.

Same key and same request → the stored answer (status and body, `Idempotent-Replayed: true`);
same key, other request → 422 IDEMPOTENCY_KEY_REUSED; same key while the first is still running →
409 IDEMPOTENCY_IN_FLIGHT. The dependency claims the key after authentication (so a revoked or
rate-limited caller never gets a replay); IdempotencyMiddleware stores the answer afterwards.
"""

from __future__ import annotations

import base64
import hashlib
import json

from fastapi import Request
from fastapi.responses import Response
from redis.exceptions import RedisError
from zizhu_common.errors import Conflict, InvalidArgument, Unavailable

from gateway import redis_keys
from gateway.deps import current_session, runtime_of
from gateway.middleware import IDEMPOTENCY_SCOPE_KEY, IdempotencyState
from gateway.runtime import GatewayRuntime

MAX_KEY_LENGTH = 255


class IdempotentReplay(Exception):
    """Answer with the response stored for this key."""

    def __init__(self, status: int, content_type: str, body: bytes) -> None:
        super().__init__("replay")
        self.status = status
        self.content_type = content_type
        self.body = body

    def response(self) -> Response:
        """The stored answer, marked as a replay."""
        return Response(
            self.body,
            status_code=self.status,
            media_type=self.content_type,
            headers={"Idempotent-Replayed": "true"},
        )


async def idempotent(request: Request) -> None:
    """Claim the request's Idempotency-Key for the caller, or answer from what it already holds.
    Requests without a key (every GET) return at once; with one, the caller is authenticated
    (and counted) first, so that a revoked or rate-limited caller never gets a replay."""
    state: IdempotencyState | None = request.scope.get(IDEMPOTENCY_SCOPE_KEY)
    if state is None:
        return
    caller = await current_session(request)
    key = state.key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidArgument(
            f"Idempotency-Key 应为 1 至 {MAX_KEY_LENGTH} 个可见字符",
            code="IDEMPOTENCY_KEY_INVALID",
            field="Idempotency-Key",
        )
    try:
        await request.body()  # routes without a body never read it: finish the fingerprint
    except RuntimeError:
        pass  # already consumed by the form parser, and so hashed in full
    state.fingerprint = state.hasher.hexdigest()
    runtime = runtime_of(request)
    redis_key = redis_keys.IDEMPOTENCY.format(
        caller.account_id, hashlib.sha256(key.encode()).hexdigest()
    )
    try:
        await _claim(runtime, state, redis_key)
    except RedisError as exc:
        raise Unavailable(
            "幂等校验服务暂不可用，请稍后重试", code="IDEMPOTENCY_UNAVAILABLE",
            field="Idempotency-Key", details={"retry_after": 5},
        ) from exc  # fmt: skip


async def _claim(runtime: GatewayRuntime, state: IdempotencyState, redis_key: str) -> None:
    in_flight = json.dumps({"state": "in_flight", "fp": state.fingerprint})
    for _ in range(3):
        if await runtime.redis.set(
            redis_key, in_flight, nx=True, ex=runtime.settings.idempotency_lock_s
        ):
            state.claimed_key = redis_key
            return
        raw = await runtime.redis.get(redis_key)
        if raw is None:
            continue  # expired between the two calls: try to claim again
        held = json.loads(raw)
        if held.get("fp") != state.fingerprint:
            raise InvalidArgument(
                "该 Idempotency-Key 已用于另一个不同的请求",
                code="IDEMPOTENCY_KEY_REUSED",
                field="Idempotency-Key",
            )
        if held.get("state") != "done":
            raise Conflict(
                "相同 Idempotency-Key 的请求正在处理中，请稍后重试",
                code="IDEMPOTENCY_IN_FLIGHT",
                field="Idempotency-Key",
                details={"retry_after": 1},
            )
        raise IdempotentReplay(
            int(held["status"]), held.get("content_type", "application/json"),
            base64.b64decode(held["body"]),
        )  # fmt: skip
    raise Conflict(
        "相同 Idempotency-Key 的请求正在处理中，请稍后重试",
        code="IDEMPOTENCY_IN_FLIGHT",
        field="Idempotency-Key",
    )

"""Per-request checks in Redis: revocation of the token, and rate limits per account and per IP.

All of a request's checks go to Redis in one round trip: one Lua script (`EVALSHA`) reads the three
revocation keys and counts both limits, sent on the gateway's pipelined connection
(gateway.redis_pipe) when it has one, else through redis-py. Limits are fixed windows (`INCR`,
and `EXPIRE` when the window's key is new, on a key per window number); a refusal carries the
seconds until the window ends.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from zizhu_common.errors import ResourceExhausted

from gateway import redis_keys
from gateway.redis_pipe import PipelinedRedis
from gateway.tokens import TOKEN_REVOKED, Claims, TokenError


@dataclass(frozen=True)
class Limit:
    """At most `limit` requests per `window_s` seconds (0 = unlimited)."""

    limit: int
    window_s: int


def rate_limited(scope: str, retry_after: int, limit: Limit) -> ResourceExhausted:
    """The 429 answer, with the seconds to wait in `details.retry_after` (→ Retry-After)."""
    return ResourceExhausted(
        "请求过于频繁，请稍后重试",
        code="RATE_LIMITED",
        details={
            "retry_after": retry_after,
            "scope": scope,
            "limit": limit.limit,
            "window_s": limit.window_s,
        },  # fmt: skip
    )


def revoked() -> TokenError:
    """The answer for a token of a session that was logged out, locked or reset."""
    return TokenError("登录凭证已被撤销，请重新登录", code=TOKEN_REVOKED)


# KEYS: revoked jti, revoked session, revoked account, then one key per counted limit;
# ARGV: the TTL of each counted key. Answers the three revocation values (nil when absent) and
# the count of each limit's window.
ADMIT_SCRIPT = """
local out = redis.call('MGET', KEYS[1], KEYS[2], KEYS[3])
for i = 4, #KEYS do
  local n = redis.call('INCR', KEYS[i])
  if n == 1 then redis.call('EXPIRE', KEYS[i], ARGV[i - 3]) end
  out[i] = n
end
return out
"""


class RequestGate:
    """Revocation and rate limits for each request, in one Redis round trip."""

    def __init__(
        self,
        redis: Redis,
        *,
        per_account: Limit,
        per_ip: Limit,
        login_per_ip: Limit,
        clock: Callable[[], float] = time.time,
        pipe: PipelinedRedis | None = None,
    ) -> None:
        self.redis = redis
        self.per_account = per_account
        self.per_ip = per_ip
        self.login_per_ip = login_per_ip
        self.clock = clock
        self.pipe = pipe
        self._admit = redis.register_script(ADMIT_SCRIPT)

    async def aclose(self) -> None:
        """Close the pipelined connection (the redis-py client is closed by its owner)."""
        if self.pipe is not None:
            await self.pipe.aclose()

    async def admit(self, claims: Claims, client_ip: str) -> None:
        """Refuse a revoked token (401) or a caller over its limits (429)."""
        now = self.clock()
        keys = [
            redis_keys.REVOKED_JTI.format(claims.jti),
            redis_keys.REVOKED_SESSION.format(claims.session_id or "-"),
            redis_keys.REVOKED_ACCOUNT.format(claims.account_id),
        ]
        ttls: list[int] = []
        counted: list[tuple[str, Limit]] = []
        for template, who, scope, limit in (
            (redis_keys.RATE_ACCOUNT, claims.account_id, "account", self.per_account),
            (redis_keys.RATE_IP, client_ip, "ip", self.per_ip),
        ):
            if limit.limit > 0:
                keys.append(template.format(who, int(now // limit.window_s)))
                ttls.append(limit.window_s + 1)
                counted.append((scope, limit))
        if self.pipe is not None:
            results = await self.pipe.run_script(self._admit.sha, ADMIT_SCRIPT, keys, ttls)
        else:
            results = await self._admit(keys=keys, args=ttls)
        jti_revoked, session_revoked, account_revoked_before = results[:3]
        if jti_revoked is not None or session_revoked is not None:
            raise revoked()
        if account_revoked_before is not None:
            try:
                before = float(account_revoked_before)
            except ValueError:
                before = float("inf")
            if claims.issued_at < before:
                raise revoked()
        for count, (scope, limit) in zip(results[3:], counted, strict=True):
            self._refuse_over(int(count), scope, limit, now)

    async def admit_login(self, client_ip: str) -> None:
        """Refuse a client IP over its login (and refresh) attempt limit (429)."""
        now = self.clock()
        pipe = self.redis.pipeline(transaction=False)
        counted = self._count(pipe, now, redis_keys.RATE_LOGIN_IP, client_ip, "login",
                              self.login_per_ip)  # fmt: skip
        counted += self._count(pipe, now, redis_keys.RATE_IP, client_ip, "ip", self.per_ip)
        if counted:
            self._judge(await pipe.execute(), counted, now)

    @staticmethod
    def _count(
        pipe: object, now: float, template: str, who: str, scope: str, limit: Limit
    ) -> list[tuple[str, Limit]]:
        if limit.limit <= 0:
            return []
        key = template.format(who, int(now // limit.window_s))
        pipe.incr(key)  # type: ignore[attr-defined]
        pipe.expire(key, limit.window_s + 1)  # type: ignore[attr-defined]
        return [(scope, limit)]

    @staticmethod
    def _judge(results: list[object], counted: list[tuple[str, Limit]], now: float) -> None:
        for i, (scope, limit) in enumerate(counted):
            RequestGate._refuse_over(int(results[2 * i]), scope, limit, now)  # type: ignore[call-overload]

    @staticmethod
    def _refuse_over(count: int, scope: str, limit: Limit, now: float) -> None:
        if count > limit.limit:
            retry_after = max(1, int(limit.window_s - (now % limit.window_s)) + 1)
            raise rate_limited(scope, retry_after, limit)


def client_ip(peer: str | None, forwarded_for: str | None, trusted_proxies: list[str]) -> str:
    """The client's IP: the peer, or the last untrusted X-Forwarded-For hop behind our proxies."""
    ip = peer or "unknown"
    if not forwarded_for or not trusted_proxies or not _trusted(ip, trusted_proxies):
        return ip
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted_proxies):
            return hop
    return hops[0] if hops else ip


def _trusted(ip: str, proxies: list[str]) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in ipaddress.ip_network(p, strict=False) for p in proxies)

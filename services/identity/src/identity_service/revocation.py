"""Immediate revocation in Redis: revoked token ids, sessions and per-account cut-offs.

Redis is not the record: the same facts are in the database (session.revoked_at, account
status and sessions_revoked_before) and VerifyToken checks both. The gateway may read these keys
to refuse revoked tokens without a call:

- `identity:revoked:jti:<jti>`           exists → that access token is revoked
- `identity:revoked:sid:<session_id>`    exists → every token of the session is revoked
- `identity:revoked-before:<account_id>` unix seconds; tokens issued before it are revoked
"""

from __future__ import annotations

import logging
import math
import time

from redis.asyncio import Redis

log = logging.getLogger(__name__)

PREFIX = "identity:"


def jti_key(jti: str) -> str:
    """Key marking one revoked access token."""
    return f"{PREFIX}revoked:jti:{jti}"


def session_key(session_id: str) -> str:
    """Key marking a revoked session."""
    return f"{PREFIX}revoked:sid:{session_id}"


def account_key(account_id: str) -> str:
    """Key holding an account's revoked-before timestamp."""
    return f"{PREFIX}revoked-before:{account_id}"


class Revocations:
    """Writes and reads the revocation keys; keys expire with the longest-lived access token."""

    def __init__(self, redis: Redis | None, *, access_ttl_s: int) -> None:
        self.redis = redis
        self.ttl = access_ttl_s + 60

    async def revoke_token(self, jti: str, expires_at: int) -> None:
        """Revoke one access token until it expires anyway."""
        ttl = max(1, math.ceil(expires_at - time.time()) + 60)
        await self._set(jti_key(jti), "1", ttl)

    async def revoke_sessions(self, session_ids: list[str]) -> None:
        """Revoke every access token of these sessions."""
        for sid in session_ids:
            await self._set(session_key(sid), "1", self.ttl)

    async def revoke_account(self, account_id: str, before: float) -> None:
        """Revoke every access token of an account issued before `before` (unix seconds)."""
        await self._set(account_key(account_id), str(int(math.floor(before))), self.ttl)

    async def is_revoked(
        self, *, jti: str, session_id: str, account_id: str, issued_at: int
    ) -> bool:
        """True when Redis knows the token is revoked (False also when Redis is unreachable)."""
        if self.redis is None:
            return False
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.exists(jti_key(jti))
                pipe.exists(session_key(session_id))
                pipe.get(account_key(account_id))
                jti_hit, sid_hit, before = await pipe.execute()
        except Exception as exc:  # Redis down: the database check still runs
            log.warning("revocation lookup failed: %s", exc)
            return False
        if jti_hit or sid_hit:
            return True
        return before is not None and issued_at < int(before)

    async def _set(self, key: str, value: str, ttl: int) -> None:
        if self.redis is None:
            return
        try:
            await self.redis.set(key, value, ex=ttl)
        except Exception as exc:  # the database holds the revocation too
            log.warning("could not write revocation %s: %s", key, exc)

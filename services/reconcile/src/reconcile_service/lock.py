"""The run lock: one comparison at a time across replicas, held with a lease in Redis.

The holder renews the lease while it works; a killed holder's lease expires and another replica
takes over. Redis is not the record: the runs table says what ran, so losing Redis loses only
the exclusion for a moment, and every run is idempotent anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from redis.asyncio import Redis

log = logging.getLogger(__name__)

KEY = "reconcile:lock:run"
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class RunLock:
    """A lease lock named by the run holding it (Redis; an in-process lock without Redis)."""

    def __init__(self, redis: Redis | None, *, lease_s: float = 60.0, key: str = KEY) -> None:
        self.redis = redis
        self.lease_ms = int(lease_s * 1000)
        self.key = key
        self._local: str | None = None

    async def try_acquire(self, owner: str) -> bool:
        """Take the lock for owner if it is free."""
        if self.redis is None:
            if self._local is None:
                self._local = owner
                return True
            return False
        return bool(await self.redis.set(self.key, owner, nx=True, px=self.lease_ms))

    async def acquire(self, owner: str, *, wait_s: float, poll_s: float = 0.5) -> bool:
        """Take the lock, waiting up to wait_s for the holder to finish."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            if await self.try_acquire(owner):
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(poll_s)

    async def holder(self) -> str | None:
        """The owner holding the lock now, if any."""
        if self.redis is None:
            return self._local
        value = await self.redis.get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    async def renew(self, owner: str) -> bool:
        """Extend owner's lease; False when owner no longer holds it."""
        if self.redis is None:
            return self._local == owner
        return bool(await self.redis.eval(_RENEW, 1, self.key, owner, self.lease_ms))

    async def release(self, owner: str) -> None:
        """Give the lock up if owner holds it."""
        if self.redis is None:
            if self._local == owner:
                self._local = None
            return
        await self.redis.eval(_RELEASE, 1, self.key, owner)

    @contextlib.asynccontextmanager
    async def kept(self, owner: str) -> AsyncIterator[None]:
        """Renew owner's lease in the background while the block runs, then release."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(self.lease_ms / 3000)
                try:
                    if not await self.renew(owner):
                        log.warning("run lock of %s was lost", owner)
                except Exception as exc:  # Redis down: keep working; the run is idempotent
                    log.warning("run lock renewal failed: %s", exc)

        task = asyncio.create_task(renew())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            try:
                await self.release(owner)
            except Exception as exc:
                log.warning("run lock release failed: %s", exc)

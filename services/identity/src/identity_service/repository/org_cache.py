"""GetOrg's answers kept in memory on PostgreSQL, dropped whenever the org table changes.

Migration identity_0003 gives the org table a statement trigger that notifies the channel
`identity_org_changed` (NOTIFY is delivered at commit, to every identity replica that listens).
Each identity process keeps one connection of its own listening there; any notification drops
the whole cache. The cache answers only while that connection is known to be alive: before it
listens, after it is lost (until it listens again, when the cache starts empty), and while a
periodic ping goes unanswered, every GetOrg reads the database as before.

An answer read while a change commits is stored only if no notification arrived during the
read (a generation count); a notification arriving after it is stored drops it with the rest.
So a cached answer is at most one notification's delivery behind the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg
from zizhu_common.db import libpq_dsn

from identity_service.domain.orgs import Org

log = logging.getLogger(__name__)

CHANNEL = "identity_org_changed"
# The listening connection's name in pg_stat_activity.
APPLICATION_NAME = "zizhu-identity-org-cache"
PING_INTERVAL_S = 5.0
PING_TIMEOUT_S = 2.0
RETRY_S = 1.0

Entry = tuple[Org, dict[str, Org]]


class PgOrgCache:
    """GetOrg answers by org code, valid while the listening connection is alive."""

    def __init__(self, url: str, *, cache_size: int = 4096) -> None:
        self.dsn = libpq_dsn(url)
        self.cache_size = cache_size
        self.live = False
        self.generation = 0
        self.hits = 0
        self._entries: dict[str, Entry] = {}
        self._lost: asyncio.Event | None = None

    def get(self, code: str) -> Entry | None:
        """The cached answer for code, or None (also whenever the cache is not live)."""
        if not self.live:
            return None
        entry = self._entries.get(code)
        if entry is not None:
            self.hits += 1
        return entry

    def put(self, code: str, entry: Entry, generation: int) -> None:
        """Keep an answer read at `generation` (the value before the read), unless the table
        changed since or the cache is not live. Cached Orgs are shared: never modify them."""
        if not self.live or generation != self.generation:
            return
        if len(self._entries) >= self.cache_size:
            self._entries.pop(next(iter(self._entries)))
        self._entries[code] = entry

    def invalidate(self) -> None:
        """Drop every answer (the org table changed, or the listener is not known to be alive)."""
        self.generation += 1
        self._entries.clear()

    def _notified(self, *_: Any) -> None:
        self.invalidate()

    def _terminated(self, *_: Any) -> None:
        self._go_dark()

    def _go_dark(self) -> None:
        self.live = False
        self.invalidate()
        if self._lost is not None:
            self._lost.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Listen until stop; reconnect after a lost connection (the cache is off meanwhile)."""
        while not stop.is_set():
            conn = None
            self._lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(
                    self.dsn, timeout=10, server_settings={"application_name": APPLICATION_NAME}
                )
                conn.add_termination_listener(self._terminated)
                await conn.add_listener(CHANNEL, self._notified)
                self.invalidate()  # anything may have changed while nobody listened
                self.live = True
                log.info("org cache listening for changes")
                await self._watch(conn, stop)
            except Exception as exc:
                log.warning("org cache off, retrying: %r", exc)
            finally:
                self._go_dark()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), timeout=PING_TIMEOUT_S)
            if not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=RETRY_S)

    async def _watch(self, conn: Any, stop: asyncio.Event) -> None:
        """Return when stop is set or the connection is lost (a ping fails or times out)."""
        assert self._lost is not None
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._lost.wait())]
        try:
            while not stop.is_set() and not self._lost.is_set():
                await asyncio.wait(waiters, timeout=PING_INTERVAL_S, return_when="FIRST_COMPLETED")
                if stop.is_set() or self._lost.is_set():
                    return
                await asyncio.wait_for(conn.fetchval("SELECT 1"), timeout=PING_TIMEOUT_S)
        finally:
            for waiter in waiters:
                waiter.cancel()

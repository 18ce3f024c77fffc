"""Durable JetStream pull consumers that apply each event exactly once.

Each batch is applied in one database transaction together with the ids of the events it
contains (`processed_event`); messages are acknowledged only after that commit. A redelivery —
after a crash before the ack, or a duplicate that arrived outside the stream's dedup window — finds
its id already recorded and is acknowledged without being applied again.

Batches are pulled with one JetStream pull request each into a private inbox (no per-message
round trip or timer), and the next batch is requested while the current one is being applied, so
the network and the database overlap; a committed batch's acknowledgements are sent while the
next batch is applied. With `in_flight` > 1 (PostgreSQL only, for handlers whose writes commute)
that many batches are applied at once, each in its own transaction. Prefetched messages are not
acknowledged before their own batch commits; on stop they are handed back (nak) so they are
redelivered at once.

The batch's ids are recorded with one plain insert (an executemany on SQLite, one array on
PostgreSQL) under a savepoint; only when some were already there (redeliveries) is that undone
and the new ones picked out first.

`CONSUMER_PREFIX` (environment, default empty) prefixes every durable consumer's name on NATS, so
that two deployments can share one NATS server; the dedup records keep the unprefixed name.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy import Column, DateTime, MetaData, String, Table, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from zizhu_common.aio import wait_or_stop
from zizhu_common.db import Database
from zizhu_common.messaging import EVENT_ID_HEADER

log = logging.getLogger(__name__)

PREFIX_ENV = "CONSUMER_PREFIX"
_NAME_OK = re.compile(r"^[A-Za-z0-9_-]*$")


def consumer_prefix() -> str:
    """The deployment's durable-name prefix (`CONSUMER_PREFIX`, default empty)."""
    prefix = os.environ.get(PREFIX_ENV, "").strip()
    if not _NAME_OK.match(prefix):
        raise ValueError(f"{PREFIX_ENV} may hold only letters, digits, '-' and '_': {prefix!r}")
    return prefix


def processed_event_table(metadata: MetaData) -> Table:
    """The `processed_event` table: (consumer, event id) pairs already applied."""
    return Table(
        "processed_event",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False),
    )


@dataclass(frozen=True, slots=True)
class Event:
    """One received event: id, subject, protobuf payload and the stream sequence."""

    event_id: str
    subject: str
    data: bytes
    stream_seq: int


Handler = Callable[[AsyncSession, list[Event]], Awaitable[None]]


def _stream_seq(msg: Msg) -> int:
    # The ack subject carries the stream sequence: $JS.ACK.<stream>.<consumer>.<delivered>.
    # <stream seq>.<consumer seq>.<time>.<pending> (9 tokens) or, with domain and account hash,
    # 12 tokens. Splitting it here is much cheaper than building nats-py's metadata object.
    tokens = (msg.reply or "").split(".")
    if len(tokens) == 9:
        return int(tokens[5])
    if len(tokens) >= 11:
        return int(tokens[7])
    return msg.metadata.sequence.stream


def to_event(msg: Msg) -> Event:
    """The Event of a delivered message (id from the Nats-Msg-Id header, else the sequence)."""
    seq = _stream_seq(msg)
    headers = msg.headers
    event_id = (headers.get(EVENT_ID_HEADER) if headers else None) or f"seq:{seq}"
    return Event(event_id, msg.subject, msg.data, seq)


class ConsumerGone(Exception):
    """JetStream answered a pull with an error status (consumer deleted, no responders, …)."""


class _Puller:
    """Pull requests of one durable consumer answered into a private inbox.

    Each request gets its own reply subject, so a status (404/408 at its end) is matched to the
    request it ends; messages of an older request that arrive late are kept (they are valid
    deliveries and are acknowledged with the next batch)."""

    def __init__(self, nc: NATS, stream: str, durable: str) -> None:
        self.nc = nc
        self.api = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self.base = nc.new_inbox()
        self.sub: Subscription | None = None
        self.buffer: list[Msg] = []
        self.current = ""  # reply subject of the request in flight ("" = none)
        self.expected = 0
        self.counter = 0
        self.error = ""
        self.expires_at = 0.0
        self.changed = asyncio.Event()

    async def open(self) -> None:
        self.sub = await self.nc.subscribe(
            f"{self.base}.*",
            cb=self._on_msg,
            pending_msgs_limit=1_000_000,
            pending_bytes_limit=1024 * 1024 * 1024,
        )

    async def close(self) -> None:
        """Hand back what was prefetched but not taken, and stop listening. A request still in
        flight is waited for (at most until it expires), so that nothing it delivers is left
        unacknowledged until the ack wait runs out."""
        loop = asyncio.get_running_loop()
        while self.current and self.sub is not None and loop.time() < self.expires_at:
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), self.expires_at - loop.time())
            except TimeoutError:
                break
        leftover, self.buffer = self.buffer, []
        for msg in leftover:
            await _safe(msg.nak())
        if leftover:
            await _safe(self.nc.flush(timeout=2))
        if self.sub is not None:
            try:
                await self.sub.unsubscribe()
            except Exception as exc:  # connection already closed
                log.debug("unsubscribe failed: %s", exc)
            self.sub = None

    async def _on_msg(self, msg: Msg) -> None:
        if msg.reply:
            # A delivered message carries its stream subject, not the inbox: count it against
            # the request in flight (a late one of an expired request only ends it early).
            self.buffer.append(msg)
            if self.current:
                self.expected -= 1
                if self.expected <= 0:
                    self.current = ""
            self.changed.set()
            return
        headers = msg.headers or {}
        status = headers.get("Status", "")
        if msg.subject != self.current or status == "100":
            return  # an older request ending, or a heartbeat
        self.current = ""
        if status not in ("404", "408"):
            self.error = f"{status} {headers.get('Description', '')}".strip()
        self.changed.set()

    async def request(self, batch: int, timeout_s: float) -> None:
        """Ask for up to `batch` messages: what is available now, or wait up to timeout_s."""
        if self.current:
            return
        self.counter += 1
        self.current = f"{self.base}.{self.counter}"
        self.expected = batch
        self.expires_at = asyncio.get_running_loop().time() + timeout_s + 0.1
        req = {"batch": batch, "no_wait": True, "expires": max(int(timeout_s * 1e9), 1_000_000)}
        await self.nc.publish(self.api, json.dumps(req).encode(), reply=self.current)

    async def take(self, batch: int, timeout_s: float, linger_s: float) -> list[Msg]:
        """Messages delivered so far: waits for a first message (or the end of the request),
        then up to linger_s for the request to complete."""
        if not self.buffer:
            await self.request(batch, timeout_s)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s + 0.5
        while not self.buffer and self.current and not self.error:
            self.changed.clear()
            left = deadline - loop.time()
            if left <= 0:
                self.current = ""  # the request was lost (reconnect): ask again next time
                break
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                pass
        end = loop.time() + linger_s
        while self.current and len(self.buffer) < batch and not self.error:
            self.changed.clear()
            left = end - loop.time()
            if left <= 0:
                break
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                break
        if self.error and not self.buffer:
            error, self.error = self.error, ""
            raise ConsumerGone(error)
        self.error = ""
        out, self.buffer = self.buffer[:batch], self.buffer[batch:]
        return out


class DurableConsumer:
    """Pulls batches from a durable consumer and applies them idempotently."""

    def __init__(
        self,
        *,
        js: JetStreamContext,
        db: Database,
        table: Table,
        stream: str,
        durable: str,
        subjects: list[str],
        handler: Handler,
        batch_size: int = 500,
        ack_wait_s: float = 60.0,
        fetch_timeout_s: float = 1.0,
        name_prefix: str | None = None,
        in_flight: int = 1,
    ) -> None:
        self.js = js
        self.db = db
        self.table = table
        self.stream = stream
        self.durable = durable
        # The consumer's name on NATS (deployment prefix + durable); dedup keeps `durable`.
        prefix = consumer_prefix() if name_prefix is None else name_prefix
        if not _NAME_OK.match(prefix):
            raise ValueError(f"invalid consumer name prefix {prefix!r}")
        self.nats_durable = prefix + durable
        self.subjects = subjects
        self.handler = handler
        self.batch_size = batch_size
        self.ack_wait_s = ack_wait_s
        self.fetch_timeout_s = fetch_timeout_s
        # Batches applied at once, each in its own transaction, so that one batch's statements
        # run in the database while the next is decoded. Only for handlers whose writes give
        # the same result in either commit order, and only on PostgreSQL: SQLite has one writer.
        self.in_flight = 1 if db.dialect == "sqlite" else max(1, in_flight)
        self.applied_total = 0
        self.duplicates_total = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until stop is set, surviving NATS restarts."""
        puller: _Puller | None = None
        # Batches being applied (oldest first), each in its own transaction.
        applying: deque[asyncio.Task[list[Msg]]] = deque()
        # The acknowledgements of the last committed batch, sent while the next one is applied.
        acking: asyncio.Task[None] | None = None

        async def settle() -> None:
            # Wait for the oldest batch and acknowledge what it committed.
            nonlocal acking
            committed = await applying.popleft()
            if acking is not None:
                await acking
            acking = asyncio.create_task(_ack_all(committed))

        try:
            while not stop.is_set():
                try:
                    if puller is None:
                        puller = await self._open_unless_stopped(stop)
                        if puller is None:
                            break
                    msgs = await puller.take(self.batch_size, self.fetch_timeout_s, 0.02)
                except (TimeoutError, nats.errors.TimeoutError):
                    msgs = []
                except Exception as exc:  # disconnected, consumer gone, info unavailable, …
                    log.warning("consumer %s fetch failed, will retry: %s", self.durable, exc)
                    while applying:
                        await settle()
                    if puller is not None:
                        await puller.close()
                        puller = None
                    await wait_or_stop(stop, 0.5)
                    continue
                if not msgs:
                    while applying:  # nothing more to overlap with: finish and acknowledge
                        await settle()
                    continue
                if puller is not None and not stop.is_set():
                    # The next batch travels while this one is applied.
                    await _safe(puller.request(self.batch_size, self.fetch_timeout_s))
                applying.append(asyncio.create_task(self._handle(msgs)))
                if len(applying) >= self.in_flight:
                    await settle()
            while applying:
                await settle()
        except BaseException:
            # Cancelled (or failed): batches still being applied roll back and are redelivered.
            for task in applying:
                task.cancel()
            await asyncio.gather(*applying, return_exceptions=True)
            raise
        finally:
            if acking is not None:
                await acking
                await _safe(self.js._nc.flush(timeout=2))  # the last acks leave before we return
            if puller is not None:
                await puller.close()

    async def _open_unless_stopped(self, stop: asyncio.Event) -> _Puller | None:
        """Open the pull subscription, or give up (None) when stop is set first: while NATS is
        unreachable JetStream's requests wait out their whole timeout, and a service told to
        stop then would wait with them."""
        opening = asyncio.ensure_future(self._open())
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({opening, stopping}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            opening.cancel()
            raise
        finally:
            stopping.cancel()
        if opening.done():
            return opening.result()
        opening.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await opening
        return None

    async def _open(self) -> _Puller:
        await self._ensure_consumer()
        # nats-py exposes the core connection of a JetStream context only as `_nc`.
        puller = _Puller(self.js._nc, self.stream, self.nats_durable)
        await puller.open()
        return puller

    async def _ensure_consumer(self) -> None:
        try:
            await self.js.consumer_info(self.stream, self.nats_durable)
            return
        except nats.js.errors.NotFoundError:
            pass
        config = ConsumerConfig(
            durable_name=self.nats_durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait_s,
            # Room for the batch being applied and the one prefetched, with redeliveries.
            max_ack_pending=max(self.batch_size * 4, 1000),
            filter_subject=self.subjects[0] if len(self.subjects) == 1 else None,
            filter_subjects=self.subjects if len(self.subjects) > 1 else None,
        )
        await self.js.add_consumer(self.stream, config)

    async def _claim(self, session: AsyncSession, ids: list[str]) -> set[str]:
        """Record the batch's event ids as processed; returns those not processed before."""
        claim = _claim_unnest if self.db.dialect == "postgresql" else _claim_rows
        return await claim(session, self.table, self.durable, ids)

    async def handle(self, msgs: list[Msg]) -> None:
        """Apply a fetched batch and acknowledge what was committed; falls back to one message
        at a time when the batch fails (a message that still fails is handed back with a
        delay)."""
        await _ack_all(await self._handle(msgs))

    async def _handle(self, msgs: list[Msg]) -> list[Msg]:
        """Apply a batch; returns the messages whose transaction committed (to acknowledge)."""
        if not msgs:
            return []
        try:
            await self._apply(msgs)
            return msgs
        except Exception:
            log.exception(
                "consumer %s batch of %d failed; retrying singly", self.durable, len(msgs)
            )
        committed: list[Msg] = []
        for msg in msgs:
            try:
                await self._apply([msg])
            except Exception:
                log.exception("consumer %s could not apply %s", self.durable, msg.subject)
                await _safe(msg.nak(delay=5.0))
                continue
            committed.append(msg)
        return committed

    async def _apply(self, msgs: list[Msg]) -> None:
        events: dict[str, Event] = {}
        for msg in msgs:
            ev = to_event(msg)
            if ev.event_id not in events:
                events[ev.event_id] = ev
        async with self.db.write() as session:
            fresh_ids = await self._claim(session, list(events))
            fresh = [e for e in events.values() if e.event_id in fresh_ids]
            if fresh:
                await self.handler(session, fresh)
        self.applied_total += len(fresh)
        self.duplicates_total += len(msgs) - len(fresh)


async def _ack_all(msgs: list[Msg]) -> None:
    # Only after the batch's commit: a message lost before its ack is redelivered and skipped.
    for msg in msgs:
        await _safe(msg.ack())


async def _claim_rows(
    session: AsyncSession, table: Table, consumer: str, ids: list[str]
) -> set[str]:
    # SQLite (one writer at a time: the transaction began IMMEDIATE). The ids go in with one
    # executemany straight through the driver; when every row was inserted — a batch without
    # redeliveries, the usual case — they are all new. Otherwise the insert is undone to its
    # savepoint, the ids already recorded are read with one statement and only the others are
    # inserted. Cheaper than an INSERT … RETURNING over json_each, which extracts every value
    # again for the conflict check and the answer.
    conn = await session.connection()
    bind = table.c.processed_at.type.bind_processor(conn.dialect)
    now = datetime.now(UTC)
    stamp = bind(now) if bind is not None else now
    unique = list(dict.fromkeys(ids))
    if not unique:
        return set()
    insert = (
        f"INSERT INTO {table.name} (consumer, event_id, processed_at) VALUES (?, ?, ?) "
        "ON CONFLICT (consumer, event_id) DO NOTHING"
    )
    await conn.exec_driver_sql("SAVEPOINT zz_claim")
    result = await conn.exec_driver_sql(insert, [(consumer, i, stamp) for i in unique])
    if result.rowcount == len(unique):
        await conn.exec_driver_sql("RELEASE zz_claim")
        return set(unique)
    await conn.exec_driver_sql("ROLLBACK TO zz_claim")
    await conn.exec_driver_sql("RELEASE zz_claim")
    seen: set[str] = set()
    for start in range(0, len(unique), 5000):
        found = await conn.exec_driver_sql(
            f"SELECT event_id FROM {table.name} WHERE consumer = ? "
            "AND event_id IN (SELECT value FROM json_each(?))",
            (consumer, json.dumps(unique[start : start + 5000])),
        )
        seen.update(found.scalars())
    fresh = [i for i in unique if i not in seen]
    if fresh:
        await conn.exec_driver_sql(insert, [(consumer, i, stamp) for i in fresh])
    return set(fresh)


async def _claim_unnest(
    session: AsyncSession, table: Table, consumer: str, ids: list[str]
) -> set[str]:
    # PostgreSQL, ids bound as one array. A batch without redeliveries — the usual case — is
    # recorded by a plain INSERT under a savepoint: about 40 % cheaper than ON CONFLICT's
    # speculative insertion. A unique violation (some ids were applied before) rolls back to the
    # savepoint, and one INSERT … ON CONFLICT DO NOTHING RETURNING records and names the new ones.
    unique = list(dict.fromkeys(ids))
    if not unique:
        return set()
    params = {"consumer": consumer, "ids": unique}
    select = "SELECT :consumer, unnest(CAST(:ids AS varchar[])), now()"
    insert = f"INSERT INTO {table.name} (consumer, event_id, processed_at) {select}"
    try:
        async with session.begin_nested():
            await session.execute(text(insert), params)
        return set(unique)
    except IntegrityError:
        pass
    result = await session.execute(
        text(f"{insert} ON CONFLICT DO NOTHING RETURNING event_id"), params
    )
    return set(result.scalars())


async def _safe(coro: Awaitable[None]) -> None:
    try:
        await coro
    except Exception as exc:  # an unacked message is redelivered and then deduplicated
        log.debug("ack/nak failed: %s", exc)

"""Durable JetStream pull consumers that apply each event exactly once.

Each batch is applied in one database transaction together with the ids of the events it
contains (`processed_event`); messages are acknowledged only after that commit. A redelivery —
after a crash before the ack, or a duplicate that arrived outside the stream's dedup window — finds
its id already recorded and is acknowledged without being applied again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy import Column, DateTime, MetaData, String, Table, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from zizhu_common.aio import wait_or_stop
from zizhu_common.db import Database
from zizhu_common.messaging import EVENT_ID_HEADER

log = logging.getLogger(__name__)


def processed_event_table(metadata: MetaData) -> Table:
    """The `processed_event` table: (consumer, event id) pairs already applied."""
    return Table(
        "processed_event",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False),
    )


@dataclass(frozen=True)
class Event:
    """One received event: id, subject, protobuf payload and the stream sequence."""

    event_id: str
    subject: str
    data: bytes
    stream_seq: int


Handler = Callable[[AsyncSession, list[Event]], Awaitable[None]]


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
    ) -> None:
        self.js = js
        self.db = db
        self.table = table
        self.stream = stream
        self.durable = durable
        self.subjects = subjects
        self.handler = handler
        self.batch_size = batch_size
        self.ack_wait_s = ack_wait_s
        self.fetch_timeout_s = fetch_timeout_s
        self.applied_total = 0
        self.duplicates_total = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until stop is set, surviving NATS restarts."""
        sub = None
        while not stop.is_set():
            try:
                if sub is None:
                    sub = await self._subscribe()
                msgs = await self._fetch_batch(sub)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except Exception as exc:  # disconnected, consumer info unavailable, …
                log.warning("consumer %s fetch failed, will retry: %s", self.durable, exc)
                await wait_or_stop(stop, 0.5)
                continue
            await self.handle(msgs)

    async def _fetch_batch(self, sub: JetStreamContext.PullSubscription) -> list[Msg]:
        # A pull answers with what the server has at hand; under load keep pulling briefly so
        # each database transaction applies a full batch (fewer commits, same semantics).
        msgs = await sub.fetch(self.batch_size, timeout=self.fetch_timeout_s)
        while len(msgs) < self.batch_size:
            try:
                more = await sub.fetch(self.batch_size - len(msgs), timeout=0.02)
            except (TimeoutError, nats.errors.TimeoutError):
                break
            if not more:
                break
            msgs.extend(more)
        return msgs

    async def _claim(self, session: AsyncSession, ids: list[str]) -> set[str]:
        """Record the batch's event ids as processed; returns those not processed before."""
        claim = _claim_unnest if self.db.dialect == "postgresql" else _claim_rows
        return await claim(session, self.table, self.durable, ids)

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        config = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait_s,
            max_ack_pending=max(self.batch_size * 4, 1000),
            filter_subjects=self.subjects if len(self.subjects) > 1 else None,
        )
        subject = self.subjects[0] if len(self.subjects) == 1 else ""
        return await self.js.pull_subscribe(
            subject, durable=self.durable, stream=self.stream, config=config
        )

    async def handle(self, msgs: list[Msg]) -> None:
        """Apply a fetched batch; falls back to one message at a time when the batch fails."""
        if not msgs:
            return
        try:
            await self._apply(msgs)
        except Exception:
            log.exception(
                "consumer %s batch of %d failed; retrying singly", self.durable, len(msgs)
            )
            for msg in msgs:
                try:
                    await self._apply([msg])
                except Exception:
                    log.exception("consumer %s could not apply %s", self.durable, msg.subject)
                    await _safe(msg.nak(delay=5.0))
                    continue
            return

    async def _apply(self, msgs: list[Msg]) -> None:
        events: dict[str, Event] = {}
        for msg in msgs:
            event_id = (msg.headers or {}).get(
                EVENT_ID_HEADER
            ) or f"seq:{msg.metadata.sequence.stream}"
            if event_id not in events:
                events[event_id] = Event(
                    event_id=event_id,
                    subject=msg.subject,
                    data=msg.data,
                    stream_seq=msg.metadata.sequence.stream,
                )
        async with self.db.write() as session:
            fresh_ids = await self._claim(session, list(events))
            fresh = [e for e in events.values() if e.event_id in fresh_ids]
            if fresh:
                await self.handler(session, fresh)
        self.applied_total += len(fresh)
        self.duplicates_total += len(msgs) - len(fresh)
        for msg in msgs:
            await _safe(msg.ack())


async def _claim_rows(
    session: AsyncSession, table: Table, consumer: str, ids: list[str]
) -> set[str]:
    now = datetime.now(UTC)
    seen: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        seen.update(
            (
                await session.execute(
                    select(table.c.event_id).where(
                        table.c.consumer == consumer, table.c.event_id.in_(chunk)
                    )
                )
            ).scalars()
        )
    fresh = [i for i in ids if i not in seen]
    if fresh:
        await session.execute(
            insert(table),
            [{"consumer": consumer, "event_id": i, "processed_at": now} for i in fresh],
        )
    return set(fresh)


async def _claim_unnest(
    session: AsyncSession, table: Table, consumer: str, ids: list[str]
) -> set[str]:
    # PostgreSQL: one statement records the batch and answers which ids are new, with the ids
    # bound as a single array instead of one parameter per row.
    stmt = text(
        f"INSERT INTO {table.name} (consumer, event_id, processed_at) "
        "SELECT :consumer, unnest(CAST(:ids AS varchar[])), now() "
        "ON CONFLICT DO NOTHING RETURNING event_id"
    )
    result = await session.execute(stmt, {"consumer": consumer, "ids": ids})
    return set(result.scalars())


async def _safe(coro: Awaitable[None]) -> None:
    try:
        await coro
    except Exception as exc:  # an unacked message is redelivered and then deduplicated
        log.debug("ack/nak failed: %s", exc)

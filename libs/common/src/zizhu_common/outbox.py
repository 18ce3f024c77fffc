"""Transactional outbox: events are written in the same transaction as the change and relayed to
JetStream with `Nats-Msg-Id` = event id, so a crash anywhere loses nothing and doubles nothing
within the stream's duplicate window (consumers dedupe beyond it)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message
from nats.js import JetStreamContext
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from zizhu_common.aio import wait_or_stop
from zizhu_common.db import BigIntPK, Database
from zizhu_common.messaging import EVENT_ID_HEADER, EVENT_TYPE_HEADER

log = logging.getLogger(__name__)

_PENDING_KEY = "zizhu_outbox_pending"


@event.listens_for(Session, "after_commit")
def _wake_relay(session: Session) -> None:
    outbox = session.info.pop(_PENDING_KEY, None)
    if outbox is not None:
        outbox.wakeup.set()


@event.listens_for(Session, "after_soft_rollback")
def _forget_pending(session: Session, _previous_transaction: Any) -> None:
    session.info.pop(_PENDING_KEY, None)


def outbox_table(metadata: MetaData) -> Table:
    """The `outbox_event` table, declared in a service's own metadata."""
    return Table(
        "outbox_event",
        metadata,
        Column("id", BigIntPK, primary_key=True, autoincrement=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("subject", String(200), nullable=False),
        Column("event_type", String(200), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Column("attempts", Integer, nullable=False, default=0),
        Index(
            "ix_outbox_event_unpublished",
            "id",
            postgresql_where=Column("published_at").is_(None),
            sqlite_where=Column("published_at").is_(None),
        ),
    )


def new_event_id() -> str:
    """A fresh event id: 32 hex digits like a UUID's, time-ordered — 12 of milliseconds since the
    epoch, then 20 random (80 bits). Consumers record every id they apply (`processed_event`);
    ids that grow with time are added at the right edge of that index instead of at random
    pages, which keeps a large table's inserts cheap."""
    return f"{int(time.time() * 1000):012x}{os.urandom(10).hex()}"


def stamp(message: Message, *, producer: str) -> str:
    """Fill `meta.event_id`, `meta.occurred_at` and `meta.producer` when unset; returns the id."""
    meta = message.meta  # type: ignore[attr-defined]
    if not meta.event_id:
        meta.event_id = new_event_id()
    if not meta.HasField("occurred_at"):
        meta.occurred_at.FromDatetime(datetime.now(UTC))
    if not meta.producer:
        meta.producer = producer
    return str(meta.event_id)


class Outbox:
    """Adds events to a service's outbox inside the caller's transaction and wakes the relay."""

    def __init__(self, table: Table, *, producer: str) -> None:
        self.table = table
        self.producer = producer
        self.wakeup = asyncio.Event()

    async def add(self, session: AsyncSession, subject: str, message: Message) -> str:
        """Record one event (protobuf with `meta`) to publish after commit; returns its id."""
        await self.add_many(session, [(subject, message)])
        return str(message.meta.event_id)  # type: ignore[attr-defined]

    async def add_many(self, session: AsyncSession, events: list[tuple[str, Message]]) -> None:
        """Record several events in one statement."""
        if not events:
            return
        now = datetime.now(UTC)
        rows = []
        for subject, message in events:
            event_id = stamp(message, producer=self.producer)
            rows.append(
                {
                    "event_id": event_id,
                    "subject": subject,
                    "event_type": message.DESCRIPTOR.full_name,
                    "payload": message.SerializeToString(),
                    "created_at": now,
                    "attempts": 0,
                }
            )
        await session.execute(insert(self.table), rows)
        self.wake_after_commit(session)

    def wake_after_commit(self, session: AsyncSession) -> None:
        """Wake the relay once the session commits: for callers that wrote outbox rows
        themselves (bulk paths writing ready rows in one statement or COPY); forgotten on
        rollback like events added through `add_many`."""
        session.sync_session.info[_PENDING_KEY] = self


class OutboxRelay:
    """Publishes unpublished outbox rows in id order and marks them published after the ack."""

    def __init__(
        self,
        *,
        db: Database,
        outbox: Outbox,
        js: JetStreamContext,
        batch_size: int = 500,
        poll_interval_s: float = 0.5,
        publish_timeout_s: float = 5.0,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.table = outbox.table
        self.js = js
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.publish_timeout_s = publish_timeout_s
        self.published_total = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until stop is set; NATS outages are retried with backoff, never skipped."""
        backoff = 0.2
        while not stop.is_set():
            try:
                sent = await self.relay_once()
                backoff = 0.2
            except Exception as exc:  # NATS down, timeouts: keep the rows, retry later
                log.warning("outbox relay failed, will retry: %s", exc)
                sent = 0
                await wait_or_stop(stop, backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if sent < self.batch_size:
                self.outbox.wakeup.clear()
                waiter = asyncio.ensure_future(self.outbox.wakeup.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait(
                    {waiter, stopper},
                    timeout=self.poll_interval_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                waiter.cancel()
                stopper.cancel()

    async def relay_once(self) -> int:
        """Publish one batch; returns how many rows were published."""
        if self.db.is_sqlite:
            return await self._relay_sqlite()
        return await self._relay_locked()

    async def _relay_sqlite(self) -> int:
        # One process owns a SQLite file: read, publish, then mark, without holding the write lock
        # while waiting for acks.
        async with self.db.read() as session:
            rows = (await session.execute(self._pending_query())).all()
        if not rows:
            return 0
        await self._publish(rows)
        async with self.db.write() as session:
            await self._mark(session, rows)
        return len(rows)

    async def _relay_locked(self) -> int:
        # Several replicas may relay the same table: each claims a batch with SKIP LOCKED.
        async with self.db.write() as session:
            rows = (
                await session.execute(self._pending_query().with_for_update(skip_locked=True))
            ).all()
            if not rows:
                return 0
            await self._publish(rows)
            await self._mark(session, rows)
        return len(rows)

    def _pending_query(self) -> Any:
        t = self.table
        return (
            select(t.c.id, t.c.event_id, t.c.subject, t.c.event_type, t.c.payload)
            .where(t.c.published_at.is_(None))
            .order_by(t.c.id)
            .limit(self.batch_size)
        )

    async def _publish(self, rows: Sequence[Any]) -> None:
        futures = [
            await self.js.publish_async(
                row.subject,
                row.payload,
                headers={EVENT_ID_HEADER: row.event_id, EVENT_TYPE_HEADER: row.event_type},
            )
            for row in rows
        ]
        acks = await asyncio.wait_for(asyncio.gather(*futures), timeout=self.publish_timeout_s)
        self.published_total += len(acks)

    async def _mark(self, session: AsyncSession, rows: Sequence[Any]) -> None:
        now = datetime.now(UTC)
        ids = [row.id for row in rows]
        for start in range(0, len(ids), 500):
            await session.execute(
                update(self.table)
                .where(self.table.c.id.in_(ids[start : start + 500]))
                .values(published_at=now, attempts=self.table.c.attempts + 1)
            )

"""Retention of the messaging tables every service has: published outbox rows and processed-event
ids are deleted once they are old enough to be of no further use.

- An outbox row is needed until JetStream has acknowledged it; after that it only serves
  diagnosis, so it is kept `OUTBOX_RETENTION_H` hours (default 7 days, well beyond JetStream's
  duplicate window) and then deleted. Unpublished rows are never deleted.
- A processed-event id guards against a redelivery, which JetStream makes only for messages left
  unacknowledged (within the consumer's ack wait × max deliveries, minutes). They are kept
  `PROCESSED_RETENTION_H` hours (default 30 days).

Deletes go in batches of `batch` rows, each in its own short transaction, so that a purge never
holds SQLite's write lock for long. The job runs hourly in every service (`ServiceRuntime`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, select

from zizhu_common.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Purged:
    """Rows deleted by one purge."""

    outbox: int
    processed: int


async def _purge_batches(
    db: Database, table: Table, key: str, condition: Any, batch: int, scope: Any = None
) -> int:
    """Delete rows matching condition, `batch` at a time by `key` (within `scope`, if given)."""
    total = 0
    column = table.c[key]
    while True:
        ids = select(column).where(condition).order_by(column).limit(batch).scalar_subquery()
        stmt = delete(table).where(column.in_(ids))
        if scope is not None:
            stmt = stmt.where(scope)
        async with db.write() as session:
            result = await session.execute(stmt)
        deleted = int(getattr(result, "rowcount", 0) or 0)
        total += deleted
        if deleted < batch:
            return total
        await asyncio.sleep(0)  # let other writers in between batches


async def purge_messaging(
    db: Database,
    *,
    outbox: Table,
    processed: Table,
    outbox_keep: timedelta,
    processed_keep: timedelta,
    now: datetime | None = None,
    batch: int = 5_000,
) -> Purged:
    """Delete published outbox rows older than outbox_keep and processed ids older than
    processed_keep (measured from now)."""
    now = now or datetime.now(UTC)
    published = outbox.c.published_at
    outbox_deleted = await _purge_batches(
        db, outbox, "id", published.is_not(None) & (published < now - outbox_keep), batch
    )
    processed_deleted = 0
    cutoff = now - processed_keep
    # processed_event has a composite key: delete per consumer, by event id within it.
    async with db.read() as session:
        consumers = (await session.execute(select(processed.c.consumer).distinct())).scalars().all()
    for consumer in consumers:
        mine = processed.c.consumer == consumer
        processed_deleted += await _purge_batches(
            db, processed, "event_id", mine & (processed.c.processed_at < cutoff), batch, mine
        )
    if outbox_deleted or processed_deleted:
        log.info("purged %d outbox rows and %d processed ids", outbox_deleted, processed_deleted)
    return Purged(outbox_deleted, processed_deleted)

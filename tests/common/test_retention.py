"""Retention of the messaging tables: old published outbox rows and old processed ids go, in
batches; unpublished rows, recent rows and other consumers' ids stay (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import MetaData, insert, select
from zizhu_common.consumer import processed_event_table
from zizhu_common.db import Database
from zizhu_common.outbox import outbox_table
from zizhu_common.retention import purge_messaging

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


async def test_purge_keeps_what_is_still_needed(database_url: str) -> None:
    metadata = MetaData()
    outbox, processed = outbox_table(metadata), processed_event_table(metadata)
    db = Database(database_url)
    try:
        async with db.write() as session:
            await session.run_sync(lambda s: metadata.create_all(s.connection()))
            old, recent = NOW - timedelta(days=10), NOW - timedelta(days=1)
            rows = []
            for i in range(7):  # 7 old published: more than one batch of 3
                rows.append(("old-pub", i, old, old))
            rows += [("old-unpublished", 0, old, None), ("recent-pub", 0, recent, recent)]
            await session.execute(
                insert(outbox),
                [
                    {
                        "event_id": f"{kind}-{i}",
                        "subject": "t.x",
                        "event_type": "T",
                        "payload": b"p",
                        "created_at": created,
                        "published_at": published,
                    }
                    for kind, i, created, published in rows
                ],  # fmt: skip
            )
            await session.execute(
                insert(processed),
                [
                    {"consumer": "a", "event_id": "e1", "processed_at": NOW - timedelta(days=40)},
                    {"consumer": "a", "event_id": "e2", "processed_at": NOW - timedelta(days=40)},
                    {"consumer": "a", "event_id": "e3", "processed_at": NOW - timedelta(days=2)},
                    # the same event id applied by another consumer recently stays
                    {"consumer": "b", "event_id": "e1", "processed_at": NOW - timedelta(days=2)},
                ],
            )
        purged = await purge_messaging(
            db, outbox=outbox, processed=processed, outbox_keep=timedelta(days=7),
            processed_keep=timedelta(days=30), now=NOW, batch=3,
        )  # fmt: skip
        assert (purged.outbox, purged.processed) == (7, 2)
        async with db.read() as session:
            left = set((await session.execute(select(outbox.c.event_id))).scalars())
            kept = set(
                (await session.execute(select(processed.c.consumer, processed.c.event_id))).all()
            )
        assert left == {"old-unpublished-0", "recent-pub-0"}
        assert kept == {("a", "e3"), ("b", "e1")}
        again = await purge_messaging(
            db, outbox=outbox, processed=processed, outbox_keep=timedelta(days=7),
            processed_keep=timedelta(days=30), now=NOW, batch=3,
        )  # fmt: skip
        assert (again.outbox, again.processed) == (0, 0)
    finally:
        await db.dispose()

"""The no-loss proof: 1,000 changes written through the outbox while nats-server is killed and
restarted, the consumer restarted, and a redelivery arrives after the duplicate window; the
durable consumer applies each change exactly once."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from zizhu_common.consumer import DurableConsumer, Event, processed_event_table
from zizhu_common.db import Database
from zizhu_common.devservers import NatsServer
from zizhu_common.messaging import connect_nats, ensure_stream
from zizhu_common.migrations import upgrade_to_head
from zizhu_common.outbox import Outbox, OutboxRelay, outbox_table
from zizhu_contracts.aid.v1 import events_pb2

TOTAL = 1000
DUP_WINDOW_S = 1.0
STREAM = "NOLOSS"
SUBJECT = "noloss.record.approved"

producer_md = MetaData()
p_outbox = outbox_table(producer_md)
p_change = Table(
    "change", producer_md, Column("n", Integer, primary_key=True), Column("v", String(20))
)
consumer_md = MetaData()
c_processed = processed_event_table(consumer_md)
c_applied = Table(
    "applied",
    consumer_md,
    Column("record_id", String(20), primary_key=True),
    Column("times", Integer, nullable=False),
)


async def _create(db: Database, metadata: MetaData) -> None:
    async with db.write_engine.begin() as conn:
        await conn.run_sync(metadata.create_all)


def _upsert(db: Database):
    return (pg_insert if db.dialect == "postgresql" else sqlite_insert)(c_applied)


async def _apply(db: Database, session, events: list[Event]) -> None:
    rows = []
    for e in events:
        msg = events_pb2.RecordApproved.FromString(e.data)
        rows.append({"record_id": msg.record_id, "times": 1})
    stmt = _upsert(db)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["record_id"], set_={"times": c_applied.c.times + 1}
        ),
        rows,
    )


async def _write_changes(db: Database, outbox: Outbox, start: int, stop: int) -> None:
    for n in range(start, stop, 10):
        async with db.write() as session:
            for k in range(n, min(n + 10, stop)):
                await session.execute(insert(p_change).values(n=k, v=f"r{k}"))
                await outbox.add(session, SUBJECT, events_pb2.RecordApproved(record_id=f"r{k}"))
        await asyncio.sleep(0)


async def _wait_until(predicate, within_s: float) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_no_event_lost_or_doubled_across_nats_and_consumer_restarts(
    backend: str,
    tmp_path: Path,
    nats_server_factory,
    request: pytest.FixtureRequest,
) -> None:
    if backend == "sqlite":
        producer_url = f"sqlite+aiosqlite:///{tmp_path}/producer.db"
        consumer_url = f"sqlite+aiosqlite:///{tmp_path}/consumer.db"
    else:
        producer_url = request.getfixturevalue("pg_database_url")
        consumer_url = producer_url  # separate tables are enough for one server
    nats: NatsServer = nats_server_factory(sync_always=True)
    producer, consumer_db = Database(producer_url), Database(consumer_url)
    await _create(producer, producer_md)
    await _create(consumer_db, consumer_md)
    outbox = Outbox(p_outbox, producer="noloss")

    nc = await connect_nats(nats.url, name="noloss-test")
    js = nc.jetstream(timeout=5)
    await ensure_stream(js, name=STREAM, subjects=["noloss.>"], duplicate_window_s=DUP_WINDOW_S)
    relay = OutboxRelay(
        db=producer,
        outbox=outbox,
        js=js,
        batch_size=100,
        poll_interval_s=0.1,
        publish_timeout_s=2.0,
    )

    def new_consumer() -> DurableConsumer:
        async def handler(session, events):
            await _apply(consumer_db, session, events)

        return DurableConsumer(
            js=js,
            db=consumer_db,
            table=c_processed,
            stream=STREAM,
            durable="noloss-apply",
            subjects=[SUBJECT],
            handler=handler,
            batch_size=100,
            ack_wait_s=2.0,
            fetch_timeout_s=0.2,
        )

    stop = asyncio.Event()
    consumer_stop = asyncio.Event()
    consumer = new_consumer()
    relay_task = asyncio.create_task(relay.run(stop))
    consumer_task = asyncio.create_task(consumer.run(consumer_stop))

    async def applied_count() -> int:
        async with consumer_db.read() as s:
            return (await s.execute(select(func.count()).select_from(c_applied))).scalar_one()

    async def unpublished() -> int:
        async with producer.read() as s:
            return (
                await s.execute(
                    select(func.count())
                    .select_from(p_outbox)
                    .where(p_outbox.c.published_at.is_(None))
                )
            ).scalar_one()

    try:
        await _write_changes(producer, outbox, 0, 300)
        await _wait_until(lambda: _gt(applied_count, 100), 30)

        # NATS dies mid-stream; writes go on into the outbox.
        nats.kill()
        await _write_changes(producer, outbox, 300, 600)
        await asyncio.sleep(0.5)
        nats.restart()

        # The consumer process restarts in the middle too.
        consumer_stop.set()
        await consumer_task
        consumer_stop = asyncio.Event()
        consumer = new_consumer()
        consumer_task = asyncio.create_task(consumer.run(consumer_stop))

        await _write_changes(producer, outbox, 600, TOTAL)
        await _wait_until(lambda: _eq(unpublished, 0), 60)

        # A relay that crashed after publishing but before marking re-sends its batch once the
        # duplicate window has passed: JetStream stores it again, the consumer must skip it.
        await asyncio.sleep(DUP_WINDOW_S + 0.5)
        async with producer.write() as s:
            await s.execute(update(p_outbox).where(p_outbox.c.id <= 50).values(published_at=None))
        outbox.wakeup.set()
        await _wait_until(lambda: _eq(unpublished, 0), 30)

        await _wait_until(lambda: _eq(applied_count, TOTAL), 60)
        info = await js.stream_info(STREAM)
        await _wait_until(lambda: _consumer_caught_up(js, info.state.last_seq), 30)
    finally:
        stop.set()
        consumer_stop.set()
        await asyncio.gather(relay_task, consumer_task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await nc.close()

    assert info.state.messages > TOTAL, "the late redelivery must really have reached the stream"
    async with consumer_db.read() as s:
        rows = dict((await s.execute(select(c_applied.c.record_id, c_applied.c.times))).all())
    assert set(rows) == {f"r{k}" for k in range(TOTAL)}, "no change may be lost"
    assert set(rows.values()) == {1}, "no change may be applied twice"
    assert consumer.duplicates_total > 0
    await producer.dispose()
    await consumer_db.dispose()


async def _gt(fn, n: int) -> bool:
    return await fn() > n


async def _eq(fn, n: int) -> bool:
    return await fn() == n


async def _consumer_caught_up(js, last_seq: int) -> bool:
    info = await js.consumer_info(STREAM, "noloss-apply")
    return info.delivered.stream_seq >= last_seq and info.num_ack_pending == 0


def test_migrations_create_messaging_tables(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/aid.db"
    upgrade_to_head(
        script_location=Path(__file__).parents[2] / "services/aid/migrations", database_url=url
    )
    upgrade_to_head(  # idempotent
        script_location=Path(__file__).parents[2] / "services/aid/migrations", database_url=url
    )
    import sqlite3

    names = {
        r[0]
        for r in sqlite3.connect(tmp_path / "aid.db").execute(
            "select name from sqlite_master where type='table'"
        )
    }
    assert {"outbox_event", "processed_event", "alembic_version"} <= names

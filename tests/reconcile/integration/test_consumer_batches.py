"""The shared durable consumer as reconcile's ingest drives it: batches pulled ahead while the
previous one is applied, handed back on stop, redelivered after a crash between commit and ack
and then skipped, two batches applied at once on PostgreSQL, and the deployment prefix on
durable names."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from nats.aio.msg import Msg
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from zizhu_common.consumer import DurableConsumer, Event, processed_event_table
from zizhu_common.db import Database
from zizhu_common.messaging import connect_nats, ensure_stream
from zizhu_contracts.aid.v1 import events_pb2

STREAM = "RCBATCH"
SUBJECT = "rcbatch.record.approved"
TOTAL = 120

md = MetaData()
processed = processed_event_table(md)
applied = Table(
    "applied",
    md,
    Column("record_id", String(20), primary_key=True),
    Column("times", Integer, nullable=False),
)


async def _handler(session, events: list[Event]) -> None:  # type: ignore[no-untyped-def]
    rows = [
        {"record_id": events_pb2.RecordApproved.FromString(e.data).record_id, "times": 1}
        for e in events
    ]
    insert = sqlite_insert if session.bind.dialect.name == "sqlite" else pg_insert
    stmt = insert(applied)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["record_id"], set_={"times": applied.c.times + 1}
        ),
        rows,
    )


async def _setup(tmp_path: Path, nats_url: str, url: str | None = None):  # type: ignore[no-untyped-def]
    db = Database(url or f"sqlite+aiosqlite:///{tmp_path}/consumer.db")
    async with db.write_engine.begin() as conn:
        await conn.run_sync(md.create_all)
    nc = await connect_nats(nats_url, name="rc-batches")
    js = nc.jetstream(timeout=10)
    await ensure_stream(js, name=STREAM, subjects=["rcbatch.>"])
    for i in range(TOTAL):
        await js.publish(
            SUBJECT,
            events_pb2.RecordApproved(record_id=f"r{i}").SerializeToString(),
            headers={"Nats-Msg-Id": f"ev-{i}"},
        )
    return db, nc, js


def _consumer(js, db: Database, **kw) -> DurableConsumer:  # type: ignore[no-untyped-def]
    return DurableConsumer(
        js=js,
        db=db,
        table=processed,
        stream=STREAM,
        durable=kw.pop("durable", "rc-batches"),
        subjects=[SUBJECT],
        handler=kw.pop("handler", _handler),
        batch_size=10,
        fetch_timeout_s=0.2,
        **kw,
    )


async def _count(db: Database) -> int:
    async with db.read() as s:
        return (await s.execute(select(func.count()).select_from(applied))).scalar_one()


async def _until(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(600):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never reached: {what}")


async def _times(db: Database) -> dict[str, int]:
    async with db.read() as s:
        return dict((await s.execute(select(applied.c.record_id, applied.c.times))).all())


async def test_prefetched_batch_is_handed_back_on_stop_and_applied_once_after_restart(
    tmp_path: Path, nats_server_factory
) -> None:
    nats = nats_server_factory()
    db, nc, js = await _setup(tmp_path, nats.url)
    try:
        # A long ack wait: whatever the first consumer held must come back by its nak, not by
        # the ack wait running out.
        # It is stopped while applying its first batch, when the next one is already pulled.
        stop = asyncio.Event()

        async def stop_after_first(session, events: list[Event]) -> None:  # type: ignore[no-untyped-def]
            await _handler(session, events)
            stop.set()

        first = _consumer(js, db, ack_wait_s=300, handler=stop_after_first)
        await first.run(stop)
        assert first.applied_total == 10
        # The server applies acks asynchronously to its answers: wait for the floor to move.
        await _until(lambda: _ack_floor_is(js, 10), "the applied batch is acknowledged")
        info = await js.consumer_info(STREAM, "rc-batches")
        assert info.ack_floor.stream_seq == 10, "the applied batch is acknowledged"
        assert info.delivered.stream_seq == 20, "the next batch had been pulled ahead"

        # The prefetched batch was handed back (nak): it comes again at once, not after the
        # 300 s ack wait (which would outlast the wait below).
        second = _consumer(js, db, ack_wait_s=300)
        stop2 = asyncio.Event()
        task2 = asyncio.create_task(second.run(stop2))
        await _until(lambda: _eq(_count(db), TOTAL), "every event applied")
        stop2.set()
        await task2
        assert set((await _times(db)).values()) == {1}, "no event applied twice"
        assert first.applied_total + second.applied_total == TOTAL
    finally:
        await nc.close()
        await db.dispose()


async def test_crash_between_commit_and_ack_redelivers_and_skips(
    tmp_path: Path, nats_server_factory, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    nats = nats_server_factory()
    db, nc, js = await _setup(tmp_path, nats.url, database_url)
    try:
        # The first process commits its batches but dies before any ack reaches the server.
        async def lost_ack(self: Msg) -> None:
            return None

        with monkeypatch.context() as m:
            m.setattr(Msg, "ack", lost_ack)
            m.setattr(Msg, "nak", lost_ack)
            crashed = _consumer(js, db, ack_wait_s=1.0)
            stop = asyncio.Event()
            task = asyncio.create_task(crashed.run(stop))
            await _until(lambda: _ge(_count(db), 30), "some batches committed")
            stop.set()
            await task
        committed = await _count(db)

        await _restart_and_drain(_consumer(js, db, ack_wait_s=1.0), js, db, committed)
    finally:
        await nc.close()
        await db.dispose()


async def test_durable_names_carry_the_deployment_prefix(
    tmp_path: Path, nats_server_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    nats = nats_server_factory()
    db, nc, js = await _setup(tmp_path, nats.url)
    try:
        monkeypatch.setenv("CONSUMER_PREFIX", "blue-")
        blue = _consumer(js, db)
        assert (blue.durable, blue.nats_durable) == ("rc-batches", "blue-rc-batches")
        stop = asyncio.Event()
        task = asyncio.create_task(blue.run(stop))
        await _until(lambda: _eq(_count(db), TOTAL), "every event applied")
        stop.set()
        await task
        info = await js.consumer_info(STREAM, "blue-rc-batches")
        assert info.name == "blue-rc-batches"
        # Processed ids keep the unprefixed name (the database is the deployment's own).
        async with db.read() as s:
            names = set((await s.execute(select(processed.c.consumer).distinct())).scalars())
        assert names == {"rc-batches"}
        monkeypatch.setenv("CONSUMER_PREFIX", "bad.prefix")
        with pytest.raises(ValueError):
            _consumer(js, db)
    finally:
        await nc.close()
        await db.dispose()


async def test_a_batch_mixing_new_and_already_applied_events_applies_only_the_new_ones(
    tmp_path: Path, nats_server_factory, database_url: str
) -> None:
    nats = nats_server_factory()
    db, nc, js = await _setup(tmp_path, nats.url, database_url)
    try:
        sub = await js.pull_subscribe(SUBJECT, durable="rc-mixed", stream=STREAM)
        msgs = await sub.fetch(20, timeout=5)
        consumer = _consumer(js, db)
        await consumer.handle(msgs[5:10])
        assert (consumer.applied_total, consumer.duplicates_total) == (5, 0)
        # Redeliveries of 5..9 among new events 0..4 and 10..19, and one id twice in the batch.
        await consumer.handle([*msgs[:5], *msgs, msgs[12]])
        assert consumer.applied_total == 20
        # 26 messages, 15 new: 5 applied before (5..9), 6 repeated within the batch (0..4, 12).
        assert consumer.duplicates_total == 11
        times = await _times(db)
        assert len(times) == 20 and set(times.values()) == {1}, "each event applied once"
        async with db.read() as s:
            recorded = (await s.execute(select(func.count()).select_from(processed))).scalar_one()
        assert recorded == 20
        # Every id already recorded: nothing applied, nothing recorded twice.
        await consumer.handle(msgs)
        assert consumer.applied_total == 20
        assert set((await _times(db)).values()) == {1}
    finally:
        await nc.close()
        await db.dispose()


@pytest.mark.postgres
async def test_two_batches_in_flight_apply_every_event_once_across_a_crash_and_a_restart(
    tmp_path: Path, nats_server_factory, monkeypatch: pytest.MonkeyPatch, pg_database_url: str
) -> None:
    nats = nats_server_factory()
    db, nc, js = await _setup(tmp_path, nats.url, pg_database_url)
    running = 0
    most = 0

    async def slow(session, events: list[Event]) -> None:  # type: ignore[no-untyped-def]
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await _handler(session, events)
            await asyncio.sleep(0.05)  # the transaction stays open while the next batch starts
        finally:
            running -= 1

    try:
        # A first process with two batches in flight commits some and dies before any ack.
        async def lost_ack(self: Msg) -> None:
            return None

        with monkeypatch.context() as m:
            m.setattr(Msg, "ack", lost_ack)
            m.setattr(Msg, "nak", lost_ack)
            crashed = _consumer(js, db, ack_wait_s=1.0, handler=slow, in_flight=2)
            assert crashed.in_flight == 2
            stop = asyncio.Event()
            task = asyncio.create_task(crashed.run(stop))
            await _until(lambda: _ge(_count(db), 40), "some batches committed")
            task.cancel()  # killed mid-stream: the batches being applied roll back
            with pytest.raises(asyncio.CancelledError):
                await task
        assert most == 2, "two batches were applied at once"
        committed = await _count(db)

        again = _consumer(js, db, ack_wait_s=1.0, handler=slow, in_flight=2)
        await _restart_and_drain(again, js, db, committed)
    finally:
        await nc.close()
        await db.dispose()


def test_sqlite_applies_one_batch_at_a_time(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/one.db")
    consumer = DurableConsumer(
        js=None,  # type: ignore[arg-type]
        db=db,
        table=processed,
        stream=STREAM,
        durable="x",
        subjects=[SUBJECT],
        handler=_handler,
        in_flight=4,
    )
    assert consumer.in_flight == 1, "SQLite has one writer"


async def _restart_and_drain(again: DurableConsumer, js, db: Database, committed: int) -> None:  # type: ignore[no-untyped-def]
    """The restarted consumer applies every event once: what the crashed one committed without
    acknowledging comes back and is skipped as a duplicate."""
    stop = asyncio.Event()
    task = asyncio.create_task(again.run(stop))
    await _until(lambda: _eq(_count(db), TOTAL), "every event applied")
    await _until(lambda: _caught_up(js), "every delivery acknowledged")
    stop.set()
    await task
    assert again.duplicates_total >= committed, "the unacked batches came back and were skipped"
    assert set((await _times(db)).values()) == {1}, "no event applied twice"


async def _ge(value, n: int) -> bool:  # type: ignore[no-untyped-def]
    return (await value) >= n


async def _eq(value, n: int) -> bool:  # type: ignore[no-untyped-def]
    return (await value) == n


async def _ack_floor_is(js, seq: int) -> bool:  # type: ignore[no-untyped-def]
    info = await js.consumer_info(STREAM, "rc-batches")
    return bool(info.ack_floor.stream_seq == seq)


async def _caught_up(js) -> bool:  # type: ignore[no-untyped-def]
    info = await js.consumer_info(STREAM, "rc-batches")
    return info.num_ack_pending == 0 and info.num_pending == 0

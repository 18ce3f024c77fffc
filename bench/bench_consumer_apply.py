"""consumer-apply: events/s a batched durable consumer applies exactly once (dedup table,
upsert into a read copy, commit, then ack), on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import time

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from zizhu_common import devservers
from zizhu_common.consumer import DurableConsumer, Event
from zizhu_common.db import Database
from zizhu_common.messaging import connect_nats, ensure_stream
from zizhu_common.outbox import stamp
from zizhu_contracts.aid.v1 import events_pb2

from bench.eventload import approved_events, approved_record, consumer_metadata, processed
from bench.registry import Context, Result, benchmark


async def _fill_stream(nats_url: str, stream: str, n: int, seed: int) -> None:
    nc = await connect_nats(nats_url, name="bench-fill")
    js = nc.jetstream(timeout=30)
    await ensure_stream(js, name=stream, subjects=[f"{stream.lower()}.>"])
    subject = f"{stream.lower()}.aid.record.approved"
    pending = []
    for e in approved_events(n, seed=seed):
        event_id = stamp(e, producer="aid")
        pending.append(
            await js.publish_async(
                subject, e.SerializeToString(), headers={"Nats-Msg-Id": event_id}
            )
        )
        if len(pending) >= 2000:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    await nc.close()


async def _measure(url: str, nats_url: str, stream: str, n: int, batch: int) -> float:
    db = Database(url)
    async with db.write_engine.begin() as conn:
        await conn.run_sync(consumer_metadata.create_all)
    insert = pg_insert if db.dialect == "postgresql" else sqlite_insert

    async def apply(session, events: list[Event]) -> None:
        rows = []
        for ev in events:
            m = events_pb2.RecordApproved.FromString(ev.data)
            rows.append(
                {
                    "record_id": m.record_id,
                    "id_number_index": m.id_number_blind_index,
                    "school_code": m.school_org_code,
                    "project_code": m.project_code,
                    "period": m.period.school_year,
                    "term": m.period.term,
                    "amount_fen": m.amount_fen,
                }
            )
        await session.execute(insert(approved_record).on_conflict_do_nothing(), rows)

    nc = await connect_nats(nats_url, name="bench-consumer")
    js = nc.jetstream(timeout=10)
    consumer = DurableConsumer(
        js=js, db=db, table=processed, stream=stream, durable="bench-apply",
        subjects=[f"{stream.lower()}.aid.record.approved"], handler=apply, batch_size=batch,
    )  # fmt: skip
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(consumer.run(stop))
    while consumer.applied_total < n:
        await asyncio.sleep(0.01)
        if task.done():
            task.result()
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    async with db.read() as session:
        count = (
            await session.execute(select(func.count()).select_from(approved_record))
        ).scalar_one()
    assert count == n, f"applied {count}, expected {n}"
    await nc.close()
    await db.dispose()
    return n / elapsed


@benchmark(
    "consumer-apply",
    ">=",
    5_000,
    "events/s",
    "batched idempotent durable consumer: dedup, upsert, commit, ack",
)
def run(ctx: Context) -> Result:
    """Fill a stream with approved-record events, then time the consumer draining it."""
    n = ctx.rows(small=10_000, full=100_000)
    batch = int(os.environ.get("BENCH_BATCH", "500"))
    nats = devservers.start_nats(data_dir=ctx.tempdir("nats"), sync_always=False)
    pg = devservers.start_postgres(data_dir=ctx.tempdir("pg"))
    pg.create_database("bench_consumer")
    try:
        asyncio.run(_fill_stream(nats.url, "APPLYLITE", n, ctx.seed))
        asyncio.run(_fill_stream(nats.url, "APPLYPG", n, ctx.seed))
        sqlite_rate = asyncio.run(
            _measure(
                f"sqlite+aiosqlite:///{ctx.workdir}/consumer.db", nats.url, "APPLYLITE", n, batch
            )
        )
        pg_rate = asyncio.run(_measure(pg.url("bench_consumer"), nats.url, "APPLYPG", n, batch))
    finally:
        pg.stop()
        nats.stop()
    lines = [
        f"events: {n}, fetch batch {batch}, one transaction per batch, ack after commit",
        f"SQLite (embedded default): {sqlite_rate:,.0f} events/s",
        f"PostgreSQL: {pg_rate:,.0f} events/s",
        "figure: the slower of the two",
    ]
    return Result(min(sqlite_rate, pg_rate), lines)

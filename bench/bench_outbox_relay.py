"""outbox-relay: events/s from the producer's commit to the JetStream ack, with nats-server on
`sync_interval: always` (every stored message fsynced), on the embedded default (SQLite) and on
PostgreSQL; the commit→ack latency of each event is printed too."""

from __future__ import annotations

import asyncio
import statistics
import time
from itertools import islice

from sqlalchemy import func, select
from zizhu_common import devservers
from zizhu_common.db import Database
from zizhu_common.messaging import connect_nats, ensure_stream
from zizhu_common.outbox import Outbox, OutboxRelay

from bench.eventload import approved_events, event_subject, outbox, producer_metadata
from bench.registry import Context, Result, benchmark

COMMIT_SIZE = 50  # events per producer transaction (a bulk audit decision of 50 records)


async def _measure(url: str, nats_url: str, stream: str, n: int, seed: int) -> tuple[float, list]:
    db = Database(url)
    async with db.write_engine.begin() as conn:
        await conn.run_sync(producer_metadata.create_all)
    nc = await connect_nats(nats_url, name="bench-outbox")
    js = nc.jetstream(timeout=10)
    await ensure_stream(js, name=stream, subjects=[f"{stream.lower()}.>"], duplicate_window_s=120)
    box = Outbox(outbox, producer="bench")
    relay = OutboxRelay(db=db, outbox=box, js=js, batch_size=500, poll_interval_s=0.05)
    subject = f"{stream.lower()}.{event_subject()}"
    events = list(approved_events(n, seed=seed))
    stop = asyncio.Event()
    started = time.perf_counter()
    relay_task = asyncio.create_task(relay.run(stop))
    it = iter(events)
    while chunk := list(islice(it, COMMIT_SIZE)):
        async with db.write() as session:
            await box.add_many(session, [(subject, e) for e in chunk])
    while True:
        async with db.read() as session:
            left = (
                await session.execute(
                    select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
                )
            ).scalar_one()
        if left == 0:
            break
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    stop.set()
    await relay_task
    async with db.read() as session:
        rows = (await session.execute(select(outbox.c.created_at, outbox.c.published_at))).all()
    latencies = sorted((p - c).total_seconds() * 1000 for c, p in rows)
    info = await js.stream_info(stream)
    assert info.state.messages == n, f"stream holds {info.state.messages}, expected {n}"
    await nc.close()
    await db.dispose()
    return n / elapsed, latencies


def _pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(len(values) * p))]


@benchmark(
    "outbox-relay",
    ">=",
    2_000,
    "events/s",
    "commit → JetStream ack through the transactional outbox, nats sync_interval always",
)
def run(ctx: Context) -> Result:
    """Producer commits batches of 50 events while the relay publishes them."""
    n = ctx.rows(small=5_000, full=50_000)
    nats = devservers.start_nats(data_dir=ctx.tempdir("nats"), sync_always=True)
    pg = devservers.start_postgres(data_dir=ctx.tempdir("pg"))
    pg.create_database("bench_outbox")
    try:
        sqlite_rate, sqlite_lat = asyncio.run(
            _measure(
                f"sqlite+aiosqlite:///{ctx.workdir}/outbox.db", nats.url, "BOXLITE", n, ctx.seed
            )
        )
        pg_rate, pg_lat = asyncio.run(
            _measure(pg.url("bench_outbox"), nats.url, "BOXPG", n, ctx.seed)
        )
    finally:
        pg.stop()
        nats.stop()
    lines = [
        f"events: {n}, {COMMIT_SIZE} per commit, nats-server sync_interval: always",
        f"SQLite (embedded default): {sqlite_rate:,.0f} events/s; commit→ack delay under a saturating producer "
        f"p50 {statistics.median(sqlite_lat):.0f} ms, p99 {_pct(sqlite_lat, 0.99):.0f} ms",
        f"PostgreSQL: {pg_rate:,.0f} events/s; commit→ack delay under a saturating producer "
        f"p50 {statistics.median(pg_lat):.0f} ms, p99 {_pct(pg_lat, 0.99):.0f} ms",
        "figure: the slower of the two",
    ]
    return Result(min(sqlite_rate, pg_rate), lines)

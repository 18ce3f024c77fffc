"""reconcile-ingest: events/s reconcile's event-fed copy absorbs — a day of `aid.record.approved`
events (need-based and merit, national-shaped) drained from JetStream by reconcile's own durable
consumer and handler: dedup table, student and period keys, the record, the funded set, commit,
ack. On SQLite (the embedded default) and PostgreSQL; the figure is the slower of the two. The
anchor is the same stream drained and acked without applying anything (JetStream + decode)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import time

from sqlalchemy import func, select
from zizhu_common import devservers
from zizhu_common.consumer import DurableConsumer, Event
from zizhu_common.db import Database
from zizhu_common.messaging import connect_nats, ensure_stream
from zizhu_common.outbox import stamp
from zizhu_contracts.aid.v1 import events_pb2
from zizhu_contracts.common.v1 import common_pb2

from bench.eventload import approved_events
from bench.registry import Context, Result, benchmark

# Pull subscriptions per durable (the service has one).
PULLERS = int(os.environ.get("BENCH_PULLERS", "1"))


async def _fill(nats_url: str, stream: str, n: int, seed: int) -> None:
    nc = await connect_nats(nats_url, name="bench-fill")
    js = nc.jetstream(timeout=30)
    await ensure_stream(js, name=stream, subjects=[f"{stream.lower()}.>"])
    pending = []
    for i, e in enumerate(approved_events(n, seed=seed)):
        # Students get several records over a day; every fifth record is merit (奖优).
        e.student_id = f"S{i % max(1, n // 3):09d}"
        if i % 5 == 4:
            e.project_category = common_pb2.AID_CATEGORY_MERIT
        event_id = stamp(e, producer="aid")
        pending.append(
            await js.publish_async(
                f"{stream.lower()}.aid.record.approved",
                e.SerializeToString(),
                headers={"Nats-Msg-Id": event_id},
            )
        )
        if len(pending) >= 5000:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    await nc.close()


def _in_thread(fn, *args):  # type: ignore[no-untyped-def]
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


async def _drain(
    url: str | None, nats_url: str, stream: str, n: int, batch: int, in_flight: int = 1
) -> float:
    """Events/s of a durable consumer; url None = decode and ack only (the anchor)."""
    from reconcile_service import tables
    from reconcile_service.events import apply_aid
    from reconcile_service.settings import Settings
    from reconcile_service.wiring import migrate, tune_database, tune_process

    db: Database
    if url is not None:
        _in_thread(migrate, Settings(zizhu_env="test", database_url=url))
        db = Database(url)
        tune_database(db)  # as the service does (wiring.build)

        async def handler(session, events: list[Event]) -> None:  # type: ignore[no-untyped-def]
            # The bench streams prefix the subject (one stream per database); the handler
            # dispatches on aid's own subject.
            await apply_aid(
                session,
                [Event(e.event_id, "aid.record.approved", e.data, e.stream_seq) for e in events],
            )
    else:
        db = Database(f"sqlite+aiosqlite:///{os.environ.get('TMPDIR', '/tmp')}/anchor-{stream}.db")
        async with db.write_engine.begin() as conn:
            await conn.run_sync(tables.metadata.create_all, tables=[tables.processed_event])

        async def handler(session, events: list[Event]) -> None:  # type: ignore[no-untyped-def]
            for ev in events:
                events_pb2.RecordApproved.FromString(ev.data)

    nc = await connect_nats(nats_url, name="bench-ingest")
    js = nc.jetstream(timeout=30)
    tune_process()  # as the service does once started (wiring.build); the anchor too
    consumers = [
        DurableConsumer(
            js=js,
            db=db,
            table=tables.processed_event,
            stream=stream,
            durable="reconcile-bench",
            subjects=[f"{stream.lower()}.aid.record.approved"],
            handler=handler,
            batch_size=batch,
            in_flight=in_flight,
        )  # fmt: skip
        for _ in range(PULLERS)
    ]
    stop = asyncio.Event()
    started = time.perf_counter()
    tasks = [asyncio.create_task(c.run(stop)) for c in consumers]
    while sum(c.applied_total for c in consumers) < n:
        await asyncio.sleep(0.01)
        for task in tasks:
            if task.done():
                task.result()
    elapsed = time.perf_counter() - started
    stop.set()
    await asyncio.gather(*tasks)
    if url is not None:
        async with db.read() as session:
            count = (
                await session.execute(select(func.count()).select_from(tables.aid_record))
            ).scalar_one()
        assert count == n, f"applied {count}, expected {n}"
    await nc.close()
    await db.dispose()
    return n / elapsed


@benchmark(
    "reconcile-ingest",
    ">=",
    20_000,
    "events/s",
    "aid approvals ingested by reconcile's durable consumer into its copy and funded set",
)
def run(ctx: Context) -> Result:
    """Fill streams with approvals, then time reconcile's consumer draining them."""
    n = ctx.rows(small=20_000, full=200_000)
    # The service's own batch size (reconcile Settings.consumer_batch_size) unless overridden.
    from reconcile_service.settings import Settings

    batch = int(
        os.environ.get("BENCH_BATCH", str(Settings.model_fields["consumer_batch_size"].default))
    )
    # The service's aid consumer applies this many batches at once on PostgreSQL.
    in_flight = int(
        os.environ.get(
            "BENCH_IN_FLIGHT", str(Settings.model_fields["aid_ingest_in_flight"].default)
        )
    )
    nats = devservers.start_nats(data_dir=ctx.tempdir("nats"), sync_always=False)
    pg = devservers.start_postgres(data_dir=ctx.tempdir("pg"))
    pg.create_database("bench_ingest")
    os.environ["TMPDIR"] = str(ctx.workdir)
    try:
        for stream in ("INGESTANCHOR", "INGESTLITE", "INGESTPG"):
            asyncio.run(_fill(nats.url, stream, n, ctx.seed))
        anchor = asyncio.run(_drain(None, nats.url, "INGESTANCHOR", n, batch))
        lite = asyncio.run(
            _drain(f"sqlite+aiosqlite:///{ctx.workdir}/ingest.db", nats.url, "INGESTLITE", n, batch)
        )
        pg_rate = asyncio.run(
            _drain(pg.url("bench_ingest"), nats.url, "INGESTPG", n, batch, in_flight)
        )
    finally:
        pg.stop()
        nats.stop()
    lines = [
        f"events: {n:,} aid.record.approved ({n // 3:,} students, 20 % merit), "
        f"fetch batch {batch}, one transaction per batch, ack after commit; "
        f"batches applied at once: SQLite 1, PostgreSQL {in_flight}",
        f"SQLite (embedded default): {lite:,.0f} events/s",
        f"PostgreSQL: {pg_rate:,.0f} events/s",
        f"anchor (fetch + decode + dedup + ack, nothing applied): {anchor:,.0f} events/s; "
        f"ratio SQLite {anchor / lite:.1f}x, PostgreSQL {anchor / pg_rate:.1f}x",
        f"a national day of ~1.6 M approvals (1.6e8 a year / 100 days) takes "
        f"{1_600_000 / min(lite, pg_rate) / 60:.1f} min",
        "figure: the slower of the two",
    ]
    return Result(min(lite, pg_rate), lines)

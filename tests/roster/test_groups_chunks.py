"""Chunks of an issue batch are stored side by side: a batch shows its progress while receiving,
two deliveries of the same chunk leave one, and on PostgreSQL chunks do not wait for each other
while a commit waits for the chunks in flight."""

from __future__ import annotations

import asyncio

import pytest
from roster_service import tables
from sqlalchemy import func, select
from zizhu_contracts.roster.v1 import roster_pb2 as pb

from tests.roster.conftest import NATION, md
from tests.roster.test_groups import DIBAO, issued, seed_students


async def _open(roster) -> pb.IssueBatch:
    return (
        await roster.stub.IssueSpecialGroupBatch(
            pb.IssueSpecialGroupBatchRequest(
                title="分块下发", groups=[DIBAO], mode=pb.ISSUE_MODE_FULL, as_of_date="2024-09-15"
            ),
            metadata=md(NATION),
        )
    ).batch


async def _add(roster, batch_id: str, number: int, rows: list) -> pb.AddIssuedRowsResponse:
    return await roster.stub.AddIssuedRows(
        pb.AddIssuedRowsRequest(batch_id=batch_id, chunk_number=number, rows=rows),
        metadata=md(NATION),
    )


async def _get(roster, batch_id: str) -> pb.IssueBatch:
    return (
        await roster.stub.GetSpecialGroupBatch(
            pb.GetSpecialGroupBatchRequest(batch_id=batch_id), metadata=md(NATION)
        )
    ).batch


async def test_chunks_sent_at_once_all_land_and_the_batch_shows_its_progress(roster):
    await seed_students(roster)
    batch = await _open(roster)
    chunks = {n: [issued(10 * n + i) for i in range(n)] for n in range(1, 7)}  # 21 rows
    replies = await asyncio.gather(*(_add(roster, batch.batch_id, n, r) for n, r in chunks.items()))
    # Each reply counts the rows of the chunks committed before it and its own.
    assert all(len(chunks[n]) <= r.row_count <= 21 for n, r in zip(chunks, replies, strict=True))
    progress = await _get(roster, batch.batch_id)
    assert progress.status == pb.ISSUE_BATCH_STATUS_RECEIVING
    assert (progress.chunk_count, progress.row_count) == (6, 21)
    listed = await roster.stub.ListSpecialGroupBatches(
        pb.ListSpecialGroupBatchesRequest(org_code="000000"), metadata=md(NATION)
    )
    [seen] = [b for b in listed.batches if b.batch_id == batch.batch_id]
    assert (seen.chunk_count, seen.row_count) == (6, 21)

    await roster.stub.CommitSpecialGroupBatch(
        pb.CommitSpecialGroupBatchRequest(batch_id=batch.batch_id, chunk_count=6),
        metadata=md(NATION),
    )
    await roster.services.groups.drain()
    done = await _get(roster, batch.batch_id)
    assert done.status == pb.ISSUE_BATCH_STATUS_COMMITTED, done.error_message
    assert (done.chunk_count, done.row_count) == (6, 21)
    async with roster.db.read() as session:
        stored = (
            await session.execute(
                select(func.count()).where(tables.issued_row.c.batch_id == batch.batch_id)
            )
        ).scalar_one()
    assert stored == 21


async def test_two_deliveries_of_one_chunk_at_once_leave_one(roster):
    batch = await _open(roster)
    first = [issued(i) for i in range(1, 6)]
    second = [issued(i) for i in range(20, 23)]
    await asyncio.gather(
        _add(roster, batch.batch_id, 1, first), _add(roster, batch.batch_id, 1, second)
    )
    R, C = tables.issued_row, tables.issue_chunk
    async with roster.db.read() as session:
        rows = (
            await session.execute(
                select(R.c.row_number, R.c.name)
                .where(R.c.batch_id == batch.batch_id)
                .order_by(R.c.row_number)
            )
        ).all()
        chunk = (
            await session.execute(
                select(C.c.row_count, C.c.deliveries).where(C.c.batch_id == batch.batch_id)
            )
        ).one()
    # Whichever delivery came last replaced the other whole.
    assert [n for n, _ in rows] == list(range(1, len(rows) + 1))
    names = [name for _, name in rows]
    assert names in (
        [r.name for r in first],
        [r.name for r in second],
    )
    assert tuple(chunk) == (len(rows), 2)
    assert (await _get(roster, batch.batch_id)).row_count == len(rows)


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_chunks_share_the_batch_and_a_commit_waits_for_them(roster):
    batch = await _open(roster)
    repo = roster.services.groups.repo
    db = roster.db
    first_in = asyncio.Event()
    release = asyncio.Event()

    async def chunk_in_flight() -> None:
        async with db.write() as session:
            await repo.get_batch(session, batch.batch_id, share=True)
            first_in.set()
            await release.wait()

    holder = asyncio.create_task(chunk_in_flight())
    await first_in.wait()
    # Another chunk takes its share at once.
    async with db.write() as session:
        await asyncio.wait_for(repo.get_batch(session, batch.batch_id, share=True), 5)

    # A commit (or cancel) waits until the chunk in flight is stored.
    async def commit_lock() -> None:
        async with db.write() as session:
            await repo.get_batch(session, batch.batch_id, lock=True)

    committing = asyncio.create_task(commit_lock())
    await asyncio.sleep(0.5)
    assert not committing.done()
    release.set()
    await asyncio.wait_for(committing, 5)
    await holder


async def test_matching_runs_with_the_cyclic_collector_paused_and_restores_it(roster, monkeypatch):
    """A committed batch is matched in the background, outside its commit call: the collector is
    paused there too (millions of rows alive), and is on again once matching is done."""
    import gc

    await seed_students(roster)
    batch = await _open(roster)
    await _add(roster, batch.batch_id, 1, [issued(i) for i in range(1, 4)])
    repo = roster.services.groups.repo
    seen: list[bool] = []
    mark = repo.mark_duplicates

    async def spy(session, batch_id):
        seen.append(gc.isenabled())
        await mark(session, batch_id)

    monkeypatch.setattr(repo, "mark_duplicates", spy)
    assert gc.isenabled()
    await roster.stub.CommitSpecialGroupBatch(
        pb.CommitSpecialGroupBatchRequest(batch_id=batch.batch_id, chunk_count=1),
        metadata=md(NATION),
    )
    await roster.services.groups.drain()
    assert (await _get(roster, batch.batch_id)).status == pb.ISSUE_BATCH_STATUS_COMMITTED
    assert seen == [False]
    assert gc.isenabled()

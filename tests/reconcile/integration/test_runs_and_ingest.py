"""The 02:00 job once across replicas, runs that die or fail leaving nothing behind, and the
event-fed copy: idempotent, order-tolerant, rebuildable by replaying the streams."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import grpc
import pytest
from reconcile_service import tables as t
from reconcile_service.events import HANDLERS, SOURCES
from reconcile_service.lock import RunLock
from reconcile_service.repository import comparison
from reconcile_service.repository.runs import RUNNING, RunRow, insert_run
from reconcile_service.scheduler import DailyScheduler
from reconcile_service.service import ReconcileServices
from reconcile_service.wiring import rebuild_read_copy
from reconcile_world import (
    AUTUMN_2024,
    BAIYUN,
    BAIYUN_PS,
    HUAYANG,
    SELF,
    TIANHE,
    World,
    caller,
    error_of,
)
from sqlalchemy import func, select, text
from zizhu_common.consumer import Event
from zizhu_common.rpc import CallerContext
from zizhu_contracts.identity.v1 import events_pb2 as identity_events
from zizhu_contracts.reconcile.v1 import reconcile_pb2 as pb


async def _basic(w: World) -> None:
    f = w.feed
    await f.org_tree()
    await f.period(AUTUMN_2024)
    await f.project("ZXJ")
    for school in (HUAYANG, BAIYUN_PS):
        a = await f.student(school)
        await f.membership(a, 1)
    b = await f.student(HUAYANG)
    await f.membership(b, 5)
    await f.approve(b, "ZXJ", AUTUMN_2024)
    await w.sync()


def _replica(w: World) -> ReconcileServices:
    """A second replica: same database and Redis, its own lock client and task list."""
    deps = w.services.deps
    other = ReconcileServices(
        type(deps)(
            settings=deps.settings,
            db=deps.db,
            outbox=deps.outbox,
            lock=RunLock(deps.lock.redis, lease_s=deps.settings.run_lock_lease_s),
            cipher=deps.cipher,
            clock=deps.clock,
        )
    )
    return other


async def test_the_0200_run_happens_once_across_replicas_and_only_once_per_slot(
    world: World,
) -> None:
    await _basic(world)
    world.clock.now = datetime(2024, 11, 20, 18, 0, 5, tzinfo=UTC)  # 02:00:05 in Shanghai
    replicas = [world.services, _replica(world), _replica(world)]
    schedulers = [DailyScheduler(r.runs, r.deps.settings, world.clock) for r in replicas]
    waits = await asyncio.gather(*(s.tick() for s in schedulers))
    again = await asyncio.gather(*(s.tick() for s in schedulers))
    runs = (await world.stub.ListRuns(pb.ListRunsRequest(), metadata=caller("000000"))).runs
    assert len(runs) == 1
    run = runs[0]
    assert run.trigger == pb.RUN_TRIGGER_SCHEDULED and run.schedule_slot == "2024-11-21T02:00+08:00"
    assert run.status == pb.RUN_STATUS_SUCCEEDED and run.unfunded_open == 2
    assert run.HasField("started_at") and run.HasField("finished_at")
    assert [(p.school_year, p.term) for p in run.periods] == [AUTUMN_2024]
    assert run.period_counts[0].students_checked == 3
    assert run.findings_raised >= 0 and run.include_verification
    assert max(again) <= 900 and min(waits + again) >= 1
    # The next day's slot runs again, at 02:00 of that day.
    world.clock.now = datetime(2024, 11, 21, 17, 59, tzinfo=UTC)
    await asyncio.gather(*(s.tick() for s in schedulers))
    assert (
        len((await world.stub.ListRuns(pb.ListRunsRequest(), metadata=caller("000000"))).runs) == 1
    )
    world.clock.now = datetime(2024, 11, 21, 18, 1, tzinfo=UTC)
    await asyncio.gather(*(s.tick() for s in schedulers))
    runs = (await world.stub.ListRuns(pb.ListRunsRequest(), metadata=caller("000000"))).runs
    assert [r.schedule_slot for r in runs] == ["2024-11-22T02:00+08:00", "2024-11-21T02:00+08:00"]


async def test_a_killed_run_is_reported_failed_and_the_slot_runs_again(world: World) -> None:
    await _basic(world)
    world.clock.now = datetime(2024, 11, 20, 18, 30, tzinfo=UTC)
    slot = "2024-11-21T02:00+08:00"
    dead = RunRow(
        run_id="dead0001", trigger=1, periods=[], org_code="", org_path="/",
        include_verification=True, status=RUNNING, triggered_by="system:scheduler",
        schedule_slot=slot, started_at=world.clock.now,
    )  # fmt: skip
    async with world.db.write() as session:
        await insert_run(session, dead)
    # The killed replica's lease: still held for a moment, then expired.
    redis = world.services.deps.lock.redis
    await redis.set("reconcile:lock:run", "dead0001", px=60_000)
    scheduler = DailyScheduler(world.services.runs, world.services.deps.settings, world.clock)
    assert await scheduler.tick() == world.services.deps.settings.daily_retry_interval_s
    await redis.delete("reconcile:lock:run")  # the dead replica's lease ran out
    got = await world.stub.GetRun(pb.GetRunRequest(run_id="dead0001"), metadata=caller("000000"))
    assert got.run.status == pb.RUN_STATUS_FAILED and "中断" in got.run.error_message
    world.clock.advance(minutes=1)
    await scheduler.tick()
    runs = (await world.stub.ListRuns(pb.ListRunsRequest(), metadata=caller("000000"))).runs
    assert [r.status for r in runs] == [pb.RUN_STATUS_SUCCEEDED, pb.RUN_STATUS_FAILED]
    assert runs[0].unfunded_open == 2


async def test_a_failing_run_keeps_nothing_and_a_rerun_gives_the_clean_result(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _basic(world)
    real = comparison.carry_legacy_reasons

    async def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk full")

    monkeypatch.setattr("reconcile_service.service.runs.finding_repo.apply_hits", broken)
    failed = await world.run("440000", verify=True)
    assert failed.status == pb.RUN_STATUS_FAILED and "RuntimeError" in failed.error_message
    assert await world.unfunded("440000") == []
    async with world.db.read() as session:
        subjects = (await session.execute(select(t.outbox_event.c.subject))).scalars().all()
    assert "reconcile.run.failed" in subjects and "reconcile.run.completed" not in subjects
    monkeypatch.undo()
    assert comparison.carry_legacy_reasons is real
    ok = await world.run("440000", verify=True)
    assert ok.status == pb.RUN_STATUS_SUCCEEDED and ok.unfunded_opened == 2


async def test_a_manual_run_answers_the_running_one_covering_it_and_refuses_a_sibling(
    world: World,
) -> None:
    await _basic(world)
    busy = RunRow(
        run_id="busy0001", trigger=2, periods=[], org_code=TIANHE[0], org_path=TIANHE[4],
        include_verification=False, status=RUNNING, triggered_by="x",
        schedule_slot=None, started_at=world.clock.now,
    )  # fmt: skip
    async with world.db.write() as session:
        await insert_run(session, busy)
    await world.services.deps.lock.redis.set("reconcile:lock:run", "busy0001", px=30_000)
    resp = await world.stub.RunComparison(
        pb.RunComparisonRequest(org_code=TIANHE[0]), metadata=caller(TIANHE[0])
    )
    assert resp.already_running and resp.run.run_id == "busy0001"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.RunComparison(pb.RunComparisonRequest(), metadata=caller(BAIYUN[0]))
    assert err.value.code() == grpc.StatusCode.ABORTED
    assert error_of(err.value)["code"] == "RUN_IN_PROGRESS"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.GetRun(pb.GetRunRequest(run_id="busy0001"), metadata=caller(BAIYUN[0]))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    await world.services.deps.lock.redis.delete("reconcile:lock:run")


async def test_redelivered_and_out_of_order_record_events_keep_the_funded_set_right(
    world: World,
) -> None:
    f = world.feed
    await f.org_tree()
    await f.period(AUTUMN_2024)
    a = await f.student(HUAYANG)
    await world.sync()
    msgs = []
    original_pub = f._pub

    async def capture(subject, msg, at=None):  # type: ignore[no-untyped-def]
        msgs.append((subject, msg.SerializeToString()))

    f._pub = capture  # type: ignore[method-assign]
    rid = await f.approve(a, "ZXJ", AUTUMN_2024)
    await f.revoke(a, rid, "ZXJ", AUTUMN_2024)
    f._pub = original_pub  # type: ignore[method-assign]
    approve, revoke = [Event(str(i), s, d, i) for i, (s, d) in enumerate(msgs)]

    async def funded() -> int:
        async with world.db.read() as session:
            return (
                await session.execute(select(func.count()).select_from(t.funded_student))
            ).scalar_one()

    for batch in ([approve], [approve]):  # the same approval applied twice
        async with world.db.write() as session:
            await HANDLERS["aid"](session, batch)
    assert await funded() == 1
    async with world.db.write() as session:
        await HANDLERS["aid"](session, [revoke])
    assert await funded() == 0
    async with world.db.write() as session:  # a late redelivery of the approval
        await HANDLERS["aid"](session, [approve])
    assert await funded() == 0
    b = await f.student(HUAYANG)
    await world.sync()
    f._pub = capture  # type: ignore[method-assign]
    msgs.clear()
    rid2 = await f.approve(b, "ZXJ", AUTUMN_2024)
    await f.revoke(b, rid2, "ZXJ", AUTUMN_2024)
    f._pub = original_pub  # type: ignore[method-assign]
    approve2, revoke2 = [Event(f"b{i}", s, d, i) for i, (s, d) in enumerate(msgs)]
    async with world.db.write() as session:  # revocation seen before the approval
        await HANDLERS["aid"](session, [revoke2])
    async with world.db.write() as session:
        await HANDLERS["aid"](session, [approve2])
    assert await funded() == 0


async def test_approval_and_revocation_in_concurrent_transactions_give_the_same_result(
    world: World,
) -> None:
    """The aid consumer applies two batches at once on PostgreSQL: whichever of an approval and
    its revocation commits first, the record ends revoked and the student unfunded."""
    f = world.feed
    await f.org_tree()
    await f.period(AUTUMN_2024)
    await world.sync()
    msgs: list[tuple[str, bytes]] = []
    original_pub = f._pub

    async def capture(subject, msg, at=None):  # type: ignore[no-untyped-def]
        msgs.append((subject, msg.SerializeToString()))

    async def funded() -> int:
        async with world.db.read() as session:
            return (
                await session.execute(select(func.count()).select_from(t.funded_student))
            ).scalar_one()

    for first in ("approval", "revocation"):
        student = await f.student(HUAYANG)
        await world.sync()
        msgs.clear()
        f._pub = capture  # type: ignore[method-assign]
        rid = await f.approve(student, "ZXJ", AUTUMN_2024)
        await f.revoke(student, rid, "ZXJ", AUTUMN_2024)
        f._pub = original_pub  # type: ignore[method-assign]
        approve, revoke = [Event(f"{first}{i}", s, d, i) for i, (s, d) in enumerate(msgs)]
        held, other = (approve, revoke) if first == "approval" else (revoke, approve)

        async def second(ev: Event = other) -> None:
            async with world.db.write() as session:
                await HANDLERS["aid"](session, [ev])

        async with world.db.write() as session:
            await HANDLERS["aid"](session, [held])
            # The other event's transaction starts while this one is still open; on
            # PostgreSQL it waits on the record's key, on SQLite for the write lock.
            task = asyncio.create_task(second())
            await asyncio.sleep(0.3)
            assert not task.done()
        await task
        async with world.db.read() as session:
            status = (
                await session.execute(
                    select(t.aid_record.c.status).where(t.aid_record.c.record_id == rid)
                )
            ).scalar_one()
        assert status == 6, first  # RecordStatus revoked
        assert await funded() == 0, first


async def _snapshot(w: World) -> dict:
    out = {}
    async with w.db.read() as session:
        for table in t.READ_COPY:
            cols = [
                c for c in table.columns if c.name not in ("event_at", "added_at", "verified_at")
            ]
            rows = (await session.execute(select(*cols).order_by(*table.primary_key.columns))).all()
            out[table.name] = [tuple(r) for r in rows]
    return out


async def test_rebuilding_the_copy_by_replaying_the_streams_gives_the_same_copy(
    world: World,
) -> None:
    await _basic(world)
    moved = identity_events.OrgMoved(
        org_code=BAIYUN_PS[0], old_parent_code=BAIYUN[0], new_parent_code=TIANHE[0],
        old_path=BAIYUN_PS[4], new_path=TIANHE[4] + BAIYUN_PS[0] + "/",
    )  # fmt: skip
    await world.feed._pub("identity.org.moved", moved)
    await world.run("440000")
    before = await _snapshot(world)
    assert len(before["membership"]) == 3 and len(before["funded_student"]) == 1
    moved_school = [r for r in before["org"] if r[0] == BAIYUN_PS[0]]
    assert moved_school[0][4] == TIANHE[4] + BAIYUN_PS[0] + "/"
    assert {e.school_org_code for e in await world.unfunded(TIANHE[0])} == {
        HUAYANG[0],
        BAIYUN_PS[0],
    }
    await world.stop_consumers()
    await rebuild_read_copy(world.db, world.js)
    async with world.db.read() as session:
        assert (await session.execute(text("SELECT COUNT(*) FROM membership"))).scalar_one() == 0
    # Started again, the consumers recreate their durables and replay every stream.
    world.start_consumers()
    await world.sync()
    assert await _snapshot(world) == before
    assert {s.durable for s in SOURCES} == {c.durable for c in world.consumers}


async def _system_run(w: World) -> RunRow:
    await w.sync()
    w.clock.advance(minutes=1)
    run, _ = await w.services.runs.request(
        CallerContext.system(job="test"), periods=[], org_code="", include_verification=False
    )
    await w.services.runs.wait(run.run_id)
    assert run.status == 2, run.error_message
    return run


async def _state(w: World) -> tuple[list, list]:
    async with w.db.read() as session:
        entries = (
            await session.execute(
                text(
                    "SELECT student_key, status, school_org_code, groups_mask, issued_mask, "
                    "self_mask FROM unfunded_entry ORDER BY student_key"
                )
            )
        ).all()
        stats = (
            await session.execute(
                text(
                    "SELECT school_org_code, stage, special_group, source_mask, students, funded "
                    "FROM population_stat ORDER BY 1, 2, 3, 4"
                )
            )
        ).all()
    return [tuple(r) for r in entries], [tuple(r) for r in stats]


async def test_the_incremental_daily_run_gives_what_a_full_run_gives(world: World) -> None:
    f = world.feed
    await f.org_tree()
    await f.period(AUTUMN_2024)
    await f.project("ZXJ")
    kids = []
    for school in (HUAYANG, BAIYUN_PS, HUAYANG, BAIYUN_PS):
        k = await f.student(school)
        kids.append((k, await f.membership(k, 1)))
    expiring = await f.student(HUAYANG)
    await f.membership(expiring, 4, valid_to="2024-11-25")
    first = await _system_run(world)
    assert first.period_counts[0]["incremental"] is False
    assert first.period_counts[0]["examined"] == 5 and first.unfunded_open == 5
    # A day of changes: a late approval, a student leaving a group, a new member, a transfer;
    # and the calendar: a membership valid until Nov 25 no longer holds on Nov 26.
    await f.approve(kids[0][0], "ZXJ", AUTUMN_2024)
    await f.end_membership(kids[1][0], kids[1][1], 1, "2024-11-21")
    newcomer = await f.student(BAIYUN_PS)
    await f.membership(newcomer, 13, source=SELF)
    await f.enrollment_changed(kids[2][0], BAIYUN_PS, status=1, previous=HUAYANG)
    world.clock.now = datetime(2024, 11, 26, 3, 0, tzinfo=UTC)
    second = await _system_run(world)
    counts = second.period_counts[0]
    assert counts["incremental"] is True and counts["examined"] == 5
    assert (second.unfunded_opened, second.unfunded_closed) == (1, 3)
    after_incremental = await _state(world)
    # A full comparison of the same copy changes nothing and computes the same statistics.
    full = await world.run("440000")
    assert (full.unfunded_opened, full.unfunded_closed, full.unfunded_reopened) == (0, 0, 0)
    assert await _state(world) == after_incremental
    moved = [e for e in after_incremental[0] if e[0] == 3]
    assert moved and moved[0][2] == BAIYUN_PS[0]

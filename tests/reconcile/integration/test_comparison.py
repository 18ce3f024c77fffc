"""The comparison (数据比对) over the event-fed copy: who is unfunded, how entries persist, close
and reopen across runs, and that every view stays inside the caller's subtree."""

from __future__ import annotations

import grpc
import pytest
from reconcile_world import (
    AUTUMN_2024,
    BAIYUN,
    BAIYUN_PS,
    HUAYANG,
    MERIT,
    SELF,
    TIANHE,
    TIANHE_MS,
    World,
    caller,
    error_of,
)
from zizhu_contracts.reconcile.v1 import reconcile_pb2 as pb
from zizhu_contracts.roster.v1 import roster_pb2

OPEN, FUNDED, NOT_ELIGIBLE = 1, 2, 3


async def _story(w: World) -> dict:
    """Five students across two counties: two unfunded, one funded, one only merit-aided (still
    unfunded), one who left school before the period, one not in any group."""
    f = w.feed
    await f.org_tree()
    await f.period(AUTUMN_2024, deadline_on="2025-01-31")
    await f.project("ZXJ")
    await f.project("JXJ", category=MERIT, tiers=(500000,))
    a = await f.student(HUAYANG, name="张一")
    await f.membership(a, 1)
    await f.membership(a, 5, source=SELF)
    b = await f.student(HUAYANG, name="李二")
    await f.membership(b, 5)
    await f.approve(b, "ZXJ", AUTUMN_2024)
    c = await f.student(BAIYUN_PS, name="王三")
    await f.membership(c, 7)
    await f.approve(c, "JXJ", AUTUMN_2024, category=MERIT, amount_fen=500000)
    d = await f.student(TIANHE_MS, name="赵四")
    await f.approve(d, "ZXJ", AUTUMN_2024)
    e = await f.student(
        BAIYUN_PS,
        name="钱五",
        status=roster_pb2.STUDENT_STATUS_DROPPED_OUT,
        left_on="2024-06-30",
    )
    await f.membership(e, 2)
    return {"a": a, "b": b, "c": c, "d": d, "e": e}


async def test_unfunded_list_holds_special_group_students_without_need_based_aid(
    world: World,
) -> None:
    s = await _story(world)
    run = await world.run("440000")
    assert run.status == pb.RUN_STATUS_SUCCEEDED
    assert (run.students_checked, run.students_funded, run.unfunded_opened) == (3, 1, 2)
    assert run.unfunded_open == 2 and len(run.period_counts) == 1
    entries = await world.unfunded("440000")
    by_student = {e.student_id: e for e in entries}
    assert set(by_student) == {s["a"].student_id, s["c"].student_id}
    a = by_student[s["a"].student_id]
    assert {(g.group, g.source) for g in a.groups} == {(1, 1), (5, 2)}
    assert a.student_name == "张一" and a.school_org_code == HUAYANG[0]
    assert a.id_number_masked.startswith("440106") and "*" in a.id_number_masked
    assert a.status == OPEN and a.last_run_id == run.run_id
    assert a.reason_deadline_on == "2025-01-31"


async def test_county_sees_only_its_schools_and_another_countys_entry_answers_not_found(
    world: World,
) -> None:
    s = await _story(world)
    await world.run("440000")
    tianhe = await world.unfunded(TIANHE[0])
    baiyun = await world.unfunded(BAIYUN[0])
    assert [e.student_id for e in tianhe] == [s["a"].student_id]
    assert [e.student_id for e in baiyun] == [s["c"].student_id]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.GetUnfunded(
            pb.GetUnfundedRequest(entry_id=baiyun[0].entry_id), metadata=caller(TIANHE[0], "viewer")
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_of(err.value)["code"] == "ENTRY_NOT_FOUND"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.ListUnfunded(
            pb.ListUnfundedRequest(org_code=BAIYUN[0]), metadata=caller(TIANHE[0], "viewer")
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    got = await world.stub.GetUnfunded(
        pb.GetUnfundedRequest(entry_id=baiyun[0].entry_id), metadata=caller(BAIYUN[0], "viewer")
    )
    assert got.entry.student_name == "王三"


async def test_late_approval_closes_the_entry_and_revocation_reopens_it_with_its_reason(
    world: World,
) -> None:
    s = await _story(world)
    await world.run("440000")
    [c] = await world.unfunded(BAIYUN[0])
    await world.stub.ReportReason(
        pb.ReportReasonRequest(entry_ids=[c.entry_id], reason_code="09"),
        metadata=caller(BAIYUN_PS[0]),
    )
    rid = await world.feed.approve(s["c"], "ZXJ", AUTUMN_2024)
    second = await world.run("440000")
    assert (second.unfunded_opened, second.unfunded_closed, second.unfunded_open) == (0, 1, 1)
    assert await world.unfunded(BAIYUN[0]) == []
    [closed] = await world.unfunded(BAIYUN[0], statuses=[FUNDED])
    assert closed.entry_id == c.entry_id and closed.HasField("closed_at")
    assert closed.last_run_id == second.run_id

    await world.feed.revoke(s["c"], rid, "ZXJ", AUTUMN_2024)
    third = await world.run("440000")
    assert third.unfunded_reopened == 1
    [again] = await world.unfunded(BAIYUN[0])
    assert again.entry_id == c.entry_id and again.status == OPEN
    assert again.HasField("reopened_at") and not again.HasField("closed_at")
    assert again.school_reason.reason_code == "09"


async def test_running_again_on_an_unchanged_copy_changes_nothing(world: World) -> None:
    await _story(world)
    first = await world.run("440000")
    before = await world.unfunded("440000")
    second = await world.run("440000")
    assert (second.unfunded_opened, second.unfunded_closed, second.unfunded_reopened) == (0, 0, 0)
    after = await world.unfunded("440000")
    assert [(e.entry_id, e.status, list(e.groups)) for e in after] == [
        (e.entry_id, e.status, list(e.groups)) for e in before
    ]
    assert first.run_id != second.run_id and after[0].last_run_id == second.run_id


async def test_student_who_leaves_the_groups_is_closed_as_not_eligible(world: World) -> None:
    f = world.feed
    await f.org_tree()
    await f.period(AUTUMN_2024)
    a = await f.student(HUAYANG)
    mid = await f.membership(a, 1)
    await world.run("440000")
    assert len(await world.unfunded(TIANHE[0])) == 1
    await f.end_membership(a, mid, 1, "2024-10-01")
    run = await world.run("440000")
    assert run.unfunded_closed == 1
    [entry] = await world.unfunded(TIANHE[0], statuses=[NOT_ELIGIBLE])
    assert entry.student_id == a.student_id


async def test_rejected_verification_takes_the_student_off_the_list(world: World) -> None:
    f = world.feed
    await f.org_tree()
    await f.period(AUTUMN_2024)
    a = await f.student(HUAYANG)
    mid = await f.membership(a, 3)
    await f.verify(a, mid, 3, roster_pb2.VERIFICATION_STATUS_REJECTED)
    run = await world.run("440000")
    assert run.students_checked == 0 and await world.unfunded("440000") == []


async def test_run_is_refused_for_schools_and_for_closed_periods(world: World) -> None:
    f = world.feed
    await f.org_tree()
    await f.period(AUTUMN_2024)
    await world.sync()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.RunComparison(pb.RunComparisonRequest(), metadata=caller(HUAYANG[0]))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.RunComparison(
            pb.RunComparisonRequest(
                periods=[pb.RunComparisonRequest().periods.add(school_year="2020-2021", term=1)]
            ),
            metadata=caller("440000"),
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_of(err.value)["code"] == "PERIOD_NOT_OPEN"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.RunComparison(
            pb.RunComparisonRequest(org_code=BAIYUN[0]), metadata=caller(TIANHE[0])
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    runs = await world.stub.ListRuns(pb.ListRunsRequest(), metadata=caller("440000"))
    assert runs.runs == []

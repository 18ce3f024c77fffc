"""Reasons (未资助原因) at every level and the authority statistics by region × 13 groups."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import grpc
import openpyxl
import pytest
from reconcile_world import (
    AUTUMN_2024,
    BAIYUN,
    BAIYUN_PS,
    CITY,
    HUAYANG,
    SELF,
    TIANHE,
    TIANHE_MS,
    VOCATIONAL,
    World,
    caller,
    error_of,
    period_pb,
)
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.reconcile.v1 import reconcile_pb2 as pb

TOTAL, DIRECT, REGION, SCHOOL = 1, 2, 3, 4


async def _world(w: World) -> dict:
    f = w.feed
    await f.org_tree()
    await f.period(AUTUMN_2024, deadline_on="2025-01-31")
    await f.project("ZXJ")
    a = await f.student(HUAYANG, name="张一")
    await f.membership(a, 1)
    await f.membership(a, 5, source=SELF)
    b = await f.student(HUAYANG, name="李二")
    await f.membership(b, 5)
    await f.approve(b, "ZXJ", AUTUMN_2024)
    c = await f.student(TIANHE_MS, name="王三", stage=3)
    await f.membership(c, 8)
    d = await f.student(BAIYUN_PS, name="赵四")
    await f.membership(d, 7)
    e = await f.student(VOCATIONAL, name="钱五", stage=4)
    await f.membership(e, 13, source=SELF)
    await w.run("440000")
    entries = {x.student_name: x for x in await w.unfunded("440000")}
    return {"a": a, "entries": entries}


async def test_school_reports_reasons_and_other_without_a_note_is_refused(world: World) -> None:
    s = await _world(world)
    a = s["entries"]["张一"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.ReportReason(
            pb.ReportReasonRequest(entry_ids=[a.entry_id], reason_code="99", note="  "),
            metadata=caller(HUAYANG[0]),
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    body = error_of(err.value)
    assert (body["code"], body["field"]) == ("REASON_NOTE_REQUIRED", "note")
    assert "说明" in body["message"]
    [unchanged] = await world.unfunded(TIANHE[0], student_name="张一")
    assert not unchanged.HasField("school_reason")

    resp = await world.stub.ReportReason(
        pb.ReportReasonRequest(entry_ids=[a.entry_id], reason_code="99", note="监护人外出务工"),
        metadata=caller(HUAYANG[0]),
    )
    reason = resp.entries[0].school_reason
    assert (reason.reason_code, reason.reason_label, reason.note) == (
        "99",
        "其他",
        "监护人外出务工",
    )
    assert not reason.carried_over and reason.reported_by.startswith("acc-2144010601")
    [pending] = await world.unfunded(TIANHE[0], reason_state=pb.REASON_STATE_PENDING)
    assert pending.student_name == "王三"

    for bad, code, status in [
        ("77", "REASON_CODE_UNKNOWN", grpc.StatusCode.INVALID_ARGUMENT),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await world.stub.ReportReason(
                pb.ReportReasonRequest(entry_ids=[a.entry_id], reason_code=bad),
                metadata=caller(HUAYANG[0]),
            )
        assert err.value.code() == status and error_of(err.value)["code"] == code
    # Another school's student, and an authority using the school's report: refused.
    d = s["entries"]["赵四"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.ReportReason(
            pb.ReportReasonRequest(entry_ids=[a.entry_id, d.entry_id], reason_code="02"),
            metadata=caller(HUAYANG[0]),
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_of(err.value)["field"] == "entry_ids[1]"
    [still] = await world.unfunded(TIANHE[0], student_name="张一")
    assert still.school_reason.reason_code == "99"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.ReportReason(
            pb.ReportReasonRequest(entry_ids=[a.entry_id], reason_code="02"),
            metadata=caller(TIANHE[0]),
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_reasons_are_locked_after_the_periods_deadline(world: World) -> None:
    s = await _world(world)
    world.clock.now = datetime(2025, 1, 31, 15, 59, tzinfo=UTC)  # 23:59 in Shanghai
    a = s["entries"]["张一"]
    await world.stub.ReportReason(
        pb.ReportReasonRequest(entry_ids=[a.entry_id], reason_code="02"),
        metadata=caller(HUAYANG[0]),
    )
    world.clock.now = datetime(2025, 1, 31, 16, 0, tzinfo=UTC)  # Feb 1 00:00 in Shanghai
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.ReportReason(
            pb.ReportReasonRequest(entry_ids=[a.entry_id], reason_code="03"),
            metadata=caller(HUAYANG[0]),
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_of(err.value)["code"] == "REASON_DEADLINE_PASSED"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.FileAuthorityStatement(
            pb.FileAuthorityStatementRequest(period=period_pb(AUTUMN_2024), reason_code="08"),
            metadata=caller(TIANHE[0]),
        )
    assert error_of(err.value)["code"] == "REASON_DEADLINE_PASSED"


async def test_county_sees_rows_by_school_and_group_and_the_city_sees_both_counties(
    world: World,
) -> None:
    s = await _world(world)
    e = s["entries"]
    await world.stub.ReportReason(
        pb.ReportReasonRequest(entry_ids=[e["张一"].entry_id], reason_code="02"),
        metadata=caller(HUAYANG[0]),
    )
    county = await world.stub.UnfundedStats(
        pb.UnfundedStatsRequest(period=period_pb(AUTUMN_2024)), metadata=caller(TIANHE[0], "viewer")
    )
    kinds = [(r.kind, r.org.org_code) for r in county.rows]
    assert kinds == [
        (TOTAL, TIANHE[0]),
        (DIRECT, TIANHE[0]),
        (SCHOOL, HUAYANG[0]),
        (SCHOOL, TIANHE_MS[0]),
    ]
    total, _, huayang, middle = county.rows
    assert (total.all_groups.students, total.all_groups.funded, total.all_groups.unfunded) == (
        3,
        1,
        2,
    )
    assert (total.all_groups.reason_reported, total.all_groups.reason_pending) == (1, 1)
    g5 = huayang.groups[4]
    assert (g5.group, g5.students, g5.funded, g5.unfunded, g5.issued_students) == (5, 2, 1, 1, 1)
    assert g5.self_collected_students == 1
    assert huayang.groups[0].unfunded == 1 and huayang.groups[0].reason_reported == 1
    assert len(huayang.groups) == 13 and middle.groups[7].unfunded == 1
    assert [(r.reason_code, r.count) for r in huayang.reasons] == [("02", 1)]
    assert county.run_id and county.HasField("as_of")

    await world.stub.ReportAuthorityReason(
        pb.ReportAuthorityReasonRequest(entry_ids=[e["王三"].entry_id], reason_code="08"),
        metadata=caller(TIANHE[0]),
    )
    filed = await world.stub.FileAuthorityStatement(
        pb.FileAuthorityStatementRequest(
            period=period_pb(AUTUMN_2024), reason_code="99", note="本区残疾学生由区财政另行资助"
        ),
        metadata=caller(TIANHE[0]),
    )
    assert filed.statement.org.org_code == TIANHE[0] and filed.statement.reason_label == "其他"

    city = await world.stub.UnfundedStats(
        pb.UnfundedStatsRequest(period=period_pb(AUTUMN_2024)), metadata=caller(CITY[0], "viewer")
    )
    rows = {(r.kind, r.org.org_code): r for r in city.rows}
    assert list(rows) == [
        (TOTAL, CITY[0]),
        (DIRECT, CITY[0]),
        (REGION, TIANHE[0]),
        (REGION, BAIYUN[0]),
    ]
    assert rows[(TOTAL, CITY[0])].all_groups.unfunded == 4
    assert rows[(DIRECT, CITY[0])].all_groups.unfunded == 1
    tianhe = rows[(REGION, TIANHE[0])]
    assert tianhe.org.name == "天河区" and tianhe.all_groups.unfunded == 2
    assert [(r.reason_code, r.count) for r in tianhe.authority_reasons] == [("08", 1)]
    assert [(st.reason_code, st.note) for st in tianhe.statements] == [
        ("99", "本区残疾学生由区财政另行资助")
    ]
    assert rows[(REGION, BAIYUN[0])].all_groups.unfunded == 1
    assert rows[(REGION, BAIYUN[0])].statements == []
    # Drill down: the city reads exactly what 天河区 reported on each student.
    [drill] = await world.unfunded(CITY[0], student_name="王三")
    assert [(r.level, r.org_code, r.reason_code) for r in drill.authority_reasons] == [
        (common_pb2.ORG_LEVEL_COUNTY, TIANHE[0], "08")
    ]
    # Group filter: the 13th group (self-collected) only at the directly-run school.
    only13 = await world.unfunded(CITY[0], groups=[13])
    assert [x.school_org_code for x in only13] == [VOCATIONAL[0]]
    issued = await world.unfunded(CITY[0], source=common_pb2.MEMBERSHIP_SOURCE_ISSUED)
    assert {x.student_name for x in issued} == {"张一", "王三", "赵四"}

    export = await world.stub.ExportUnfundedStats(
        pb.ExportUnfundedStatsRequest(
            filter=pb.UnfundedStatsRequest(period=period_pb(AUTUMN_2024))
        ),
        metadata=caller(CITY[0], "viewer"),
    )
    sheet = openpyxl.load_workbook(io.BytesIO(export.file.content)).active
    names = [sheet.cell(row=r, column=3).value for r in range(4, 8)]
    assert names == ["广州市", "广州市直属学校", "天河区", "白云区"]
    assert sheet.cell(row=4, column=6).value == 4  # 合计 · 未资助
    listing = await world.stub.ExportUnfunded(
        pb.ExportUnfundedRequest(filter=pb.ListUnfundedRequest(period=period_pb(AUTUMN_2024))),
        metadata=caller(TIANHE[0], "viewer"),
    )
    assert listing.row_count == 2
    book = openpyxl.load_workbook(io.BytesIO(listing.file.content)).active
    assert {book.cell(row=r, column=7).value for r in (3, 4)} == {"张一", "王三"}


async def test_statements_and_stats_never_leave_the_callers_subtree(world: World) -> None:
    await _world(world)
    await world.stub.FileAuthorityStatement(
        pb.FileAuthorityStatementRequest(period=period_pb(AUTUMN_2024), group=7, reason_code="09"),
        metadata=caller(BAIYUN[0]),
    )
    seen = await world.stub.ListAuthorityStatements(
        pb.ListAuthorityStatementsRequest(period=period_pb(AUTUMN_2024)),
        metadata=caller(TIANHE[0], "viewer"),
    )
    assert seen.statements == []
    city = await world.stub.ListAuthorityStatements(
        pb.ListAuthorityStatementsRequest(period=period_pb(AUTUMN_2024)),
        metadata=caller(CITY[0], "viewer"),
    )
    assert [(s.org.org_code, s.group) for s in city.statements] == [(BAIYUN[0], 7)]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.UnfundedStats(
            pb.UnfundedStatsRequest(org_code=BAIYUN[0]), metadata=caller(TIANHE[0], "viewer")
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    school = await world.stub.UnfundedStats(
        pb.UnfundedStatsRequest(), metadata=caller(BAIYUN_PS[0], "viewer")
    )
    assert [(r.kind, r.all_groups.unfunded) for r in school.rows] == [(TOTAL, 1)]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.FileAuthorityStatement(
            pb.FileAuthorityStatementRequest(period=period_pb(AUTUMN_2024), reason_code="09"),
            metadata=caller(HUAYANG[0]),
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

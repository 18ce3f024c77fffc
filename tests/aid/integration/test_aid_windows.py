"""Periods and time windows: article-17 defaults, windows set by the owner, narrowed for a region,
closed early, extended for one school; every write of a phase refused outside its window, naming
the window."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import grpc
import xlsxwriter
from aid_harness import (
    GD_OP,
    GZ_OP,
    HY,
    HY_OP,
    MS,
    MS_AUD,
    MS_OP,
    NATION,
    NOW,
    PERIOD,
    TH_AUD,
    TH_OP,
    Env,
    refused,
)
from google.protobuf.timestamp_pb2 import Timestamp
from zizhu_contracts.aid.v1 import aid_pb2
from zizhu_contracts.common.v1 import common_pb2

COMPULSORY = common_pb2.STAGE_COMPULSORY
HIGH = common_pb2.STAGE_GENERAL_HIGH_SCHOOL
DIFFICULT = common_pb2.HARDSHIP_LEVEL_DIFFICULT
ENTRY, SCHOOL_AUDIT, AUTHORITY_AUDIT = (
    aid_pb2.WINDOW_PHASE_ENTRY, aid_pb2.WINDOW_PHASE_SCHOOL_AUDIT, aid_pb2.WINDOW_PHASE_AUTHORITY_AUDIT,
)  # fmt: skip


def ts(value: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(value)
    return out


async def _own_project(env: Env, owner=GD_OP, stage=HIGH) -> aid_pb2.Project:
    """A province project of its own, so windows set here touch no other test."""
    return await env.project(
        owner, project_code="GD-W", name="广东省普通高中助学补助", stage=stage,
        owner_type=aid_pb2.PROJECT_OWNER_TYPE_LOCAL_GOVERNMENT,
        category=common_pb2.AID_CATEGORY_NEED_BASED, tiers=[aid_pb2.AmountTier(amount_fen=40000)],
    )  # fmt: skip


async def _set(
    env: Env, caller, project: str, phase: int, start: datetime, end: datetime, org: str = ""
):
    return (await env.call("SetWindow", aid_pb2.SetWindowRequest(
        project_code=project, period=PERIOD, phase=phase, org_code=org,
        starts_at=ts(start), ends_at=ts(end)), caller)).window  # fmt: skip


async def test_only_the_nation_opens_periods_and_defaults_follow_article_17(env: Env) -> None:
    spring = common_pb2.AidPeriod(school_year="2025-2026", term=common_pb2.TERM_SPRING)
    await refused(env.call("OpenPeriod", aid_pb2.OpenPeriodRequest(period=spring), GD_OP),
                  grpc.StatusCode.PERMISSION_DENIED, "LEVEL_NOT_ALLOWED")  # fmt: skip
    opened = await env.call("OpenPeriod", aid_pb2.OpenPeriodRequest(period=spring), NATION)
    p = opened.period
    assert (p.starts_on, p.ends_on, p.deadline_on) == ("2026-02-01", "2026-07-31", "2026-07-31")
    await refused(env.call("OpenPeriod", aid_pb2.OpenPeriodRequest(period=spring), NATION),
                  grpc.StatusCode.ALREADY_EXISTS, "PERIOD_ALREADY_OPEN")  # fmt: skip
    await refused(env.call("OpenPeriod", aid_pb2.OpenPeriodRequest(
        period=common_pb2.AidPeriod(school_year="2025-2027", term=1)), NATION),
        grpc.StatusCode.INVALID_ARGUMENT, "SCHOOL_YEAR_INVALID")  # fmt: skip
    closed = await env.call("ClosePeriod", aid_pb2.ClosePeriodRequest(period=spring), NATION)
    assert closed.period.status == aid_pb2.PERIOD_STATUS_CLOSED
    listed = await env.call("ListPeriods", aid_pb2.ListPeriodsRequest(), HY_OP)
    keys = [(x.period.school_year, x.period.term) for x in listed.periods]
    assert keys.index(("2026-2027", 1)) < keys.index(("2025-2026", 2))  # newest first
    # The autumn default: entry until 31 January 24:00 Beijing time.
    eff = await env.call("GetEffectiveWindows", aid_pb2.GetEffectiveWindowsRequest(
        project_code="GJ-PG-ZXJ", period=PERIOD), MS_OP)  # fmt: skip
    entry = next(w for w in eff.windows if w.phase == ENTRY)
    assert entry.open_now and entry.window.is_default
    assert entry.window.ends_at.ToDatetime(tzinfo=UTC) == datetime(2027, 1, 31, 16, 0, tzinfo=UTC)


async def test_writes_in_a_closed_period_are_refused(env: Env) -> None:
    spring = common_pb2.AidPeriod(school_year="2027-2028", term=common_pb2.TERM_SPRING)
    [kid] = await env.kids(MS, HIGH, hardship=DIFFICULT)
    await refused(env.enter(MS_OP, "GJ-PG-ZXJ", kid, period=spring, tier_code="1"),
                  grpc.StatusCode.FAILED_PRECONDITION, "PERIOD_NOT_OPEN")  # fmt: skip


async def test_entry_window_closed_refuses_enter_edit_delete_import_and_submit(env: Env) -> None:
    project = await _own_project(env)
    code = project.project_code
    kids = await env.kids(MS, HIGH, 3)
    drafts = [await env.enter(MS_OP, code, k) for k in kids[:2]]
    window = await _set(env, GD_OP, code, ENTRY, NOW - timedelta(days=30), NOW + timedelta(hours=1))
    assert window.open_now
    env.clock.advance(hours=2)
    body = await refused(
        env.enter(MS_OP, code, kids[2]), grpc.StatusCode.FAILED_PRECONDITION, "WINDOW_CLOSED"
    )
    assert body["details"]["window_id"] == window.window_id and "名单录入" in body["message"]
    assert "2026-11-20 11:00" in body["message"]  # the end, in Beijing time
    await refused(env.call("UpdateRecord", aid_pb2.UpdateRecordRequest(
        record_id=drafts[0].record_id, remark="改"), MS_OP), grpc.StatusCode.FAILED_PRECONDITION, "WINDOW_CLOSED")  # fmt: skip
    await refused(env.call("DeleteRecord", aid_pb2.DeleteRecordRequest(
        record_id=drafts[0].record_id), MS_OP), grpc.StatusCode.FAILED_PRECONDITION, "WINDOW_CLOSED")  # fmt: skip
    body = await refused(
        env.submit(MS_OP, [d.record_id for d in drafts]),
        grpc.StatusCode.FAILED_PRECONDITION,
        "WINDOW_CLOSED",
    )
    assert len(body["details"]["items"]) == 2
    template = (
        await env.call(
            "GetImportTemplate", aid_pb2.GetImportTemplateRequest(project_code=code), MS_OP
        )
    ).file
    await refused(env.call("ImportRecords", aid_pb2.ImportRecordsRequest(
        project_code=code, period=PERIOD, file=template, dry_run=True), MS_OP),
        grpc.StatusCode.FAILED_PRECONDITION, "WINDOW_CLOSED")  # fmt: skip
    # Reads still show the (closed) window, so the page can show it in red.
    got = await env.call(
        "GetRecord", aid_pb2.GetRecordRequest(record_id=drafts[0].record_id), MS_OP
    )
    entry = next(w for w in got.windows if w.phase == ENTRY)
    assert not entry.open_now and entry.window.window_id == window.window_id


async def test_an_upper_level_grants_one_school_a_dated_extension(env: Env) -> None:
    project = await _own_project(env)
    code = project.project_code
    kids = await env.kids(MS, HIGH, 1) + await env.kids(HY, COMPULSORY, 0)
    await _set(env, GD_OP, code, ENTRY, NOW - timedelta(days=30), NOW - timedelta(hours=1))
    await refused(
        env.enter(MS_OP, code, kids[0]), grpc.StatusCode.FAILED_PRECONDITION, "WINDOW_CLOSED"
    )
    await refused(env.call("GrantExtension", aid_pb2.GrantExtensionRequest(
        project_code=code, period=PERIOD, phase=ENTRY, org_code="3444010601",
        ends_at=ts(NOW + timedelta(days=3))), TH_OP), grpc.StatusCode.INVALID_ARGUMENT, "REASON_REQUIRED")  # fmt: skip
    await refused(env.call("GrantExtension", aid_pb2.GrantExtensionRequest(
        project_code=code, period=PERIOD, phase=ENTRY, org_code="3444010601", reason="自己延期",
        ends_at=ts(NOW + timedelta(days=3))), MS_OP), grpc.StatusCode.PERMISSION_DENIED, "EXTENSION_NOT_ALLOWED")  # fmt: skip
    before = (await env.subjects()).count("aid.audit.recorded")
    ext = await env.call("GrantExtension", aid_pb2.GrantExtensionRequest(
        project_code=code, period=PERIOD, phase=ENTRY, org_code="3444010601",
        ends_at=ts(NOW + timedelta(days=3)), reason="学籍补录后补报"), TH_OP)  # fmt: skip
    assert ext.window.extension and ext.window.open_now and ext.window.reason == "学籍补录后补报"
    assert (await env.subjects()).count("aid.audit.recorded") == before + 1
    rec = await env.enter(MS_OP, code, kids[0])
    assert rec.status == aid_pb2.RECORD_STATUS_DRAFT
    listed = await env.call("ListWindows", aid_pb2.ListWindowsRequest(
        project_code=code, period=PERIOD, org_code="3444010601", include_extensions=True), MS_OP)  # fmt: skip
    assert {w.extension for w in listed.windows} == {True, False}
    env.clock.advance(days=4)
    [late] = await env.kids(MS, HIGH, 1)
    await refused(
        env.enter(MS_OP, code, late), grpc.StatusCode.FAILED_PRECONDITION, "WINDOW_CLOSED"
    )


async def test_a_region_window_narrows_the_projects_window_for_its_schools(env: Env) -> None:
    project = await _own_project(env)
    code = project.project_code
    await _set(env, GD_OP, code, ENTRY, NOW - timedelta(days=30), NOW + timedelta(days=30))
    # The county may narrow within the province's window, not widen it.
    await refused(env.call("SetWindow", aid_pb2.SetWindowRequest(
        project_code=code, period=PERIOD, phase=ENTRY, org_code="440106",
        starts_at=ts(NOW - timedelta(days=1)), ends_at=ts(NOW + timedelta(days=60))), TH_OP),
        grpc.StatusCode.INVALID_ARGUMENT, "WINDOW_OUTSIDE_PARENT")  # fmt: skip
    narrow = await _set(
        env, TH_OP, code, ENTRY, NOW - timedelta(days=1), NOW + timedelta(hours=1), org="440106"
    )
    env.clock.advance(hours=2)
    [ms_kid] = await env.kids(MS, HIGH, 1)
    body = await refused(
        env.enter(MS_OP, code, ms_kid), grpc.StatusCode.FAILED_PRECONDITION, "WINDOW_CLOSED"
    )
    assert body["details"]["window_id"] == narrow.window_id
    # A school outside 天河区 still follows the province's window.
    eff = await env.call("GetEffectiveWindows", aid_pb2.GetEffectiveWindowsRequest(
        project_code=code, period=PERIOD, org_code="3644010001"), GZ_OP)  # fmt: skip
    assert next(w for w in eff.windows if w.phase == ENTRY).open_now


async def test_audit_windows_govern_school_and_authority_audits(env: Env) -> None:
    project = await _own_project(env)
    code = project.project_code
    kids = await env.kids(MS, HIGH, 2)
    ids = [(await env.enter(MS_OP, code, k)).record_id for k in kids]
    await env.submit(MS_OP, ids)
    closed = await _set(
        env, GD_OP, code, SCHOOL_AUDIT, NOW - timedelta(days=3), NOW - timedelta(days=1)
    )
    body = await refused(
        env.approve(MS_AUD, ids), grpc.StatusCode.FAILED_PRECONDITION, "WINDOW_CLOSED"
    )
    assert "学校审核" in body["details"]["items"][0]["message"]
    await _set(env, GD_OP, code, SCHOOL_AUDIT, NOW - timedelta(days=3), NOW + timedelta(days=1))
    await env.approve(MS_AUD, ids)
    await _set(env, GD_OP, code, AUTHORITY_AUDIT, NOW + timedelta(days=1), NOW + timedelta(days=5))
    await refused(env.approve(TH_AUD, ids), grpc.StatusCode.FAILED_PRECONDITION, "WINDOW_CLOSED")
    env.clock.advance(days=2)
    await env.approve(TH_AUD, ids)
    assert closed.window_id


async def test_windows_are_set_by_the_owner_and_closed_early(env: Env) -> None:
    project = await _own_project(env)
    code = project.project_code
    # A school may not set windows; another city's authority cannot see the region.
    await refused(env.call("SetWindow", aid_pb2.SetWindowRequest(
        project_code=code, period=PERIOD, phase=ENTRY, starts_at=ts(NOW), ends_at=ts(NOW + timedelta(days=1))), MS_OP),
        grpc.StatusCode.PERMISSION_DENIED, "WINDOW_NOT_ALLOWED")  # fmt: skip
    await refused(env.call("SetWindow", aid_pb2.SetWindowRequest(
        project_code=code, period=PERIOD, phase=ENTRY, starts_at=ts(NOW), ends_at=ts(NOW - timedelta(days=1))), GD_OP),
        grpc.StatusCode.INVALID_ARGUMENT, "WINDOW_RANGE_INVALID")  # fmt: skip
    w = await _set(env, GD_OP, code, ENTRY, NOW - timedelta(days=1), NOW + timedelta(days=10))
    again = await _set(env, GD_OP, code, ENTRY, NOW - timedelta(days=2), NOW + timedelta(days=9))
    assert again.window_id == w.window_id  # replaced in its slot
    closed = await env.call("CloseWindow", aid_pb2.CloseWindowRequest(window_id=w.window_id), GD_OP)
    assert not closed.window.open_now
    [kid] = await env.kids(MS, HIGH, 1)
    await refused(env.enter(MS_OP, code, kid), grpc.StatusCode.FAILED_PRECONDITION, "WINDOW_CLOSED")
    await refused(env.call("CloseWindow", aid_pb2.CloseWindowRequest(window_id=w.window_id), HY_OP),
                  grpc.StatusCode.NOT_FOUND)  # fmt: skip


async def test_import_is_refused_outside_the_window_with_the_window_named(env: Env) -> None:
    project = await _own_project(env)
    code = project.project_code
    await _set(env, GD_OP, code, ENTRY, NOW - timedelta(days=30), NOW - timedelta(minutes=1))
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf)
    ws = wb.add_worksheet("资助名单")
    ws.write_row(0, 0, ["姓名", "证件类型", "身份证件号码"])
    wb.close()
    body = await refused(env.call("ImportRecords", aid_pb2.ImportRecordsRequest(
        project_code=code, period=PERIOD, file=common_pb2.FileContent(file_name="x.xlsx", content=buf.getvalue())), MS_OP),
        grpc.StatusCode.FAILED_PRECONDITION, "WINDOW_CLOSED")  # fmt: skip
    assert body["details"]["phase"] == "entry" and body["details"]["window"]

"""Hardship recognition: single entry with history and term adjustments, template import,
students still to recognise with per-province defaults."""

from __future__ import annotations

import io

import grpc
import openpyxl
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.roster.v1 import events_pb2
from zizhu_contracts.roster.v1 import roster_pb2 as pb

from tests.roster.conftest import COUNTY_BY, COUNTY_TH, NATION, PROVINCE, SCHOOL_BYPS, SCHOOL_HY, md
from tests.roster.helpers import expect_error, make_id, row, sync
from tests.roster.test_groups import DIBAO, ORPHAN, issue, issued, seed_students

YEAR = "2024-2025"
SPECIAL = common_pb2.HARDSHIP_LEVEL_SPECIAL
DIFFICULT = common_pb2.HARDSHIP_LEVEL_DIFFICULT
GENERAL = common_pb2.HARDSHIP_LEVEL_GENERAL
AUTUMN, SPRING = common_pb2.TERM_AUTUMN, common_pb2.TERM_SPRING


async def recognize(roster, sid, level, *, term=AUTUMN, who=SCHOOL_HY, **kw):
    return await roster.stub.RecognizeHardship(
        pb.RecognizeHardshipRequest(student_id=sid, school_year=YEAR, term=term, level=level, **kw),
        metadata=md(who),
    )


async def test_recognition_history_and_term_adjustment(roster):
    sid = (await sync(roster.stub, md(SCHOOL_HY), [row(1)])).student_ids[0]
    first = await recognize(
        roster, sid, DIFFICULT, basis_groups=[DIBAO], recognized_on="2024-10-10"
    )
    assert first.recognition.current and first.recognition.version == 1
    assert list(first.recognition.basis_groups) == [DIBAO]
    await expect_error(
        recognize(roster, sid, SPECIAL, term=SPRING),
        grpc.StatusCode.INVALID_ARGUMENT,
        "CHANGE_REASON_REQUIRED",
    )
    await expect_error(
        recognize(
            roster, sid, SPECIAL, term=SPRING, change_reason="家庭突发变故", expected_version=7
        ),
        grpc.StatusCode.ABORTED,
        "VERSION_CONFLICT",
    )
    spring = await recognize(
        roster, sid, SPECIAL, term=SPRING, change_reason="家庭突发变故", expected_version=1
    )
    assert spring.recognition.version == 2
    got = await roster.stub.GetRecognition(
        pb.GetRecognitionRequest(student_id=sid, school_year=YEAR), metadata=md(SCHOOL_HY)
    )
    assert got.current.level == SPECIAL and [h.version for h in got.history] == [2, 1]
    assert [h.current for h in got.history] == [True, False]
    # The level in force per term of the period, as aid sees it.
    checks = [
        pb.EnrollmentCheck(
            student_id=sid,
            school_org_code="2144010601",
            period=common_pb2.AidPeriod(school_year=YEAR, term=t),
        )
        for t in (AUTUMN, SPRING)
    ]
    resp = await roster.stub.CheckEnrollment(
        pb.CheckEnrollmentRequest(checks=checks), metadata=md(SCHOOL_HY)
    )
    assert [r.hardship_level for r in resp.results] == [DIFFICULT, SPECIAL]
    listed = await roster.stub.ListRecognitions(
        pb.ListRecognitionsRequest(school_year=YEAR, term=AUTUMN), metadata=md(COUNTY_TH)
    )
    assert [r.level for r in listed.recognitions] == [DIFFICULT]
    now = await roster.stub.ListRecognitions(
        pb.ListRecognitionsRequest(school_year=YEAR), metadata=md(COUNTY_TH)
    )
    assert [r.level for r in now.recognitions] == [SPECIAL] and now.recognitions[
        0
    ].student_name == "学生1"
    other = await roster.stub.ListRecognitions(
        pb.ListRecognitionsRequest(school_year=YEAR), metadata=md(COUNTY_BY)
    )
    assert other.page.total == 0
    events = [
        events_pb2.RecognitionRecorded.FromString(p)
        for p in await roster.outbox_events("roster.recognition.recorded")
    ]
    assert [(e.level, e.previous_level) for e in events] == [(DIFFICULT, 0), (SPECIAL, DIFFICULT)]
    # Recording the level in force again changes nothing.
    same = await recognize(roster, sid, SPECIAL, term=SPRING)
    assert same.recognition.version == 2


async def test_recognition_refuses_out_of_scope_and_bad_input(roster):
    sid = (await sync(roster.stub, md(SCHOOL_HY), [row(1)])).student_ids[0]
    await expect_error(
        recognize(roster, sid, SPECIAL, who=SCHOOL_BYPS),
        grpc.StatusCode.NOT_FOUND,
        "STUDENT_NOT_FOUND",
    )
    await expect_error(
        recognize(roster, sid, 0), grpc.StatusCode.INVALID_ARGUMENT, "LEVEL_REQUIRED"
    )
    await expect_error(
        recognize(roster, sid, SPECIAL, term=0), grpc.StatusCode.INVALID_ARGUMENT, "TERM_REQUIRED"
    )
    await expect_error(
        roster.stub.RecognizeHardship(
            pb.RecognizeHardshipRequest(
                student_id=sid, school_year="2024", term=AUTUMN, level=SPECIAL
            ),
            metadata=md(SCHOOL_HY),
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "SCHOOL_YEAR_FORMAT",
    )
    await expect_error(
        recognize(roster, sid, SPECIAL, recognized_on="2999-01-01"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "DATE_FUTURE",
    )
    await expect_error(
        roster.stub.GetRecognition(
            pb.GetRecognitionRequest(student_id=sid), metadata=md(COUNTY_BY)
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    assert await roster.count("recognition") == 0


def _xlsx(rows: list[list[str]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(
        ["身份证件号码", "姓名", "认定档次", "认定依据（特殊群体类别）", "认定日期", "调整原因"]
    )
    for r in rows:
        sheet.append(r)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_recognition_import_dry_run_then_commit_and_error_report(roster):
    await sync(roster.stub, md(SCHOOL_HY), [row(1), row(2), row(3)])
    await sync(roster.stub, md(SCHOOL_BYPS), [row(9, school_org_code="2144011102")])
    template = await roster.stub.GetRecognitionTemplate(
        pb.GetRecognitionTemplateRequest(), metadata=md(SCHOOL_HY)
    )
    headers = [c.value for c in openpyxl.load_workbook(io.BytesIO(template.file.content)).active[1]]
    assert "认定档次" in headers and template.file.file_name.endswith(".xlsx")
    bad = _xlsx([
        [make_id(1), "学生1", "特别困难", "低保学生、孤儿学生", "20241010", ""],
        [make_id(2), "学生2", "很困难", "", "", ""],
        [make_id(9), "学生9", "困难", "", "", ""],
        [make_id(3), "学生3", "一般困难", "外星人", "", ""],
    ])  # fmt: skip
    request = pb.ImportRecognitionsRequest(
        school_year=YEAR,
        term=AUTUMN,
        dry_run=True,
        file=common_pb2.FileContent(file_name="认定.xlsx", content=bad),
    )
    resp = await roster.stub.ImportRecognitions(request, metadata=md(SCHOOL_HY))
    s = resp.summary
    assert (s.total_rows, s.valid_rows, s.error_rows, s.committed) == (4, 1, 3, False)
    assert sorted((e.row, e.code) for e in s.errors) == [
        (3, "LEVEL_UNKNOWN"),
        (4, "STUDENT_NOT_AT_SCHOOL"),
        (5, "GROUP_UNKNOWN"),
    ]
    report = await roster.stub.GetImportReport(
        pb.GetImportReportRequest(import_id=s.import_id), metadata=md(SCHOOL_HY)
    )
    sheet = openpyxl.load_workbook(io.BytesIO(report.file.content)).active
    assert [c.value for c in sheet[1]] == [
        "行号",
        "列",
        "值",
        "错误代码",
        "错误说明",
    ] and sheet.max_row == 4
    await expect_error(
        roster.stub.GetImportReport(
            pb.GetImportReportRequest(import_id=s.import_id), metadata=md(SCHOOL_BYPS)
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    # A file with errors is not committable.
    await expect_error(
        roster.stub.ImportRecognitions(
            pb.ImportRecognitionsRequest(import_id=s.import_id), metadata=md(SCHOOL_HY)
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "IMPORT_NOT_STAGED",
    )
    assert await roster.count("recognition") == 0
    good = _xlsx(
        [
            [make_id(1), "学生1", "特别困难", "低保学生、孤儿学生", "20241010", ""],
            [make_id(2), "学生2", "困难", "", "", ""],
        ]
    )
    dry = await roster.stub.ImportRecognitions(
        pb.ImportRecognitionsRequest(
            school_year=YEAR,
            term=AUTUMN,
            dry_run=True,
            file=common_pb2.FileContent(file_name="a.xlsx", content=good),
        ),
        metadata=md(SCHOOL_HY),
    )
    assert (
        dry.summary.error_rows == 0
        and dry.summary.created_count == 2
        and dry.summary.expires_at.seconds
    )
    assert await roster.count("recognition") == 0
    done = await roster.stub.ImportRecognitions(
        pb.ImportRecognitionsRequest(import_id=dry.summary.import_id), metadata=md(SCHOOL_HY)
    )
    assert done.summary.committed and done.summary.created_count == 2
    listed = await roster.stub.ListRecognitions(
        pb.ListRecognitionsRequest(school_year=YEAR), metadata=md(SCHOOL_HY)
    )
    assert sorted((r.student_name, r.level) for r in listed.recognitions) == [
        ("学生1", SPECIAL),
        ("学生2", DIFFICULT),
    ]
    await expect_error(
        roster.stub.ImportRecognitions(
            pb.ImportRecognitionsRequest(import_id=dry.summary.import_id), metadata=md(SCHOOL_HY)
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )


async def test_pending_list_suggests_province_defaults(roster):
    await seed_students(roster)
    await issue(roster, [issued(1), issued(2), issued(6)])
    await roster.stub.AddSelfCollectedMembership(
        pb.AddSelfCollectedMembershipRequest(
            id_number=make_id(2), group=ORPHAN, evidence_note="证明", school_year=YEAR
        ),
        metadata=md(SCHOOL_HY),
    )
    await expect_error(
        roster.stub.SetGroupDefaultLevels(
            pb.SetGroupDefaultLevelsRequest(
                defaults=[pb.GroupDefaultLevel(group=DIBAO, level=GENERAL)]
            ),
            metadata=md(COUNTY_TH),
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await roster.stub.SetGroupDefaultLevels(
        pb.SetGroupDefaultLevelsRequest(
            defaults=[pb.GroupDefaultLevel(group=DIBAO, level=GENERAL)]
        ),
        metadata=md(NATION),
    )
    await roster.stub.SetGroupDefaultLevels(
        pb.SetGroupDefaultLevelsRequest(
            defaults=[
                pb.GroupDefaultLevel(group=DIBAO, level=DIFFICULT),
                pb.GroupDefaultLevel(group=ORPHAN, level=SPECIAL),
            ]
        ),
        metadata=md(PROVINCE),
    )
    applied = await roster.stub.GetGroupDefaultLevels(
        pb.GetGroupDefaultLevelsRequest(), metadata=md(SCHOOL_HY)
    )
    assert applied.source_org_code == "440000" and len(applied.defaults) == 2
    national = await roster.stub.GetGroupDefaultLevels(
        pb.GetGroupDefaultLevelsRequest(), metadata=md(NATION)
    )
    assert national.source_org_code == "000000"
    pending = await roster.stub.ListPendingRecognitions(
        pb.ListPendingRecognitionsRequest(school_year=YEAR), metadata=md(SCHOOL_HY)
    )
    got = {p.name: p.suggested_level for p in pending.students}
    assert got == {"学生1": DIFFICULT, "学生2": SPECIAL}
    await recognize(roster, pending.students[0].student_id, GENERAL)
    after = await roster.stub.ListPendingRecognitions(
        pb.ListPendingRecognitionsRequest(school_year=YEAR), metadata=md(SCHOOL_HY)
    )
    assert after.page.total == 1
    county = await roster.stub.ListPendingRecognitions(
        pb.ListPendingRecognitionsRequest(school_year=YEAR), metadata=md(COUNTY_BY)
    )
    assert [p.name for p in county.students] == ["学生6"]

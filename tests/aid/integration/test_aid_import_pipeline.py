"""Template import as a pipeline (chunks checked by roster while the next are checked locally,
and a committing import storing chunk after chunk): still all or nothing, with every problem
reported, whichever chunk it is in."""

from __future__ import annotations

import io

import openpyxl
from aid_harness import HY, HY_OP, MS, MS_OP, PERIOD, Env, Kid, new_id_number
from zizhu_contracts.aid.v1 import aid_pb2
from zizhu_contracts.common.v1 import common_pb2

HIGH = common_pb2.STAGE_GENERAL_HIGH_SCHOOL
COMPULSORY = common_pb2.STAGE_COMPULSORY
DIFFICULT = common_pb2.HARDSHIP_LEVEL_DIFFICULT
BOARDER_PRIMARY = "GJ-YW-JSSBZ-XX"  # excludes 非寄宿生生活补助（小学） in the same term
NON_BOARDER_PRIMARY = "GJ-YW-FJSSBZ-XX"
CHUNK = 5000  # rows per CheckEnrollment call and per stored part


async def _template(env: Env, project: str, caller=MS_OP) -> bytes:
    req = aid_pb2.GetImportTemplateRequest(project_code=project)
    return (await env.call("GetImportTemplate", req, caller)).file.content


def _filled(template: bytes, rows: list[list[object]]) -> bytes:
    wb = openpyxl.load_workbook(io.BytesIO(template))
    ws = wb["资助名单"]
    for i, row in enumerate(rows, start=2):
        for j, value in enumerate(row, start=1):
            ws.cell(row=i, column=j, value=value)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _row(name: str, id_number: str, tier: str = "1") -> list[object]:
    return [name, "居民身份证", id_number, "", tier, "", "中国银行", "6217001234567890123", ""]


def _kid_row(k: Kid, tier: str = "1") -> list[object]:
    return _row(k.name, k.id_number, tier)


async def _import(env: Env, content: bytes, project: str, caller=MS_OP, *, dry_run: bool = False):
    req = aid_pb2.ImportRecordsRequest(
        project_code=project, period=PERIOD, dry_run=dry_run,
        file=common_pb2.FileContent(file_name="名单.xlsx", content=content),
    )  # fmt: skip
    return (await env.call("ImportRecords", req, caller)).summary


async def _count(env: Env, caller=MS_OP, **kw) -> int:
    return (await env.call("ListRecords", aid_pb2.ListRecordsRequest(**kw), caller)).page.total


async def test_a_problem_in_a_later_chunk_rolls_back_the_chunks_already_stored(env: Env) -> None:
    project = (await env.project(
        MS_OP, project_code="MS-PIPE", name="天河中学助学金", owner_type=aid_pb2.PROJECT_OWNER_TYPE_SCHOOL,
        stage=HIGH, category=common_pb2.AID_CATEGORY_MERIT,
        tiers=[aid_pb2.AmountTier(tier_code="1", amount_fen=20000)],
    )).project_code  # fmt: skip
    kids = await env.kids(MS, HIGH, CHUNK + 60, class_name="流水线")
    template = await _template(env, project)
    stranger = new_id_number(birth="20090901")  # valid, but not in 学籍
    rows = [_kid_row(k) for k in kids] + [_row("查无此人", stranger)]
    summary = await _import(env, _filled(template, rows), project)
    assert not summary.committed and summary.created_count == 0
    assert summary.total_rows == CHUNK + 61 and summary.error_rows == 1
    assert [(e.row, e.code, e.column) for e in summary.errors] == [
        (CHUNK + 62, "STUDENT_NOT_FOUND", "身份证件号码")]  # fmt: skip
    assert "学籍中无此学生" in summary.errors[0].message
    assert await _count(env, class_name="流水线") == 0
    report = await env.call(
        "GetImportReport", aid_pb2.GetImportReportRequest(import_id=summary.import_id), MS_OP
    )
    assert report.file.content.startswith(b"PK")

    # A record already holding a later chunk's student: that row is refused, nothing stored.
    late = kids[CHUNK + 10]
    one = await _import(env, _filled(template, [_kid_row(late)]), project)
    assert one.committed and one.created_count == 1
    again = await _import(env, _filled(template, [_kid_row(k) for k in kids]), project)
    assert not again.committed and again.created_count == 0
    assert [(e.row, e.code) for e in again.errors] == [(CHUNK + 12, "DUPLICATE_RECORD")]
    assert await _count(env, class_name="流水线") == 1

    # Without it, every other row goes in, in one piece.
    rest = [_kid_row(k) for k in kids if k is not late]
    done = await _import(env, _filled(template, rest), project)
    assert done.committed and done.created_count == CHUNK + 59 and not done.errors
    assert await _count(env, class_name="流水线") == CHUNK + 60


async def test_mutually_exclusive_projects_are_checked_in_an_import(env: Env) -> None:
    kids = await env.kids(HY, COMPULSORY, 3, hardship=DIFFICULT, class_name="互斥导入")
    await env.enter(HY_OP, BOARDER_PRIMARY, kids[1])
    template = await _template(env, NON_BOARDER_PRIMARY, HY_OP)
    content = _filled(template, [_kid_row(k) for k in kids])
    dry = await _import(env, content, NON_BOARDER_PRIMARY, HY_OP, dry_run=True)
    assert [(e.row, e.code) for e in dry.errors] == [(3, "EXCLUSIVE_PROJECT")]
    summary = await _import(env, content, NON_BOARDER_PRIMARY, HY_OP)
    assert not summary.committed and [(e.row, e.code) for e in summary.errors] == [
        (3, "EXCLUSIVE_PROJECT")]  # fmt: skip
    assert BOARDER_PRIMARY in summary.errors[0].message
    done = await _import(
        env, _filled(template, [_kid_row(kids[0]), _kid_row(kids[2])]), NON_BOARDER_PRIMARY, HY_OP
    )
    assert done.committed and done.created_count == 2


async def test_an_import_fills_the_school_quota_and_no_more(env: Env) -> None:
    project = (await env.project(
        MS_OP, project_code="MS-QUOTA", name="天河中学限额奖学金", owner_type=aid_pb2.PROJECT_OWNER_TYPE_SCHOOL,
        stage=HIGH, category=common_pb2.AID_CATEGORY_MERIT,
        tiers=[aid_pb2.AmountTier(tier_code="1", amount_fen=50000)], quota_per_school=2,
    )).project_code  # fmt: skip
    kids = await env.kids(MS, HIGH, 3, class_name="限额导入")
    await env.enter(MS_OP, project, kids[0])
    template = await _template(env, project)
    summary = await _import(env, _filled(template, [_kid_row(kids[1]), _kid_row(kids[2])]), project)
    assert not summary.committed and [(e.row, e.code) for e in summary.errors] == [
        (3, "QUOTA_EXCEEDED")]  # fmt: skip
    done = await _import(env, _filled(template, [_kid_row(kids[1])]), project)
    assert done.committed and done.created_count == 1
    assert await _count(env, class_name="限额导入") == 2

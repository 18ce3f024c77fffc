"""Template import (模板批量导入): template download, dry run with a row-level report in Chinese,
all-or-nothing commit, no duplicates on re-upload, clean refusal of bad files."""

from __future__ import annotations

import io

import grpc
import openpyxl
from aid_harness import BYPS_OP, MS, MS_OP, PERIOD, TH_AUD, Env, Kid, refused
from python_calamine import CalamineWorkbook
from zizhu_contracts.aid.v1 import aid_pb2
from zizhu_contracts.common.v1 import common_pb2

HIGH = common_pb2.STAGE_GENERAL_HIGH_SCHOOL
DIFFICULT = common_pb2.HARDSHIP_LEVEL_DIFFICULT
PROJECT = "GJ-PG-ZXJ"


async def _template(env: Env, project: str = PROJECT) -> bytes:
    resp = await env.call(
        "GetImportTemplate", aid_pb2.GetImportTemplateRequest(project_code=project), MS_OP
    )
    assert resp.file.content_type.endswith("spreadsheetml.sheet")
    assert resp.file.file_name.endswith(".xlsx")
    return resp.file.content


def _filled(template: bytes, rows: list[list[object]]) -> bytes:
    """The template as a user fills it in a spreadsheet program."""
    wb = openpyxl.load_workbook(io.BytesIO(template))
    ws = wb["资助名单"]
    for i, row in enumerate(rows, start=2):
        for j, value in enumerate(row, start=1):
            ws.cell(row=i, column=j, value=value)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _row(k: Kid, tier: str = "2", **kw: object) -> list[object]:
    values = {"name": k.name, "type": "居民身份证", "id": k.id_number, "no": "", "tier": tier,
              "amount": "", "bank": "", "card": "", "remark": ""}  # fmt: skip
    values.update(kw)
    return list(values.values())


async def _import(
    env: Env, content: bytes, *, dry_run: bool, caller=MS_OP, name: str = "名单.xlsx", **kw
):
    return (await env.call("ImportRecords", aid_pb2.ImportRecordsRequest(
        project_code=kw.pop("project", PROJECT), period=PERIOD, dry_run=dry_run,
        file=common_pb2.FileContent(file_name=name, content=content), **kw), caller)).summary  # fmt: skip


async def _count(env: Env, caller=MS_OP, **kw) -> int:
    return (await env.call("ListRecords", aid_pb2.ListRecordsRequest(**kw), caller)).page.total


async def test_template_names_the_project_and_its_columns(env: Env) -> None:
    wb = CalamineWorkbook.from_filelike(io.BytesIO(await _template(env)))
    assert wb.sheet_names[:2] == ["资助名单", "填写说明"]
    header = wb.get_sheet_by_name("资助名单").to_python()[0]
    assert header[:3] == ["姓名", "证件类型", "身份证件号码"] and "资助档次" in header
    guide = {r[0]: r[1] for r in wb.get_sheet_by_name("填写说明").to_python() if r and r[0]}
    assert guide["项目名称"] == "普通高中国家助学金" and "1750" in guide["资助标准"]
    info = {r[0]: r[1] for r in wb.get_sheet_by_name("模板信息").to_python()}
    assert info["project_code"] == PROJECT


async def test_dry_run_reports_bad_rows_in_chinese_and_stores_nothing(env: Env) -> None:
    kids = await env.kids(MS, HIGH, 3, hardship=DIFFICULT, class_name="导入1班")
    bad_id = kids[1].id_number[:-1] + ("0" if kids[1].id_number[-1] != "0" else "1")
    content = _filled(await _template(env), [
        _row(kids[0]), _row(kids[1], id=bad_id), _row(kids[2], tier="9"), _row(kids[0]),
    ])  # fmt: skip
    before = await _count(env)
    summary = await _import(env, content, dry_run=True)
    assert (summary.total_rows, summary.valid_rows, summary.error_rows) == (4, 1, 3)
    assert not summary.committed and summary.import_id
    by_row = {e.row: e for e in summary.errors}
    assert by_row[3].column == "身份证件号码" and by_row[3].code == "ID_NUMBER_CHECKSUM"
    assert "*" in by_row[3].value and "校验位" in by_row[3].message
    assert (
        by_row[4].column == "资助档次"
        and by_row[4].code == "TIER_UNKNOWN"
        and by_row[4].value == "9"
    )
    assert by_row[5].code == "DUPLICATE_IN_FILE" and "第2行" in by_row[5].message
    assert await _count(env) == before
    report = await env.call(
        "GetImportReport", aid_pb2.GetImportReportRequest(import_id=summary.import_id), MS_OP
    )
    rows = (
        CalamineWorkbook.from_filelike(io.BytesIO(report.file.content))
        .get_sheet_by_index(0)
        .to_python()
    )
    assert rows[1] == ["行号", "列", "填写内容", "错误代码", "错误说明"]
    assert [int(r[0]) for r in rows[2:]] == [3, 4, 5]
    # The report is the school's: another school cannot read it.
    await refused(env.call("GetImportReport", aid_pb2.GetImportReportRequest(import_id=summary.import_id), BYPS_OP),
                  grpc.StatusCode.NOT_FOUND)  # fmt: skip


async def test_commit_is_all_or_nothing_and_reupload_creates_no_duplicates(env: Env) -> None:
    kids = await env.kids(MS, HIGH, 4, hardship=DIFFICULT, class_name="导入2班")
    [stranger] = await env.kids(MS, HIGH, 1, class_name="导入2班")  # no recognition
    template = await _template(env)
    with_bad = _filled(template, [_row(k) for k in kids] + [_row(stranger)])
    summary = await _import(env, with_bad, dry_run=False)
    assert not summary.committed and summary.created_count == 0
    assert [(e.row, e.code) for e in summary.errors] == [(6, "RECOGNITION_REQUIRED")]
    assert await _count(env, class_name="导入2班") == 0
    fixed = _filled(template, [_row(k, bank="中国银行", card="6217001234567890123") for k in kids])
    done = await _import(env, fixed, dry_run=False)
    assert done.committed and done.created_count == 4 and not done.errors
    listed = await env.call("ListRecords", aid_pb2.ListRecordsRequest(class_name="导入2班"), MS_OP)
    assert listed.page.total == 4
    assert {r.status for r in listed.records} == {aid_pb2.RECORD_STATUS_DRAFT}
    assert {r.bank_card_masked for r in listed.records} == {"6217***********0123"}
    history = await env.call("GetRecordHistory", aid_pb2.GetRecordHistoryRequest(
        record_id=listed.records[0].record_id), MS_OP)  # fmt: skip
    assert history.transitions[0].action == aid_pb2.RECORD_ACTION_IMPORTED
    again = await _import(env, fixed, dry_run=False)
    assert again.committed and again.import_id == done.import_id
    assert await _count(env, class_name="导入2班") == 4
    # A different file naming the same students: every row is a duplicate, nothing is written.
    renamed = _filled(template, [_row(k, remark="再次上报") for k in kids])
    dup = await _import(env, renamed, dry_run=False)
    assert not dup.committed and {e.code for e in dup.errors} == {"DUPLICATE_RECORD"}
    assert await _count(env, class_name="导入2班") == 4


async def test_a_staged_dry_run_is_committed_by_its_id_and_only_once(env: Env) -> None:
    kids = await env.kids(MS, HIGH, 2, hardship=DIFFICULT, class_name="导入3班")
    staged = await _import(
        env, _filled(await _template(env), [_row(k, tier="1") for k in kids]), dry_run=True
    )
    assert staged.valid_rows == 2 and staged.expires_at.seconds
    done = (await env.call("ImportRecords", aid_pb2.ImportRecordsRequest(
        project_code=PROJECT, period=PERIOD, import_id=staged.import_id, submit=True), MS_OP)).summary  # fmt: skip
    assert done.committed and done.created_count == 2 and done.import_id == staged.import_id
    listed = await env.call("ListRecords", aid_pb2.ListRecordsRequest(class_name="导入3班"), MS_OP)
    assert {r.status for r in listed.records} == {aid_pb2.RECORD_STATUS_PENDING_SCHOOL_AUDIT}
    assert {r.amount_fen for r in listed.records} == {175000}
    await refused(env.call("ImportRecords", aid_pb2.ImportRecordsRequest(
        project_code=PROJECT, period=PERIOD, import_id=staged.import_id), MS_OP),
        grpc.StatusCode.FAILED_PRECONDITION, "IMPORT_ALREADY_COMMITTED")  # fmt: skip


async def test_bad_files_are_refused_cleanly(env: Env) -> None:
    other = await _template(env, "GJ-BZK-ZXJ")
    await refused(
        _import(env, other, dry_run=True), grpc.StatusCode.INVALID_ARGUMENT, "WRONG_TEMPLATE"
    )
    wb = openpyxl.Workbook()
    wb.active.append(["学生姓名", "身份证"])
    buf = io.BytesIO()
    wb.save(buf)
    body = await refused(
        _import(env, buf.getvalue(), dry_run=True),
        grpc.StatusCode.INVALID_ARGUMENT,
        "WRONG_TEMPLATE",
    )
    assert body["field"] == "file" and "姓名" in body["message"]
    await refused(
        _import(env, b"name,id\n", dry_run=True), grpc.StatusCode.INVALID_ARGUMENT, "FILE_MALFORMED"
    )
    await refused(
        _import(env, b"PK\x03\x04" + b"\0" * 100, dry_run=True),
        grpc.StatusCode.INVALID_ARGUMENT,
        "FILE_MALFORMED",
    )
    await refused(_import(env, b"PK\x03\x04" + b"\0" * (21 * 1024 * 1024), dry_run=True),
                  grpc.StatusCode.RESOURCE_EXHAUSTED, "FILE_TOO_LARGE")  # fmt: skip
    await refused(
        _import(env, _filled(await _template(env), []), dry_run=True),
        grpc.StatusCode.INVALID_ARGUMENT,
        "FILE_EMPTY",
    )
    # Only the school's operator imports.
    await refused(
        _import(env, other, dry_run=True, caller=TH_AUD), grpc.StatusCode.PERMISSION_DENIED
    )


async def test_cells_that_lose_digits_or_amounts_in_words_are_reported(env: Env) -> None:
    kids = await env.kids(MS, HIGH, 3, hardship=DIFFICULT)
    content = _filled(await _template(env), [
        _row(kids[0], id=int(kids[0].id_number[:15])),
        _row(kids[1], tier="", amount="一千元"),
        _row(kids[2], tier="", amount=1150),
    ])  # fmt: skip
    summary = await _import(env, content, dry_run=True)
    codes = {e.row: e.code for e in summary.errors}
    assert codes == {2: "ID_NUMBER_NOT_TEXT", 3: "AMOUNT_INVALID"}


async def test_files_larger_than_one_roster_batch_are_imported_whole(env: Env) -> None:
    project = await env.project(
        MS_OP, project_code="MS-BIG", name="天河中学励学金", owner_type=aid_pb2.PROJECT_OWNER_TYPE_SCHOOL,
        stage=HIGH, category=common_pb2.AID_CATEGORY_MERIT,
        tiers=[aid_pb2.AmountTier(tier_code="1", amount_fen=20000)],
    )  # fmt: skip
    kids = await env.kids(MS, HIGH, 5100, class_name="大批量")  # more than one CheckEnrollment call
    template = await _template(env, project.project_code)
    summary = await _import(env, _filled(template, [_row(k, tier="1") for k in kids]), dry_run=False,
                            project=project.project_code)  # fmt: skip
    assert summary.committed and summary.created_count == 5100
    assert await _count(env, class_name="大批量") == 5100

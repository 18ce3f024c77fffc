"""学籍 file import: template, dry run with row-level errors, commit by import id, all-or-nothing,
valid-rows-only, CSV in UTF-8 and GB18030, XLSX."""

from __future__ import annotations

import csv
import io

import grpc
import openpyxl
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.roster.v1 import roster_pb2 as pb

from tests.roster.conftest import COUNTY_TH, SCHOOL_BYPS, SCHOOL_HY, md
from tests.roster.helpers import expect_error, make_id

HEADER = [
    "身份证件号码",
    "姓名",
    "性别",
    "出生日期",
    "学校标识码",
    "学段",
    "学籍号",
    "年级",
    "班级",
    "学籍状态",
    "是否寄宿",
    "联系电话",
]


def line(n: int, **kw: str) -> list[str]:
    idn = kw.get("id", make_id(n))
    values = {
        "id": idn, "name": f"学生{n}", "gender": "男", "birth": "20120901", "school": "2144010601",
        "stage": "义务教育", "number": "G" + idn, "grade": "六年级", "class": "2班", "status": "在籍",
        "boarder": "是", "phone": "139-0000-0000",
    }  # fmt: skip
    values.update(kw)
    return [
        values[k]
        for k in (
            "id",
            "name",
            "gender",
            "birth",
            "school",
            "stage",
            "number",
            "grade",
            "class",
            "status",
            "boarder",
            "phone",
        )
    ]


def csv_bytes(rows: list[list[str]], encoding: str = "utf-8-sig") -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(HEADER)
    w.writerows(rows)
    return out.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list[str]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for r in rows:
        sheet.append(r)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def upload(
    roster, content: bytes, name: str, who=SCHOOL_HY, **kw
) -> pb.ImportStudentsResponse:
    return await roster.stub.ImportStudents(
        pb.ImportStudentsRequest(
            file=common_pb2.FileContent(file_name=name, content=content), **kw
        ),
        metadata=md(who),
        timeout=60,
    )


async def test_templates_download_in_both_formats(roster):
    x = await roster.stub.GetStudentTemplate(pb.GetStudentTemplateRequest(), metadata=md(SCHOOL_HY))
    book = openpyxl.load_workbook(io.BytesIO(x.file.content))
    headers = [c.value for c in book.worksheets[0][1]]
    assert headers[:3] == ["证件类型", "身份证件号码", "姓名"] and "填写说明" in book.sheetnames
    c = await roster.stub.GetStudentTemplate(
        pb.GetStudentTemplateRequest(format="csv"), metadata=md(SCHOOL_HY)
    )
    assert c.file.content.decode("utf-8-sig").startswith("证件类型,身份证件号码")
    await expect_error(
        roster.stub.GetStudentTemplate(
            pb.GetStudentTemplateRequest(format="pdf"), metadata=md(SCHOOL_HY)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_dry_run_reports_rows_then_commit_by_import_id(roster):
    content = csv_bytes([line(1), line(2), line(3)])
    dry = await upload(roster, content, "学籍.csv", dry_run=True)
    s = dry.summary
    assert (s.total_rows, s.valid_rows, s.error_rows, s.dry_run, s.committed) == (
        3,
        3,
        0,
        True,
        False,
    )
    assert await roster.count("student") == 0
    done = await roster.stub.ImportStudents(
        pb.ImportStudentsRequest(import_id=s.import_id), metadata=md(SCHOOL_HY)
    )
    assert done.summary.committed and done.summary.created_count == 3
    found = await roster.stub.SearchStudents(pb.SearchStudentsRequest(), metadata=md(SCHOOL_HY))
    assert found.page.total == 3 and found.students[0].enrollment.boarder
    assert found.students[0].phone_masked == "139****0000"
    await expect_error(
        roster.stub.ImportStudents(
            pb.ImportStudentsRequest(import_id=s.import_id), metadata=md(SCHOOL_HY)
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "IMPORT_NOT_STAGED",
    )
    await expect_error(
        roster.stub.ImportStudents(
            pb.ImportStudentsRequest(import_id=s.import_id), metadata=md(SCHOOL_BYPS)
        ),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_file_with_errors_imports_nothing_and_report_lists_every_error(roster):
    rows = [
        line(1),
        line(2, id="440106201209010011"),  # checksum
        line(3, gender="女"),  # 17th digit says male
        line(4, school="2144011102"),  # other county's school
        line(5, status="毕业"),  # leaving status without its date
        line(6, birth="2012-13-01"),
        line(7),
        line(7, name="重复"),  # same person twice
    ]
    resp = await upload(roster, xlsx_bytes(rows), "学籍.xlsx")
    s = resp.summary
    assert not s.committed and s.created_count == 0 and (s.total_rows, s.error_rows) == (8, 6)
    got = sorted((e.row, e.column, e.code) for e in s.errors)
    assert got == [
        (3, "身份证件号码", "ID_NUMBER_CHECKSUM"),
        (4, "性别", "GENDER_ID_MISMATCH"),
        (5, "学校标识码", "SCHOOL_NOT_FOUND"),
        (6, "状态变动日期", "STATUS_DATE_REQUIRED"),
        (7, "出生日期", "BIRTH_DATE_FORMAT"),
        (9, "身份证件号码", "DUPLICATE_IN_BATCH"),
    ]
    assert await roster.count("student") == 0 and await roster.count("outbox_event") == 0
    report = await roster.stub.GetImportReport(
        pb.GetImportReportRequest(import_id=s.import_id), metadata=md(SCHOOL_HY)
    )
    sheet = openpyxl.load_workbook(io.BytesIO(report.file.content)).active
    assert sheet.max_row == 7 and sheet.cell(2, 5).value
    # The caller may ask for the valid rows only.
    partial = await upload(roster, xlsx_bytes(rows), "学籍.xlsx", skip_invalid_rows=True)
    assert partial.summary.committed and partial.summary.created_count == 2
    assert await roster.count("student") == 2


async def test_gb18030_csv_and_english_headers_are_read(roster):
    content = csv_bytes([line(1), line(2)], encoding="gb18030")
    resp = await upload(roster, content, "学籍.csv", who=COUNTY_TH)
    assert resp.summary.committed and resp.summary.created_count == 2
    english = "id_number,student_no,name,gender,birth_date,phone,school_code,stage,grade,class_no,boarding\n"
    english += (
        f"{make_id(3)},G{make_id(3)},王五,男,2012-09-01,13800000000,2144010601,义务教育,6,1,0\n"
    )
    resp = await upload(roster, english.encode(), "export.csv", who=COUNTY_TH)
    assert resp.summary.created_count == 1, resp.summary.errors


async def test_unusable_files_are_refused_with_a_clear_error(roster):
    await expect_error(upload(roster, b"", "a.csv"), grpc.StatusCode.INVALID_ARGUMENT, "FILE_EMPTY")
    await expect_error(
        upload(roster, "姓名,年级\n张三,1\n".encode(), "a.csv"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "FILE_COLUMNS_MISSING",
    )
    await expect_error(
        upload(roster, b"not a zip", "a.xlsx"), grpc.StatusCode.INVALID_ARGUMENT, "FILE_FORMAT"
    )
    await expect_error(
        upload(roster, csv_bytes([]), "a.csv"), grpc.StatusCode.INVALID_ARGUMENT, "FILE_EMPTY"
    )
    roster.services.deps.settings.import_max_bytes = 100
    await expect_error(
        upload(roster, csv_bytes([line(1)]), "a.csv"),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "FILE_TOO_LARGE",
    )


async def test_large_files_are_prepared_in_worker_processes_with_the_same_result(roster):
    settings = roster.services.deps.settings
    settings.sync_pool_min_rows, settings.sync_chunk_rows = 2, 2  # worker path, several chunks
    rows = [line(1), line(2, id="440106201209010011"), line(3), line(4), line(3, name="重复")]
    resp = await upload(roster, csv_bytes(rows, encoding="gb18030"), "学籍.csv")
    s = resp.summary
    assert not s.committed and (s.total_rows, s.error_rows) == (5, 2)
    assert sorted((e.row, e.code) for e in s.errors) == [
        (3, "ID_NUMBER_CHECKSUM"),
        (6, "DUPLICATE_IN_BATCH"),
    ]
    partial = await upload(roster, csv_bytes(rows), "学籍.csv", skip_invalid_rows=True)
    assert partial.summary.committed and partial.summary.created_count == 3
    found = await roster.stub.SearchStudents(pb.SearchStudentsRequest(), metadata=md(SCHOOL_HY))
    assert sorted(s.name for s in found.students) == ["学生1", "学生3", "学生4"]
    assert found.students[0].phone_masked == "139****0000"

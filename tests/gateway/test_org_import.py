"""Organisation import through the gateway: CSV and XLSX, dry run, row errors mapped to file rows,
unreadable files and missing columns, all in the one error shape."""

from __future__ import annotations

import io

import openpyxl
from gateway_harness import Api, orgs_csv
from gateway_world import HOME, World, next_serial


def school_code() -> str:
    return f"2113{next_serial():06d}"


def xlsx(rows: list[list[str]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload(api: Api, user, name: str, content: bytes, *, dry_run: bool = False):
    return api.request("POST", "/orgs/import", user, files={"file": (name, content)},
                       data={"dry_run": "true" if dry_run else "false"})  # fmt: skip


def test_xlsx_dry_run_reports_and_writes_nothing_then_commit_creates(
    api: Api, world: World
) -> None:
    county = world.admins["county"]
    code = school_code()
    content = xlsx([["学校标识码", "学校名称", "主管部门代码", "学段"],
                    [code, "试点小学", HOME["county"], "义务教育"]])  # fmt: skip
    report = api.ok("POST", "/orgs/import", county, files={"file": ("s.xlsx", content)},
                    data={"dry_run": "true"})  # fmt: skip
    assert report["dry_run"] is True and report["committed"] is False and not report["errors"]
    assert report["created_count"] == 1
    assert api.request("GET", f"/orgs/{code}", county).status_code == 404
    done = api.ok("POST", "/orgs/import", county, files={"file": ("s.xlsx", content)})
    assert done["committed"] is True and done["created_count"] == 1
    org = api.ok("GET", f"/orgs/{code}", county)
    assert org["level"] == "school" and org["stages"] == ["compulsory"]
    assert org["org_path"].startswith(county.org_path)


def test_row_errors_name_the_file_row_and_nothing_is_written(api: Api, world: World) -> None:
    county = world.admins["county"]
    good, bad_level = school_code(), school_code()
    rows = [
        {"机构代码": good, "名称": "好学校", "级别": "学校", "上级代码": HOME["county"]},
        {"机构代码": bad_level, "名称": "坏学校", "级别": "星球", "上级代码": HOME["county"]},
        {"机构代码": school_code(), "名称": "越权学校", "级别": "学校", "上级代码": "130104"},
    ]
    resp = api.import_orgs(county, rows)
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "IMPORT_ROWS_INVALID" and error["field"] == "file"
    by_row = {e["row"]: e["code"] for e in error["details"]["errors"]}
    assert by_row == {3: "LEVEL_UNKNOWN", 4: "PARENT_NOT_FOUND"}
    assert error["details"]["total_rows"] == 3 and error["details"]["created_count"] == 0
    assert api.request("GET", f"/orgs/{good}", county).status_code == 404


def test_unreadable_files_and_missing_columns_are_clear_errors(api: Api, world: World) -> None:
    county = world.admins["county"]
    resp = upload(api, county, "x.xlsx", b"PK\x03\x04 not really a workbook")
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "FILE_UNREADABLE"
    resp = upload(api, county, "x.pdf", b"%PDF-1.4")
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "FILE_TYPE_UNSUPPORTED"
    resp = upload(api, county, "x.csv", "名称\n某校\n".encode())
    error = resp.json()["error"]
    assert resp.status_code == 422 and error["code"] == "IMPORT_COLUMNS_MISSING"
    assert "机构代码" in error["message"]
    resp = upload(api, county, "x.csv", b"")
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "FILE_EMPTY"


def test_csv_from_excel_in_gb18030_is_read(api: Api, world: World) -> None:
    county = world.admins["county"]
    code = school_code()
    content = orgs_csv([{"机构代码": code, "名称": "某县某校", "上级代码": HOME["county"]}])
    report = api.ok("POST", "/orgs/import", county,
                    files={"file": ("a.csv", content.decode().encode("gb18030"))},
                    data={"dry_run": "true"})  # fmt: skip
    assert not report["errors"] and report["total_rows"] == 1
    assert report["created_count"] == 1  # a school, from its 10-digit code


def test_a_parent_outside_the_subtree_is_not_found_like_an_unknown_one(
    api: Api, world: World
) -> None:
    """Identity answers a sibling's org as a parent exactly as a parent that does not exist:
    PARENT_NOT_FOUND, with nothing of the sibling in the report."""
    county = world.admins["county"]
    rows = [
        {"机构代码": school_code(), "名称": "越权学校", "级别": "学校", "上级代码": "130104"},
        {"机构代码": school_code(), "名称": "无主学校", "级别": "学校", "上级代码": "139999"},
    ]
    report = api.ok("POST", "/orgs/import", county,
                    files={"file": ("o.csv", orgs_csv(rows), "text/csv")},
                    data={"dry_run": "true"})  # fmt: skip
    assert [(e["row"], e["code"], e["column"]) for e in report["errors"]] == [
        (2, "PARENT_NOT_FOUND", "上级代码"),
        (3, "PARENT_NOT_FOUND", "上级代码"),
    ]
    assert "一市乙县" not in str(report) and "/130104/" not in str(report)
    assert report["created_count"] == 0

"""Reading org files: GB/T 2260 divisions and schools (学校标识码) from CSV or XLSX.

Headers may be Chinese (as in the templates) or English field names. Rows are numbered as the
user sees them in a spreadsheet (the header is row 1).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

from identity_service.domain.orgs import (
    OWNERSHIP_ALIASES,
    Level,
    OrgRow,
    RowError,
    parse_stages,
)

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_ROWS = 200_000

# field → accepted headers (the first is the template's header, used in error reports).
DIVISION_COLUMNS: dict[str, tuple[str, ...]] = {
    "code": ("行政区划代码", "区划代码", "代码", "code", "org_code"),
    "name": ("名称", "行政区划名称", "单位名称", "name"),
    "parent_code": ("上级代码", "上级行政区划代码", "parent_code", "parent"),
}
SCHOOL_COLUMNS: dict[str, tuple[str, ...]] = {
    "code": ("学校标识码", "学校代码", "标识码", "school_code"),
    "name": ("学校名称", "名称", "name"),
    "parent_code": (
        "主管部门代码",
        "主管单位代码",
        "主管部门",
        "managing_authority",
        "parent_code",
    ),
    "region_code": ("所在地区代码", "所在行政区划代码", "行政区划代码", "region_code"),
    "stages": ("学段", "stages"),
    "ownership": ("办学性质", "ownership"),
}
REQUIRED = {"divisions": ("code", "name"), "schools": ("code", "name", "parent_code")}


@dataclass
class ParsedFile:
    """Rows ready for the import plan, row errors, and whether the file could be read at all."""

    rows: list[OrgRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    skipped: int = 0
    fatal: bool = False


def read_table(file_name: str, content: bytes) -> list[list[str]]:
    """Cells of the first sheet of an .xlsx, or of a CSV (UTF-8 with or without BOM, or GB18030)."""
    name = file_name.lower()
    if name.endswith((".xlsx", ".xlsm", ".xls")):
        from python_calamine import CalamineWorkbook

        book = CalamineWorkbook.from_filelike(io.BytesIO(content))
        sheet = book.get_sheet_by_index(0)
        return [[_cell(v) for v in row] for row in sheet.to_python(skip_empty_area=False)]
    if name.endswith((".csv", ".txt")):
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = content.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise ValueError("文件编码无法识别，请使用 UTF-8 或 GB18030 编码的 CSV")
        return [[c.strip() for c in row] for row in csv.reader(io.StringIO(text))]
    raise ValueError("只支持 .xlsx 或 .csv 文件")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def parse_org_file(file_name: str, content: bytes, *, kind: str = "") -> ParsedFile:
    """Parse a divisions or schools file (kind `divisions`/`schools`, or detected from headers)."""
    parsed = ParsedFile()
    if len(content) > MAX_FILE_BYTES:
        return _fatal(parsed, "FILE_TOO_LARGE", f"文件不能超过{MAX_FILE_BYTES // 1024 // 1024}MB")
    try:
        table = read_table(file_name, content)
    except ValueError as exc:
        return _fatal(parsed, "FILE_UNREADABLE", str(exc))
    except Exception:
        return _fatal(parsed, "FILE_UNREADABLE", "文件无法读取，请确认是有效的 .xlsx 或 .csv 文件")
    while table and not any(table[0]):
        table.pop(0)
    if not table:
        return _fatal(parsed, "FILE_EMPTY", "文件为空")
    if len(table) - 1 > MAX_ROWS:
        return _fatal(parsed, "TOO_MANY_ROWS", f"一个文件最多{MAX_ROWS}行")
    header = [h.strip() for h in table[0]]
    if not kind:
        kind = "schools" if any(h in SCHOOL_COLUMNS["code"] for h in header) else "divisions"
    spec = SCHOOL_COLUMNS if kind == "schools" else DIVISION_COLUMNS
    index: dict[str, int] = {}
    labels: dict[str, str] = {}
    for fld, names in spec.items():
        for pos, h in enumerate(header):
            if h in names or h.lower() in names:
                index[fld], labels[fld] = pos, h
                break
        labels.setdefault(fld, names[0])
    missing = [
        spec[f][0]
        for f in REQUIRED["schools" if kind == "schools" else "divisions"]
        if f not in index
    ]
    if missing:
        return _fatal(
            parsed, "MISSING_COLUMN", f"缺少必填列：{'、'.join(missing)}", column=missing[0]
        )
    for offset, cells in enumerate(table[1:], start=2):
        if not any(cells):
            continue
        _parse_row(parsed, offset, cells, index, labels, schools=kind == "schools")
    return parsed


def _get(cells: Sequence[str], index: dict[str, int], fld: str) -> str | None:
    pos = index.get(fld)
    if pos is None or pos >= len(cells):
        return None
    return cells[pos].strip()


def _parse_row(
    parsed: ParsedFile,
    row: int,
    cells: Sequence[str],
    index: dict[str, int],
    labels: dict[str, str],
    *,
    schools: bool,
) -> None:
    code = _get(cells, index, "code") or ""
    stages = None
    ownership = None
    ok = True
    if schools:
        raw_stages = _get(cells, index, "stages")
        if raw_stages:
            try:
                stages = parse_stages(raw_stages)
            except ValueError as exc:
                parsed.errors.append(
                    RowError(row, labels["stages"], raw_stages, "STAGE_UNKNOWN", str(exc))
                )
                ok = False
        raw_owner = _get(cells, index, "ownership")
        if raw_owner:
            ownership = OWNERSHIP_ALIASES.get(
                raw_owner.lower() if raw_owner.isascii() else raw_owner
            )
            if ownership is None:
                parsed.errors.append(
                    RowError(
                        row,
                        labels["ownership"],
                        raw_owner,
                        "OWNERSHIP_UNKNOWN",
                        "办学性质应为“公办”或“民办”",
                    )
                )
                ok = False
    if not ok:
        return
    parsed.rows.append(
        OrgRow(
            row=row,
            code=code,
            name=_get(cells, index, "name") or "",
            level=Level.SCHOOL if schools else None,
            parent_code=_get(cells, index, "parent_code") or None,
            region_code=(_get(cells, index, "region_code") or None) if schools else None,
            stages=stages,
            ownership=ownership,
            columns=labels,
        )
    )


def _fatal(parsed: ParsedFile, code: str, message: str, *, column: str = "") -> ParsedFile:
    parsed.errors.append(RowError(1 if column else 0, column, "", code, message))
    parsed.fatal = True
    return parsed

"""Reading org files: GB/T 2260 divisions, schools (学校标识码), or a mixed list of orgs
(机构代码, 名称, 级别, 上级代码, …) from CSV or XLSX.

Headers may be Chinese (as in the templates) or English field names. Rows are numbered as the
user sees them in a spreadsheet (the header is row 1). Problems with the file as a whole (unreadable,
empty, a required column missing) come back as one error on row 0 or 1 with `fatal` set.
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
# A mixed list: any level, the level in its own column (or read from the code).
ORG_COLUMNS: dict[str, tuple[str, ...]] = {
    "code": ("机构代码", "代码", "org_code", "code"),
    "name": ("名称", "机构名称", "学校名称", "区划名称", "name"),
    "level": ("级别", "层级", "机构级别", "level"),
    "parent_code": ("上级代码", "上级机构代码", "主管部门代码", "主管单位代码", "parent_code"),
    "region_code": ("所在地区代码", "所在行政区划代码", "地区代码", "region_code"),
    "stages": ("学段", "办学学段", "stages"),
    "ownership": ("办学性质", "ownership"),
}
REQUIRED = {
    "divisions": ("code", "name"),
    "schools": ("code", "name", "parent_code"),
    "orgs": ("code", "name"),
}
LEVEL_ALIASES: dict[str, Level] = {
    **dict.fromkeys(("省", "省级", "province"), Level.PROVINCE),
    **dict.fromkeys(("市", "市级", "地市", "地市级", "city"), Level.CITY),
    **dict.fromkeys(("县", "县级", "区县", "县区", "county"), Level.COUNTY),
    **dict.fromkeys(("校", "学校", "school"), Level.SCHOOL),
}
XLSX_MAGIC = b"PK\x03\x04"


class UnsupportedFile(ValueError):
    """A file that is neither .xlsx nor .csv."""


@dataclass
class ParsedFile:
    """Rows ready for the import plan, row errors, and whether the file could be read at all."""

    rows: list[OrgRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    skipped: int = 0
    fatal: bool = False
    total_rows: int = 0  # non-empty data rows of the file


def read_table(file_name: str, content: bytes) -> list[list[str]]:
    """Cells of the first sheet of an .xlsx, or of a CSV (UTF-8 with or without BOM, or GB18030)."""
    name = file_name.lower()
    if name.endswith((".xlsx", ".xlsm", ".xls")) or (not name and content.startswith(XLSX_MAGIC)):
        from python_calamine import CalamineWorkbook

        book = CalamineWorkbook.from_filelike(io.BytesIO(content))
        sheet = book.get_sheet_by_index(0)
        return [[_cell(v) for v in row] for row in sheet.to_python(skip_empty_area=False)]
    if name.endswith((".csv", ".txt")) or not name:
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = content.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise ValueError("文件编码无法识别，请使用 UTF-8 或 GB18030 编码的 CSV")
        return [[c.strip() for c in row] for row in csv.reader(io.StringIO(text))]
    raise UnsupportedFile("仅支持 .csv 或 .xlsx 文件")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def detect_kind(header: Sequence[str]) -> str:
    """`schools` for a 学校标识码 column, `divisions` for a 行政区划代码 one without a level
    column, else `orgs` (a mixed list; also when no code column is there, so that the missing
    column is named 机构代码)."""
    names = {h.strip().lower() for h in header}
    if names & set(SCHOOL_COLUMNS["code"]):
        return "schools"
    if names & set(ORG_COLUMNS["level"]) or "机构代码" in names:
        return "orgs"
    if names & set(DIVISION_COLUMNS["code"]):
        return "divisions"
    return "orgs"


def parse_org_file(file_name: str, content: bytes, *, kind: str = "") -> ParsedFile:
    """Parse a divisions, schools or mixed orgs file (kind `divisions`/`schools`/`orgs`, or
    detected from the headers)."""
    parsed = ParsedFile()
    if len(content) > MAX_FILE_BYTES:
        return _fatal(parsed, "FILE_TOO_LARGE", f"文件不能超过{MAX_FILE_BYTES // 1024 // 1024}MB")
    try:
        table = read_table(file_name, content)
    except UnsupportedFile as exc:
        return _fatal(parsed, "FILE_TYPE_UNSUPPORTED", str(exc))
    except ValueError as exc:
        return _fatal(parsed, "FILE_UNREADABLE", str(exc))
    except Exception:
        return _fatal(parsed, "FILE_UNREADABLE", "文件无法读取，请确认是有效的 .xlsx 或 .csv 文件")
    while table and not any(table[0]):
        table.pop(0)
    if not table:
        return _fatal(parsed, "FILE_EMPTY", "文件为空")
    if len(table) - 1 > MAX_ROWS:
        return _fatal(parsed, "IMPORT_TOO_MANY_ROWS", f"一个文件最多{MAX_ROWS}行")
    header = [h.strip().lstrip("\ufeff") for h in table[0]]
    if kind not in REQUIRED:
        kind = detect_kind(header)
    spec = {"schools": SCHOOL_COLUMNS, "orgs": ORG_COLUMNS}.get(kind, DIVISION_COLUMNS)
    index: dict[str, int] = {}
    labels: dict[str, str] = {}
    for fld, names in spec.items():
        for pos, h in enumerate(header):
            if h in names or h.lower() in names:
                index[fld], labels[fld] = pos, h
                break
        labels.setdefault(fld, names[0])
    missing = [spec[f][0] for f in REQUIRED[kind] if f not in index]
    if missing:
        return _fatal(
            parsed, "IMPORT_COLUMNS_MISSING", f"缺少必需的列：{'、'.join(missing)}",
            column=missing[0],
        )  # fmt: skip
    data = [(n, cells) for n, cells in enumerate(table[1:], start=2) if any(cells)]
    if not data:
        return _fatal(parsed, "FILE_EMPTY", "文件中没有数据行")
    parsed.total_rows = len(data)
    for offset, cells in data:
        _parse_row(parsed, offset, cells, index, labels, kind=kind)
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
    kind: str,
) -> None:
    code = _get(cells, index, "code") or ""
    schools = kind == "schools"
    stages = None
    ownership = None
    level = Level.SCHOOL if schools else None
    ok = True
    if kind == "orgs":
        raw_level = _get(cells, index, "level")
        if raw_level:
            level = LEVEL_ALIASES.get(raw_level.lower() if raw_level.isascii() else raw_level)
            if level is None:
                parsed.errors.append(
                    RowError(
                        row, labels["level"], raw_level, "LEVEL_UNKNOWN",
                        "级别应为 省、市、县 或 学校",
                    )
                )  # fmt: skip
                ok = False
    if kind != "divisions":
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
            level=level,
            parent_code=_get(cells, index, "parent_code") or None,
            region_code=(_get(cells, index, "region_code") or None)
            if kind != "divisions"
            else None,
            stages=stages,
            ownership=ownership,
            columns=labels,
        )
    )


def _fatal(parsed: ParsedFile, code: str, message: str, *, column: str = "") -> ParsedFile:
    parsed.errors.append(RowError(1 if column else 0, column, "", code, message))
    parsed.fatal = True
    return parsed

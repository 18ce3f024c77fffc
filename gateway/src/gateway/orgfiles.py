"""Reading organisation import files (CSV or XLSX) into ImportOrgs rows.

Columns are found by their Chinese (or English) header; the level may be left out and is then
read from the code (10-digit 学校标识码 → school; GB/T 2260: `xx0000` province, `xxxx00` city,
otherwise county). Rows are numbered as the user sees them (the header is row 1).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from zizhu_common.errors import InvalidArgument
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.identity.v1 import identity_pb2

COLUMNS: dict[str, tuple[str, ...]] = {
    "org_code": ("机构代码", "代码", "学校标识码", "行政区划代码", "区划代码", "org_code"),
    "name": ("名称", "机构名称", "学校名称", "区划名称", "name"),
    "level": ("级别", "层级", "机构级别", "level"),
    "parent_code": ("上级代码", "上级机构代码", "主管部门代码", "主管单位代码", "parent_code"),
    "region_code": ("所在地区代码", "所在行政区划代码", "地区代码", "region_code"),
    "stages": ("学段", "办学学段", "stages"),
}
HEADERS = {"org_code": "机构代码", "name": "名称", "level": "级别", "parent_code": "上级代码",
           "region_code": "所在地区代码", "stages": "学段"}  # fmt: skip
REQUIRED = ("org_code", "name", "parent_code")

LEVELS: dict[str, int] = {
    **dict.fromkeys(("省", "省级", "province"), common_pb2.ORG_LEVEL_PROVINCE),
    **dict.fromkeys(("市", "市级", "地市", "地市级", "city"), common_pb2.ORG_LEVEL_CITY),
    **dict.fromkeys(("县", "县级", "区县", "县区", "county"), common_pb2.ORG_LEVEL_COUNTY),
    **dict.fromkeys(("校", "学校", "school"), common_pb2.ORG_LEVEL_SCHOOL),
}
STAGES: dict[str, int] = {
    **dict.fromkeys(("学前", "学前教育", "preschool"), common_pb2.STAGE_PRESCHOOL),
    **dict.fromkeys(("义务教育", "小学", "初中", "compulsory"), common_pb2.STAGE_COMPULSORY),
    **dict.fromkeys(
        ("普通高中", "高中", "general_high_school"), common_pb2.STAGE_GENERAL_HIGH_SCHOOL
    ),
    **dict.fromkeys(
        ("中等职业教育", "中职", "secondary_vocational"), common_pb2.STAGE_SECONDARY_VOCATIONAL
    ),
    **dict.fromkeys(("本专科", "高等教育", "undergraduate"), common_pb2.STAGE_UNDERGRADUATE),
    **dict.fromkeys(("研究生", "postgraduate"), common_pb2.STAGE_POSTGRADUATE),
}
_SPLIT = re.compile(r"[、,，;；/\s]+")
XLSX_MAGIC = b"PK\x03\x04"


@dataclass
class ParsedOrgs:
    """Rows read from a file, with the row number of each, and the rows that could not be read."""

    rows: list[tuple[int, identity_pb2.OrgInput]] = field(default_factory=list)
    errors: list[common_pb2.RowError] = field(default_factory=list)
    total_rows: int = 0


def read_table(file_name: str, content: bytes) -> list[list[str]]:
    """The cells of the first sheet of an XLSX, or of a CSV (UTF-8, or GB18030 from Excel)."""
    lower = file_name.lower()
    if lower.endswith(".xlsx") or content.startswith(XLSX_MAGIC):
        return _read_xlsx(content)
    if lower.endswith((".csv", ".txt")) or not lower:
        return _read_csv(content)
    raise InvalidArgument("仅支持 .csv 或 .xlsx 文件", code="FILE_TYPE_UNSUPPORTED", field="file")


def _read_xlsx(content: bytes) -> list[list[str]]:
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_filelike(io.BytesIO(content))
        rows = book.get_sheet_by_index(0).to_python(skip_empty_area=False)
    except Exception as exc:
        raise InvalidArgument(
            "无法读取 Excel 文件，请确认文件未损坏且为 .xlsx 格式",
            code="FILE_UNREADABLE",
            field="file",
        ) from exc
    return [[_cell(v) for v in row] for row in rows]


def _cell(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value).strip()


def _read_csv(content: bytes) -> list[list[str]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise InvalidArgument("无法识别文件编码（应为 UTF-8 或 GB18030）", code="FILE_UNREADABLE",
                              field="file")  # fmt: skip
    try:
        return [[c.strip() for c in row] for row in csv.reader(io.StringIO(text))]
    except csv.Error as exc:
        raise InvalidArgument("CSV 文件格式错误", code="FILE_UNREADABLE", field="file") from exc


def parse_orgs(file_name: str, content: bytes, *, max_rows: int) -> ParsedOrgs:
    """Import rows from a file; unreadable files and missing columns raise InvalidArgument."""
    table = [row for row in read_table(file_name, content)]
    while table and not any(table[0]):
        table.pop(0)
    if not table:
        raise InvalidArgument("文件为空", code="FILE_EMPTY", field="file")
    index = _columns(table[0])
    data = [(n, row) for n, row in enumerate(table[1:], start=2) if any(row)]
    if len(data) > max_rows:
        raise InvalidArgument(
            f"单个文件最多 {max_rows} 行，当前 {len(data)} 行",
            code="IMPORT_TOO_MANY_ROWS",
            field="file",
            details={"max_rows": max_rows, "rows": len(data)},
        )
    parsed = ParsedOrgs(total_rows=len(data))
    for row_number, row in data:
        org = _row(row_number, row, index, parsed.errors)
        if org is not None:
            parsed.rows.append((row_number, org))
    return parsed


def _columns(header: list[str]) -> dict[str, int]:
    index: dict[str, int] = {}
    names = [h.strip().lstrip("\ufeff").lower() for h in header]
    for key, aliases in COLUMNS.items():
        for i, name in enumerate(names):
            if name in {a.lower() for a in aliases}:
                index[key] = i
                break
    missing = [HEADERS[k] for k in REQUIRED if k not in index]
    if missing:
        raise InvalidArgument(
            f"缺少必需的列：{'、'.join(missing)}",
            code="IMPORT_COLUMNS_MISSING",
            field="file",
            details={"missing": missing},
        )
    return index


def _row(
    row_number: int, row: list[str], index: dict[str, int], errors: list[common_pb2.RowError]
) -> identity_pb2.OrgInput | None:
    def cell(key: str) -> str:
        i = index.get(key)
        return row[i].strip() if i is not None and i < len(row) else ""

    def error(key: str, value: str, code: str, message: str) -> None:
        errors.append(
            common_pb2.RowError(
                row=row_number, column=HEADERS[key], value=value, code=code, message=message
            )
        )

    before = len(errors)
    code, name, parent = cell("org_code"), cell("name"), cell("parent_code")
    if not re.fullmatch(r"[0-9]{6}|[0-9]{10}", code):
        error("org_code", code, "ORG_CODE_MALFORMED",
              "机构代码应为 6 位行政区划代码或 10 位学校标识码")  # fmt: skip
    if not name:
        error("name", name, "NAME_REQUIRED", "名称不能为空")
    if not re.fullmatch(r"[0-9]{6}|[0-9]{10}", parent):
        error("parent_code", parent, "PARENT_CODE_MALFORMED", "上级代码应为 6 位或 10 位数字")
    level_text = cell("level")
    level = LEVELS.get(level_text.lower()) if level_text else _level_from_code(code)
    if level is None:
        error("level", level_text, "LEVEL_UNKNOWN", "级别应为 省、市、县 或 学校")
    stages = []
    for part in _SPLIT.split(cell("stages")):
        if part:
            stage = STAGES.get(part.lower())
            if stage is None:
                error("stages", part, "STAGE_UNKNOWN", "学段不在允许范围内")
            elif stage not in stages:
                stages.append(stage)
    region = cell("region_code")
    if region and not re.fullmatch(r"[0-9]{6}", region):
        error("region_code", region, "REGION_CODE_MALFORMED", "所在地区代码应为 6 位数字")
    if len(errors) > before or level is None:
        return None
    return identity_pb2.OrgInput(
        org_code=code,
        name=name,
        level=level,  # type: ignore[arg-type]
        parent_code=parent,
        region_code=region,
        stages=stages,  # type: ignore[arg-type]
    )


def _level_from_code(code: str) -> int | None:
    if re.fullmatch(r"[0-9]{10}", code):
        return common_pb2.ORG_LEVEL_SCHOOL
    if not re.fullmatch(r"[0-9]{6}", code):
        return None
    if code.endswith("0000"):
        return common_pb2.ORG_LEVEL_PROVINCE
    if code.endswith("00"):
        return common_pb2.ORG_LEVEL_CITY
    return common_pb2.ORG_LEVEL_COUNTY

"""Spreadsheets of the aid service: the import template (模板), reading an upload, the row-level
error report, and the record export. Reading uses python-calamine; writing uses xlsxwriter in
constant-memory mode."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import xlsxwriter
from python_calamine import CalamineWorkbook
from zizhu_common.bulk import paused_gc
from zizhu_common.errors import InvalidArgument, ResourceExhausted

from aid_service.domain.enums import ID_TYPE_LABELS, IdType
from aid_service.domain.projects import Project, yuan

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TEMPLATE_KIND = "zizhu.aid.records"
TEMPLATE_VERSION = "1"
DATA_SHEET = "资助名单"
INFO_SHEET = "模板信息"
GUIDE_SHEET = "填写说明"
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_ROWS = 200_000


@dataclass(frozen=True)
class Column:
    """One template column: field name, Chinese header, whether required, how to fill it."""

    field: str
    header: str
    required: bool
    hint: str
    text: bool = False
    width: int = 14


COLUMNS: tuple[Column, ...] = (
    Column("student_name", "姓名", True, "与学籍一致", width=12),
    Column("id_type", "证件类型", False, "默认居民身份证", width=16),
    Column("id_number", "身份证件号码", True, "18位，末位X大写；请以文本格式填写", True, 22),
    Column("student_number", "学籍号", False, "全国学籍号或学号；填写时须与学籍一致", True, 22),
    Column("tier_code", "资助档次", False, "档次代码或名称；与资助金额至少填一项", width=12),
    Column("amount", "资助金额(元)", False, "本学期金额，最多两位小数", width=14),
    Column("bank_name", "开户银行", False, "可不填", width=18),
    Column("bank_card_number", "银行卡号", False, "12至19位数字，文本格式", True, 24),
    Column("remark", "备注", False, "不超过200字", width=24),
)
HEADERS = {c.header: c for c in COLUMNS}
FIELD_HEADER = {c.field: c.header for c in COLUMNS}
ID_TYPE_BY_LABEL = {label: t for t, label in ID_TYPE_LABELS.items()}


@dataclass(slots=True)
class RawRow:
    """One data row of an upload, as text, with its spreadsheet row number."""

    row: int
    student_name: str
    id_type: str
    id_number: str
    student_number: str
    tier_code: str
    amount: str
    bank_name: str
    bank_card_number: str
    remark: str
    id_number_numeric: bool = False


@dataclass
class ParsedUpload:
    """The data rows of an upload."""

    rows: list[RawRow]


def template(project: Project) -> bytes:
    """The .xlsx import template of a project: data sheet, guide, hidden template info."""
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    required = wb.add_format(
        {"bold": True, "bg_color": "#FCE4D6", "border": 1, "font_color": "#C00000"}
    )
    text = wb.add_format({"num_format": "@"})
    ws = wb.add_worksheet(DATA_SHEET)
    for i, col in enumerate(COLUMNS):
        ws.write_string(0, i, col.header, required if col.required else head)
        ws.set_column(i, i, col.width, text if col.text else None)
        ws.write_comment(0, i, f"{'必填。' if col.required else ''}{col.hint}")
    ws.freeze_panes(1, 0)
    ws.data_validation(
        1, 1, MAX_ROWS, 1, {"validate": "list", "source": list(ID_TYPE_LABELS.values())}
    )
    tier_names = [t.name for t in project.tiers]
    if tier_names and sum(len(n) + 1 for n in tier_names) < 250:
        ws.data_validation(
            1, 4, MAX_ROWS, 4,
            {"validate": "list", "source": tier_names, "ignore_blank": True,
             "error_type": "warning"},
        )  # fmt: skip
    guide = wb.add_worksheet(GUIDE_SHEET)
    guide.set_column(0, 0, 18)
    guide.set_column(1, 1, 60)
    lines: list[tuple[str, str]] = [
        ("项目代码", project.project_code),
        ("项目名称", project.name),
        ("项目来源", project.owner_type.label),
        ("学段", project.stage.label),
        ("资助标准", project.allowed_amounts_text()),
        (
            "困难认定要求",
            f"须认定为{project.min_hardship_level.label}及以上"
            if project.requires_recognition and project.min_hardship_level
            else "无",
        ),
        ("", ""),
        ("列名", "填写要求"),
        *[(c.header, ("必填；" if c.required else "") + c.hint) for c in COLUMNS],
        ("", ""),
        ("说明", "请勿修改表头和工作表名称；第一行为表头，从第二行开始填写，每行一名学生。"),
    ]
    for i, (a, b) in enumerate(lines):
        guide.write_string(i, 0, a, head if a in ("列名",) else None)
        guide.write_string(i, 1, b)
    if project.tiers:
        base = len(lines) + 1
        guide.write_string(base, 0, "档次代码", head)
        guide.write_string(base, 1, "档次名称 / 金额(元)", head)
        for i, tier in enumerate(project.tiers, start=1):
            guide.write_string(base + i, 0, tier.tier_code)
            guide.write_string(base + i, 1, f"{tier.name} / {yuan(tier.amount_fen)}")
    info = wb.add_worksheet(INFO_SHEET)
    for i, (k, v) in enumerate(
        (
            ("template", TEMPLATE_KIND),
            ("version", TEMPLATE_VERSION),
            ("project_code", project.project_code),
        )
    ):
        info.write_string(i, 0, k)
        info.write_string(i, 1, v)
    info.hide()
    wb.close()
    return buf.getvalue()


def _text(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value).strip()


def parse_upload(content: bytes, *, project_code: str, max_rows: int = MAX_ROWS) -> ParsedUpload:
    """Read an uploaded template of a project: refuse oversize, malformed and wrong-template
    files (another project's template, or columns that are not the template's)."""
    if len(content) > MAX_UPLOAD_BYTES:
        raise ResourceExhausted(
            f"文件超过{MAX_UPLOAD_BYTES // (1024 * 1024)}MB，请拆分后上传",
            code="FILE_TOO_LARGE",
            field="file",
        )
    if not content:
        raise InvalidArgument("上传的文件为空", code="FILE_EMPTY", field="file")
    if not content.startswith(b"PK\x03\x04"):
        raise InvalidArgument(
            "文件不是有效的.xlsx文件（请使用下载的模板，另存为Excel工作簿.xlsx）",
            code="FILE_MALFORMED",
            field="file",
        )
    try:
        # The cells become a million Python objects at once: no cyclic collections meanwhile.
        with paused_gc():
            wb = CalamineWorkbook.from_filelike(io.BytesIO(content))
            names = wb.sheet_names
            sheet = (
                wb.get_sheet_by_name(DATA_SHEET)
                if DATA_SHEET in names
                else wb.get_sheet_by_index(0)
            )
            data = sheet.to_python(skip_empty_area=False)
            info = wb.get_sheet_by_name(INFO_SHEET).to_python() if INFO_SHEET in names else []
    except (zipfile.BadZipFile, ValueError, OSError, Exception) as exc:  # calamine raises its own
        if isinstance(exc, (InvalidArgument, ResourceExhausted)):
            raise
        raise InvalidArgument(
            "文件已损坏或不是有效的.xlsx文件，无法读取", code="FILE_MALFORMED", field="file"
        ) from None
    meta = {_text(r[0]): _text(r[1]) for r in info if len(r) >= 2}
    if meta and meta.get("template") != TEMPLATE_KIND:
        raise InvalidArgument(
            "文件不是资助名单导入模板，请下载本项目的模板后填写",
            code="WRONG_TEMPLATE",
            field="file",
        )
    if meta.get("project_code") and meta["project_code"] != project_code:
        raise InvalidArgument(
            f"文件是项目“{meta['project_code']}”的模板，不是本项目（{project_code}）的，"
            "请下载本项目的模板后填写",
            code="WRONG_TEMPLATE",
            field="file",
        )
    if not data:
        raise InvalidArgument("文件中没有数据", code="FILE_EMPTY", field="file")
    header = [_text(h) for h in data[0]]
    index: dict[str, int] = {}
    for i, h in enumerate(header):
        col = HEADERS.get(h)
        if col is not None and col.field not in index:
            index[col.field] = i
    missing = [c.header for c in COLUMNS if c.required and c.field not in index]
    if missing:
        raise InvalidArgument(
            f"表头不符合模板：缺少“{'”、“'.join(missing)}”列，请下载本项目的模板后填写",
            code="WRONG_TEMPLATE",
            field="file",
            details={"missing_columns": missing},
        )
    body = data[1:]
    if len(body) > max_rows:
        # Trailing blank rows do not count.
        while body and not any(body[-1]):
            body.pop()
        if len(body) > max_rows:
            raise ResourceExhausted(
                f"一次最多导入{max_rows}行，文件有{len(body)}行，请拆分后上传",
                code="FILE_TOO_MANY_ROWS",
                field="file",
            )
    width = len(header)
    none = width  # index of an always-empty cell (rows are padded to width + 1)
    cols = [index.get(c.field, none) for c in COLUMNS]
    with paused_gc():
        rows = _read_rows(body, width, cols)
    if not rows:
        raise InvalidArgument("文件中没有数据行", code="FILE_EMPTY", field="file")
    return ParsedUpload(rows)


def _read_rows(body: list[list[Any]], width: int, cols: list[int]) -> list[RawRow]:
    """The data rows as text, numbered as the spreadsheet shows them; blank rows skipped. The
    hot loop of a large file: text cells (the template's) take the fast path."""
    i_name, i_type, i_id, i_no, i_tier, i_amt, i_bank, i_card, i_rem = cols
    pad = ("",) * (width + 1)
    text = _text
    rows: list[RawRow] = []
    append = rows.append
    for n, raw in enumerate(body, start=2):
        if not any(raw):
            continue
        if len(raw) <= width:
            raw = [*raw, *pad[len(raw) :]]
        name, kind, idn, no, tier, amt, bank, card, rem = (
            raw[i_name], raw[i_type], raw[i_id], raw[i_no], raw[i_tier], raw[i_amt],
            raw[i_bank], raw[i_card], raw[i_rem],
        )  # fmt: skip
        append(
            RawRow(
                n,
                name.strip() if name.__class__ is str else text(name),
                kind.strip() if kind.__class__ is str else text(kind),
                idn.strip() if idn.__class__ is str else text(idn),
                no.strip() if no.__class__ is str else text(no),
                tier.strip() if tier.__class__ is str else text(tier),
                amt.strip() if amt.__class__ is str else text(amt),
                bank.strip() if bank.__class__ is str else text(bank),
                card.strip() if card.__class__ is str else text(card),
                rem.strip() if rem.__class__ is str else text(rem),
                idn.__class__ in (int, float),
            )
        )
    return rows


def parse_yuan(text: str) -> int:
    """Yuan text ("1150", "1,150.50", "625.5") as fen; ValueError when not an amount."""
    cleaned = text.replace(",", "").replace("，", "").replace("元", "").strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(text) from None
    fen = value * 100
    if not value.is_finite() or fen != fen.to_integral_value():
        raise ValueError(text)
    return int(fen)


def id_type_of(text: str) -> IdType | None:
    """The document type of a template cell (empty = resident ID)."""
    if not text:
        return IdType.RESIDENT_ID
    return ID_TYPE_BY_LABEL.get(text)


def report(errors: Sequence[dict[str, Any]], *, title: str) -> bytes:
    """The row-level error report (行号, 列, 填写内容, 错误代码, 错误说明) as .xlsx."""
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "constant_memory": True})
    head = wb.add_format({"bold": True, "bg_color": "#FCE4D6", "border": 1})
    ws = wb.add_worksheet("错误报告")
    ws.write_string(0, 0, title)
    for i, (h, w) in enumerate(
        (("行号", 8), ("列", 16), ("填写内容", 24), ("错误代码", 26), ("错误说明", 70))
    ):
        ws.write_string(1, i, h, head)
        ws.set_column(i, i, w)
    for n, e in enumerate(errors, start=2):
        ws.write_number(n, 0, int(e.get("row", 0)))
        ws.write_string(n, 1, str(e.get("column", "")))
        ws.write_string(n, 2, str(e.get("value", "")))
        ws.write_string(n, 3, str(e.get("code", "")))
        ws.write_string(n, 4, str(e.get("message", "")))
    wb.close()
    return buf.getvalue()


def table(
    headers: Sequence[tuple[str, int]], rows: Iterable[Sequence[Any]], *, sheet: str
) -> bytes:
    """A one-sheet table (header row + rows of text and numbers) as .xlsx."""
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "constant_memory": True})
    head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    ws = wb.add_worksheet(sheet)
    for i, (h, w) in enumerate(headers):
        ws.write_string(0, i, h, head)
        ws.set_column(i, i, w)
    for n, row in enumerate(rows, start=1):
        for i, v in enumerate(row):
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                ws.write_number(n, i, v)
            else:
                ws.write_string(n, i, "" if v is None else str(v))
    wb.close()
    return buf.getvalue()

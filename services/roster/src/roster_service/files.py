"""Spreadsheet files: reading uploads (.csv in UTF-8/GB18030, .xlsx via calamine) into rows of
text, writing templates and row-level error reports (.xlsx)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time

import xlsxwriter
from python_calamine import CalamineWorkbook
from zizhu_common.errors import InvalidArgument

from roster_service.domain.common import RowError

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv"


@dataclass
class Table:
    """An uploaded sheet: field per column index, and the data rows (1-based row numbers as the
    user sees them, the header being row 1)."""

    fields: dict[int, str]
    rows: Iterator[tuple[int, dict[str, str]]]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return ""
    return str(value).strip()


def _decode(content: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidArgument(
        "文件编码无法识别，请使用UTF-8或GB18030", code="FILE_ENCODING", field="file"
    )


def _kind(file_name: str, content: bytes) -> str:
    if content[:4] == b"PK\x03\x04":
        return "xlsx"
    if file_name.lower().endswith((".xlsx", ".xls")):
        raise InvalidArgument("文件不是有效的.xlsx文件", code="FILE_FORMAT", field="file")
    return "csv"


def open_table(
    content: bytes,
    file_name: str,
    *,
    aliases: Mapping[str, str],
    required: Sequence[str],
    labels: Mapping[str, str],
    max_rows: int,
) -> Table:
    """Header-mapped rows of an upload; a missing required column or an empty file is refused."""
    if not content:
        raise InvalidArgument("文件为空", code="FILE_EMPTY", field="file")
    if _kind(file_name, content) == "xlsx":
        try:
            book = CalamineWorkbook.from_filelike(io.BytesIO(content))
            sheet = book.get_sheet_by_index(0)
            raw_rows: Iterator[Sequence[object]] = iter(sheet.iter_rows())
        except Exception as exc:
            raise InvalidArgument("无法读取.xlsx文件", code="FILE_FORMAT", field="file") from exc
    else:
        raw_rows = csv.reader(io.StringIO(_decode(content)))
    try:
        header = [_cell(v) for v in next(raw_rows)]
    except StopIteration:
        raise InvalidArgument("文件为空", code="FILE_EMPTY", field="file") from None
    fields: dict[int, str] = {}
    for i, name in enumerate(header):
        key = aliases.get(name.strip()) or aliases.get(name.strip().lower())
        if key and key not in fields.values():
            fields[i] = key
    missing = [labels[f] for f in required if f not in fields.values()]
    if missing:
        raise InvalidArgument(
            f"文件缺少必需的列：{'、'.join(missing)}（请使用下载的模板）",
            code="FILE_COLUMNS_MISSING",
            field="file",
            details={"missing": missing},
        )
    items = list(fields.items())

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        number = 1
        for raw in raw_rows:
            number += 1
            if number - 1 > max_rows:
                raise InvalidArgument(
                    f"文件行数超过上限{max_rows}行，请拆分后上传",
                    code="FILE_TOO_MANY_ROWS",
                    field="file",
                )
            width = len(raw)
            values = {k: (raw[i] if i < width else "") for i, k in items}
            if not any(values.values()):
                continue
            yield number, {k: v if isinstance(v, str) else _cell(v) for k, v in values.items()}

    return Table(fields=fields, rows=rows())


def csv_body(content: bytes) -> bytes | None:
    """The UTF-8 lines after the header of a CSV upload, when they can be split by line (no
    quoted fields); None otherwise."""
    if b'"' in content:
        return None
    try:
        text = content.decode("utf-8-sig")
        data = content[3:] if content.startswith(b"\xef\xbb\xbf") else content
    except UnicodeDecodeError:
        text = content.decode("gb18030", errors="strict")
        data = text.encode("utf-8")
    del text
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    nl = data.find(b"\n")
    return data[nl + 1 :] if nl >= 0 else b""


def template_xlsx(
    *,
    title: str,
    columns: Mapping[str, str],
    example: Mapping[str, str],
    notes: Sequence[str],
    required: Sequence[str],
    lists: Mapping[str, Sequence[str]] | None = None,
) -> bytes:
    """A template: a header row (required columns marked), an example row, and a notes sheet."""
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    sheet = book.add_worksheet(title[:31])
    head = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    must = book.add_format(
        {"bold": True, "bg_color": "#FCE4D6", "border": 1, "font_color": "#C00000"}
    )
    text = book.add_format({"num_format": "@"})
    for col, (key, label) in enumerate(columns.items()):
        sheet.write_string(0, col, label, must if key in required else head)
        sheet.write_string(1, col, str(example.get(key, "")), text)
        sheet.set_column(col, col, max(12, len(label) * 2 + 2), text)
    sheet.freeze_panes(1, 0)
    info = book.add_worksheet("填写说明")
    info.set_column(0, 0, 100)
    for i, line in enumerate(notes):
        info.write_string(i, 0, line)
    row = len(notes) + 1
    for name, values in (lists or {}).items():
        info.write_string(row, 0, f"{name}：{'、'.join(values)}")
        row += 1
    book.close()
    return out.getvalue()


def template_csv(columns: Mapping[str, str], example: Mapping[str, str]) -> bytes:
    """A CSV template (UTF-8 with BOM so that spreadsheet programs read Chinese headers)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(list(columns.values()))
    writer.writerow([example.get(k, "") for k in columns])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def error_report_xlsx(errors: Sequence[RowError], *, title: str) -> bytes:
    """The row-level error report (行号、列、值、错误代码、错误说明)."""
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "constant_memory": True})
    sheet = book.add_worksheet("错误报告")
    head = book.add_format({"bold": True, "bg_color": "#FCE4D6", "border": 1})
    sheet.write_row(0, 0, ["行号", "列", "值", "错误代码", "错误说明"], head)
    sheet.set_column(0, 0, 8)
    sheet.set_column(1, 3, 22)
    sheet.set_column(4, 4, 60)
    for i, e in enumerate(errors, start=1):
        sheet.write_number(i, 0, e.row)
        sheet.write_string(i, 1, e.column)
        sheet.write_string(i, 2, e.value)
        sheet.write_string(i, 3, e.code)
        sheet.write_string(i, 4, e.message)
    if not errors:
        sheet.write_string(1, 4, f"{title}：全部行校验通过")
    book.close()
    return out.getvalue()

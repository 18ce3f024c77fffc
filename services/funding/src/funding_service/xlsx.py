"""Spreadsheet exports (.xlsx): allocation lists and fund summaries, headers in Chinese, amounts
in yuan, times in Asia/Shanghai."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import xlsxwriter

from funding_service.domain.model import LEVEL_NAMES, Allocation
from funding_service.domain.summary import SummaryRow

SHANGHAI = ZoneInfo("Asia/Shanghai")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _local(moment: datetime | None) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _workbook(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    money: set[int],
    widths: Sequence[int],
) -> bytes:
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True, "constant_memory": True})
    sheet = book.add_worksheet(title)
    head = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    amount = book.add_format({"num_format": "#,##0.00"})
    for col, (header, width) in enumerate(zip(headers, widths, strict=True)):
        sheet.set_column(col, col, width, amount if col in money else None)
        sheet.write_string(0, col, header, head)
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row):
            if c in money and isinstance(value, int):
                sheet.write_number(r, c, value / 100, amount)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                sheet.write_number(r, c, value)
            else:
                sheet.write_string(r, c, "" if value is None else str(value))
    sheet.freeze_panes(1, 0)
    book.close()
    return buf.getvalue()


ALLOCATION_HEADERS = (
    "下达编号", "项目代码", "项目名称", "财政年度", "类型", "下达单位代码", "下达单位",
    "接收单位代码", "接收单位", "接收单位层级", "资金来源", "金额（元）", "文号", "发文日期",
    "下达日期", "备注", "状态", "冲销原因", "录入人", "录入时间",
)  # fmt: skip


def allocations_workbook(allocations: Sequence[Allocation]) -> bytes:
    """The allocation list as a workbook."""
    rows = [
        (
            a.allocation_id,
            a.project_code,
            a.project_name,
            a.fiscal_year,
            a.kind.label,
            a.from_org.code,
            a.from_org.name,
            a.to_org.code,
            a.to_org.name,
            LEVEL_NAMES[a.to_org.level],
            a.source.label,
            a.amount_fen,
            a.document_number,
            a.document_date,
            a.allocated_on,
            a.note,
            a.status.label,
            a.reversal_reason,
            a.entered_by,
            _local(a.entered_at),
        )
        for a in allocations
    ]
    widths = (36, 14, 24, 10, 10, 14, 20, 14, 24, 10, 10, 16, 24, 12, 12, 20, 8, 20, 24, 20)
    return _workbook("资金下达", ALLOCATION_HEADERS, rows, {11}, widths)


SUMMARY_HEADERS = (
    "行类型", "单位代码", "单位名称", "上级下达", "本级安排", "下达下级", "本级结余", "资金合计",
    "到校资金", "已发放", "发放笔数", "结余", "执行率", "超支",
)  # fmt: skip
KIND_LABELS = {
    "total": "合计",
    "direct_schools": "直属学校小计",
    "child_region": "下辖地区",
    "school": "直属学校",
}


def summary_workbook(rows: Sequence[SummaryRow], *, title: str) -> bytes:
    """A fund summary as a workbook."""
    data = [
        (
            KIND_LABELS[r.kind],
            r.org.code if r.org else "",
            r.org.name if r.org else "直属学校小计",
            r.figures.received_fen,
            r.figures.own_contribution_fen,
            r.figures.allocated_down_fen,
            r.figures.retained_fen,
            r.figures.funds_fen,
            r.figures.school_funds_fen,
            r.figures.executed_fen,
            r.figures.executed_count,
            r.figures.balance_fen,
            f"{r.figures.execution_rate_bp / 100:.2f}%",
            "是" if r.figures.overspent else "否",
        )
        for r in rows
    ]
    widths = (12, 14, 28, 16, 16, 16, 16, 16, 16, 16, 10, 16, 10, 6)
    return _workbook(title[:31], SUMMARY_HEADERS, data, {3, 4, 5, 6, 7, 8, 9, 11}, widths)

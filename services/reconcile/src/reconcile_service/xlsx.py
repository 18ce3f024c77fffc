"""Exports as .xlsx: the unfunded list and the statistics view (Chinese headers)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import xlsxwriter

from reconcile_service.domain.groups import GROUP_NAMES, GROUPS, groups_in
from reconcile_service.domain.reasons import ReasonCode
from reconcile_service.repository.entries import EntryRow
from reconcile_service.repository.stats import Cell
from reconcile_service.service.stats import StatsRow

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STAGES = {1: "学前教育", 2: "义务教育", 3: "普通高中", 4: "中职", 5: "本专科", 6: "研究生"}
STATUSES = {1: "未资助", 2: "已资助", 3: "不再纳入"}
KINDS = {1: "合计", 2: "直属学校小计", 3: "下辖地区", 4: "学校"}
LEVEL_NAMES = {1: "国家", 2: "省级", 3: "市级", 4: "县级", 5: "学校"}


def _book() -> tuple[io.BytesIO, xlsxwriter.Workbook]:
    buf = io.BytesIO()
    return buf, xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_numbers": False})


def unfunded_list(
    entries: Sequence[EntryRow], reasons: dict[str, ReasonCode], *, title: str
) -> bytes:
    """One row per entry: student, school, stage, the 13 group flags, status, reasons."""
    buf, book = _book()
    sheet = book.add_worksheet("未资助名单")
    head = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True})
    sheet.merge_range(0, 0, 0, 8, title, book.add_format({"bold": True, "font_size": 14}))
    columns = [
        "序号", "学校标识码", "学校名称", "学段", "年级", "班级", "学生姓名", "身份证件号码",
        *GROUP_NAMES.values(), "来源", "状态", "学校未资助原因", "原因说明", "历史继承",
        "主管部门填报原因",
    ]  # fmt: skip
    sheet.write_row(1, 0, columns, head)
    for i, e in enumerate(entries, start=1):
        flags = ["是" if g in groups_in(e.groups_mask) else "" for g in GROUPS]
        sources = [n for n, m in (("中央下发", e.issued_mask), ("自采集", e.self_mask)) if m]
        school_reason = ""
        if e.reason_code:
            label = reasons[e.reason_code].label if e.reason_code in reasons else ""
            school_reason = f"{e.reason_code} {label}"
        authority = "；".join(
            f"{LEVEL_NAMES.get(a.org_level, '')}{a.org_name}：{a.reason_code}"
            + (f"（{a.note}）" if a.note else "")
            for a in e.authority_reasons
        )
        sheet.write_row(
            i + 1,
            0,
            [
                i, e.school_org_code, e.school_name, STAGES.get(e.stage, ""), e.grade,
                e.class_name, e.student_name, e.id_number_masked, *flags, "、".join(sources),
                STATUSES.get(e.status, ""), school_reason, e.reason_note,
                "是" if e.reason_carried_over else "", authority,
            ],
        )  # fmt: skip
    sheet.freeze_panes(2, 0)
    sheet.autofilter(1, 0, max(1, len(entries) + 1), len(columns) - 1)
    book.close()
    return buf.getvalue()


def stats_view(rows: Sequence[StatsRow], reasons: dict[str, ReasonCode], *, title: str) -> bytes:
    """One row per statistics row; for all groups and each of the 13: students, funded,
    unfunded, reasons reported, pending."""
    buf, book = _book()
    sheet = book.add_worksheet("未资助情况统计")
    head = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "align": "center"})
    sheet.merge_range(0, 0, 0, 6, title, book.add_format({"bold": True, "font_size": 14}))
    metrics = ["特殊群体学生", "已资助", "未资助", "已填报原因", "未填报原因"]
    blocks = [(0, "合计（去重）"), *((g, GROUP_NAMES[g]) for g in GROUPS)]
    sheet.write_row(1, 0, ["类型", "代码", "地区/学校"], head)
    sheet.write_row(2, 0, ["", "", ""], head)
    col = 3
    for _, name in blocks:
        sheet.merge_range(1, col, 1, col + len(metrics) - 1, name, head)
        sheet.write_row(2, col, metrics, head)
        col += len(metrics)
    sheet.write(1, col, "学校填报原因", head)
    sheet.write(1, col + 1, "本级填报原因情况", head)
    for r, row in enumerate(rows, start=3):
        values: list[object] = [KINDS.get(row.kind, ""), row.org_code, row.org_name]
        for g, _ in blocks:
            c: Cell = row.cells.get(g, Cell())
            values += [c.students, c.funded, c.unfunded, c.reported, c.unfunded - c.reported]
        values.append(
            "；".join(
                f"{code} {reasons[code].label if code in reasons else ''}：{n}"
                for code, n in sorted(row.reasons.items())
            )
        )
        values.append(
            "；".join(
                f"{GROUP_NAMES.get(s.special_group, '全部群体')}：{s.reason_code}"
                + (f"（{s.note}）" if s.note else "")
                for s in row.statements
            )
        )
        sheet.write_row(r, 0, values)
    sheet.freeze_panes(3, 3)
    book.close()
    return buf.getvalue()

"""The reason dictionary (未资助原因) and the checks a reported reason must pass."""

from __future__ import annotations

from dataclasses import dataclass

from zizhu_common.errors import InvalidArgument

OTHER = "99"
NOTE_MAX = 500


@dataclass(frozen=True)
class ReasonCode:
    """One dictionary entry; codes are never deleted, only disabled."""

    code: str
    label: str
    description: str = ""
    requires_note: bool = False
    enabled: bool = True
    sort_order: int = 0


# DOMAIN.md §4: the proposed dictionary; the national level edits it as data.
DEFAULT_REASONS: tuple[ReasonCode, ...] = (
    ReasonCode("01", "已享受其他助困类资助", "已获地方、社会或学校助困类资助", sort_order=1),
    ReasonCode("02", "学生或监护人自愿放弃", "本人或监护人书面放弃", sort_order=2),
    ReasonCode("03", "经认定不困难", "家庭经济困难认定为不困难", sort_order=3),
    ReasonCode("04", "已毕业/离校", "本资助周期内已毕业或离校", sort_order=4),
    ReasonCode("05", "休学/退学/转学/死亡", "学籍异动", sort_order=5),
    ReasonCode("06", "在籍不在校", "有学籍但未在校就读", sort_order=6),
    ReasonCode("07", "在外地就读，由就读地资助", "异地就读，由就读地资助", sort_order=7),
    ReasonCode(
        "08", "无对应助困项目或本期未发放", "本学段无对应助困项目或本期未发放", sort_order=8
    ),
    ReasonCode("09", "名额或资金不足，纳入下期", "名额或资金不足，下一资助周期纳入", sort_order=9),
    ReasonCode("10", "身份信息不一致/下发数据有误", "下发名单身份信息与学籍不一致", sort_order=10),
    ReasonCode("11", "享受非现金资助（如减免）", "享受减免等非现金资助", sort_order=11),
    ReasonCode(OTHER, "其他", "其他原因（须填写说明）", requires_note=True, sort_order=99),
)


def check_reason(
    code: str, note: str, dictionary: dict[str, ReasonCode], *, field: str = "reason_code"
) -> tuple[ReasonCode, str]:
    """The dictionary entry and the trimmed note of a report, or InvalidArgument."""
    entry = dictionary.get((code or "").strip())
    if entry is None:
        raise InvalidArgument(
            f"未资助原因代码“{code}”不在原因字典中", code="REASON_CODE_UNKNOWN", field=field
        )
    if not entry.enabled:
        raise InvalidArgument(
            f"未资助原因“{entry.code} {entry.label}”已停用",
            code="REASON_CODE_DISABLED",
            field=field,
        )
    text = (note or "").strip()
    if entry.requires_note and not text:
        raise InvalidArgument(
            f"选择“{entry.label}”时必须填写原因说明", code="REASON_NOTE_REQUIRED", field="note"
        )
    if len(text) > NOTE_MAX:
        raise InvalidArgument(
            f"原因说明不能超过{NOTE_MAX}个字", code="REASON_NOTE_TOO_LONG", field="note"
        )
    return entry, text


def check_dictionary_entry(entry: ReasonCode, *, index: int) -> None:
    """A dictionary edit: two-digit code, a label, and 其他 keeps requiring a note."""
    field = f"reasons[{index}]"
    if not (len(entry.code) == 2 and entry.code.isdigit()):
        raise InvalidArgument(
            "原因代码应为两位数字", code="REASON_CODE_FORMAT", field=f"{field}.code"
        )
    if not entry.label.strip() or len(entry.label) > 60:
        raise InvalidArgument(
            "原因名称不能为空且不超过60个字", code="REASON_LABEL_INVALID", field=f"{field}.label"
        )
    if entry.code == OTHER and not entry.requires_note:
        raise InvalidArgument(
            "“99 其他”必须要求填写说明",
            code="REASON_OTHER_NEEDS_NOTE",
            field=f"{field}.requires_note",
        )


def map_legacy_reason(text: str, dictionary: dict[str, ReasonCode]) -> tuple[str, str]:
    """Map a free-text reason of the retired report to (code, note): an exact label match keeps
    the text out of the note; anything else becomes 99 其他 with the text as the note."""
    value = (text or "").strip()
    for entry in dictionary.values():
        if entry.label == value or (value[:2] == entry.code and value[2:].strip() == entry.label):
            return entry.code, ""
    return OTHER, value or "历史上报原因"

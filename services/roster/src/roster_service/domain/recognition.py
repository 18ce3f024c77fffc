"""Hardship recognition (家庭经济困难学生认定): one level per student and school year, adjusted per
term (动态调整) with the history kept; per-province default levels for special groups. No I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from roster_service.domain.common import (
    GROUP_ALIASES,
    LEVEL_ALIASES,
    TERM_ALIASES,
    HardshipLevel,
    RowError,
    SpecialGroup,
    Term,
    parse_date,
    valid_school_year,
)


@dataclass(slots=True)
class RecognitionEntry:
    """One recorded level (an entry of the history)."""

    recognition_id: int
    student_id: str
    school_year: str
    term: int
    level: int
    version: int

    @property
    def order(self) -> tuple[int, int]:
        """Later terms win; within a term the later entry wins."""
        return (self.term, self.version)


def in_force(entries: Iterable[RecognitionEntry], term: Term | None) -> RecognitionEntry | None:
    """The entry in force for a term of its school year (None: none recorded up to that term);
    term None means the end of the school year."""
    best: RecognitionEntry | None = None
    for e in entries:
        if term is not None and e.term > term:
            continue
        if best is None or e.order > best.order:
            best = e
    return best


def suggested_level(groups: Iterable[int], defaults: Mapping[int, int]) -> HardshipLevel | None:
    """The most severe default level among a student's groups (None when none is configured)."""
    levels = [defaults[g] for g in groups if g in defaults]
    return HardshipLevel(min(levels)) if levels else None


# Recognition import (认定结果模板) columns: field → header.
COLUMNS: dict[str, str] = {
    "id_number": "身份证件号码",
    "student_number": "学籍号",
    "name": "姓名",
    "level": "认定档次",
    "basis_groups": "认定依据（特殊群体类别）",
    "basis_note": "其他认定依据说明",
    "recognized_on": "认定日期",
    "change_reason": "调整原因",
}
COLUMN_ALIASES: dict[str, str] = {
    **{v: k for k, v in COLUMNS.items()},
    **{k: k for k in COLUMNS},
    "身份证号": "id_number",
    "身份证号码": "id_number",
    "全国学籍号": "student_number",
    "学号": "student_number",
    "困难档次": "level",
    "认定等级": "level",
    "认定依据": "basis_groups",
    "特殊群体类别": "basis_groups",
    "认定说明": "basis_note",
}
EXAMPLE_ROW = {
    "id_number": "11010519491231002X",
    "student_number": "G11010519491231002X",
    "name": "张三",
    "level": "特别困难",
    "basis_groups": "低保学生、孤儿学生",
    "basis_note": "",
    "recognized_on": "2024-10-15",
    "change_reason": "",
}


@dataclass(slots=True)
class RecognitionRow:
    """A validated import row (the student is resolved by the service)."""

    row: int
    id_number: str
    student_number: str
    name: str
    level: HardshipLevel
    basis_groups: tuple[int, ...]
    basis_note: str
    recognized_on: str
    change_reason: str


def parse_groups(text: str) -> tuple[tuple[int, ...], list[str]]:
    """Groups from "低保学生、孤儿学生" (、,，;/ separated names or numbers); unknown ones back."""
    parts = [p.strip() for p in _split(text) if p.strip()]
    found: list[int] = []
    unknown: list[str] = []
    for part in parts:
        group = GROUP_ALIASES.get(part) or GROUP_ALIASES.get(part.lower())
        if group is None:
            unknown.append(part)
        elif int(group) not in found:
            found.append(int(group))
    return tuple(found), unknown


def _split(text: str) -> list[str]:
    for sep in "，,;；/|":
        text = text.replace(sep, "、")
    return text.split("、")


def check_level_rules(
    *,
    level: int,
    basis_groups: Sequence[int],
    basis_note: str,
    recognized_on: str,
    change_reason: str,
    previous_level: int | None,
    today: date,
) -> list[tuple[str, str, str]]:
    """Rule violations as (field, code, message)."""
    problems: list[tuple[str, str, str]] = []
    if level not in HardshipLevel.__members__.values():
        problems.append(("level", "LEVEL_REQUIRED", "认定档次应为特别困难、困难、一般困难或不困难"))
    for g in basis_groups:
        if g not in SpecialGroup.__members__.values():
            problems.append(("basis_groups", "GROUP_UNKNOWN", "认定依据中的特殊群体类别不存在"))
            break
    if recognized_on:
        parsed = parse_date(recognized_on)
        if parsed is None:
            problems.append(("recognized_on", "DATE_FORMAT", "认定日期应为YYYY-MM-DD"))
        elif parsed > today:
            problems.append(("recognized_on", "DATE_FUTURE", "认定日期不能晚于今天"))
    if len(basis_note) > 500:
        problems.append(("basis_note", "NOTE_TOO_LONG", "认定依据说明不能超过500字"))
    if previous_level is not None and previous_level != level and not change_reason.strip():
        problems.append(
            ("change_reason", "CHANGE_REASON_REQUIRED", "调整已有认定档次须填写调整原因")
        )
    if len(change_reason) > 500:
        problems.append(("change_reason", "NOTE_TOO_LONG", "调整原因不能超过500字"))
    return problems


def validate_import_row(
    row: int, raw: Mapping[str, str], *, today: date
) -> RecognitionRow | list[RowError]:
    """Check an import row's own fields (the student and previous level are checked later)."""
    errors: list[RowError] = []

    def text(key: str) -> str:
        return (raw.get(key) or "").strip()

    def err(key: str, code: str, message: str) -> None:
        value = text(key)
        if key == "id_number" and len(value) == 18:
            value = value[:6] + "*" * 8 + value[-4:]
        errors.append(RowError(row, COLUMNS[key], value, code, message))

    if not text("id_number") and not text("student_number"):
        err("id_number", "STUDENT_KEY_REQUIRED", "身份证件号码和学籍号不能同时为空")
    level = LEVEL_ALIASES.get(text("level")) or LEVEL_ALIASES.get(text("level").lower())
    if level is None:
        err(
            "level",
            "LEVEL_UNKNOWN" if text("level") else "LEVEL_REQUIRED",
            "认定档次应为特别困难、困难、一般困难或不困难",
        )
    groups, unknown = parse_groups(text("basis_groups"))
    if unknown:
        err("basis_groups", "GROUP_UNKNOWN", f"无法识别的特殊群体类别：{'、'.join(unknown)}")
    on = text("recognized_on")
    recognized_on = ""
    if on:
        parsed = parse_date(on)
        if parsed is None:
            err("recognized_on", "DATE_FORMAT", "认定日期应为YYYY-MM-DD或YYYYMMDD")
        elif parsed > today:
            err("recognized_on", "DATE_FUTURE", "认定日期不能晚于今天")
        else:
            recognized_on = parsed.isoformat()
    if len(text("basis_note")) > 500:
        err("basis_note", "NOTE_TOO_LONG", "其他认定依据说明不能超过500字")
    if errors:
        return errors
    assert level is not None
    return RecognitionRow(
        row=row,
        id_number=text("id_number").upper(),
        student_number=text("student_number").upper(),
        name=text("name"),
        level=level,
        basis_groups=groups,
        basis_note=text("basis_note"),
        recognized_on=recognized_on,
        change_reason=text("change_reason"),
    )


def parse_term(text: str) -> Term | None:
    """A term from 秋季/春季/autumn/spring/1/2."""
    return TERM_ALIASES.get((text or "").strip().lower())


def check_school_year(value: str) -> bool:
    """True for a well-formed school year."""
    return valid_school_year(value)

"""Special groups (十三类特殊群体): issued rows (中央/省级下发), matching a row to the roster,
school verification (核实), self-collected members (自采集), and which memberships count for a
period. No I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import IntEnum
from functools import lru_cache

from zizhu_common.idnumber import IdentifierError, mask_id_number

from roster_service.domain.common import (
    GROUP_NAMES,
    ON_ROLL,
    IdType,
    RowError,
    SpecialGroup,
    parse_date,
    resident_id,
    school_year_range,
)

MAX_ROWS_PER_CHUNK = 5000
MAX_VERIFY = 1000


class IssueMode(IntEnum):
    """全量 or 增量 issue."""

    FULL = 1  # 全量下发
    DELTA = 2  # 增量(变更)下发


class RowAction(IntEnum):
    """What an issued row does."""

    ADD = 1  # 新增
    REMOVE = 2  # 退出


class BatchStatus(IntEnum):
    """Life of an issue batch."""

    RECEIVING = 1  # 接收中
    MATCHING = 2  # 比对中
    COMMITTED = 3  # 已下发
    FAILED = 4  # 失败
    CANCELLED = 5  # 已取消


class MatchStatus(IntEnum):
    """Result of matching an issued row to the roster."""

    PENDING = 1  # 待比对
    MATCHED = 2  # 已匹配
    NOT_FOUND = 3  # 未匹配
    NOT_ENROLLED = 4  # 非在校
    INVALID = 5  # 数据有误
    AMBIGUOUS = 6  # 匹配存疑


class Source(IntEnum):
    """Where a membership comes from."""

    ISSUED = 1  # 中央下发
    SELF_COLLECTED = 2  # 自采集


class Verification(IntEnum):
    """School verification (核实) of a membership."""

    PENDING = 1  # 待核实
    CONFIRMED = 2  # 已核实
    REJECTED = 3  # 核实不符


class MembershipStatus(IntEnum):
    """有效 / 已退出."""

    ACTIVE = 1
    ENDED = 2


class ChangeKind(IntEnum):
    """How a listing changed from the previous batch."""

    ADDED = 1  # 新增
    REMOVED = 2  # 退出
    CHANGED = 3  # 信息变更


MATCH_NOTES = {
    "not_found": "学籍中无此证件号码的学生",
    "outside": "该学生不在下发单位辖区内就读",
    "not_enrolled": "该学生已不在籍（毕业、退学、转出或死亡）",
    "name_mismatch": "证件号码匹配但姓名与学籍不一致",
    "duplicate": "同一批次内重复的证件号码和类别",
}

_REGION = re.compile(r"^\d{6}$")
_OTHER_ID = re.compile(r"^[0-9A-Z()（）-]{5,30}$")
_ID_TYPES = frozenset(int(v) for v in IdType)
_GROUPS = frozenset(int(v) for v in SpecialGroup)
# Plain ints for the per-row checks (a list is checked a million rows at a time).
_RESIDENT_ID = int(IdType.RESIDENT_ID)
_ADD, _REMOVE = int(RowAction.ADD), int(RowAction.REMOVE)


@lru_cache(maxsize=64)
def _year_bounds(school_year: str) -> tuple[str, str]:
    start, end = school_year_range(school_year)
    return start.isoformat(), end.isoformat()


@lru_cache(maxsize=4096)
def _iso_date(text: str) -> str | None:
    """A stripped date text as YYYY-MM-DD, None when it is not a date (lists repeat a few
    validity dates over millions of rows)."""
    parsed = parse_date(text)
    return parsed.isoformat() if parsed is not None else None


@dataclass(slots=True)
class IssuedRowInput:
    """One issued row as received (strings; enums as ints, 0 = unset)."""

    id_type: int
    id_number: str
    name: str
    group: int
    action: int
    household_region_code: str
    valid_from: str
    valid_to: str


@dataclass(slots=True)
class CheckedIssuedRow:
    """An issued row after the checks that need no lookup; INVALID rows keep their reason."""

    row_number: int
    id_type: int
    id_number: str  # normalised; "" when unusable
    id_number_masked: str
    name: str
    group: int
    action: int
    household_region_code: str
    valid_from: str
    valid_to: str
    error: RowError | None


def check_issued_row(
    row_number: int,
    raw: IssuedRowInput,
    *,
    groups: frozenset[int],
    mode: IssueMode,
    school_year: str,
) -> CheckedIssuedRow:
    """Validate an issued row; a bad one is kept as INVALID with the first reason found."""
    id_type = raw.id_type or _RESIDENT_ID
    number = (raw.id_number or "").strip().upper()
    error: RowError | None = None

    def fail(column: str, value: str, code: str, message: str) -> None:
        nonlocal error
        if error is None:
            error = RowError(row_number, column, value, code, message)

    if id_type not in _ID_TYPES:
        fail("id_type", str(raw.id_type), "ID_TYPE_UNKNOWN", "证件类型不在代码表中")
    if not number:
        fail("id_number", "", "ID_NUMBER_REQUIRED", "证件号码不能为空")
    elif id_type == _RESIDENT_ID:
        try:
            number = resident_id(number).number
        except IdentifierError as exc:
            fail("id_number", mask_id_number(number), exc.code, exc.message)
            number = ""
    elif not _OTHER_ID.match(number):
        fail("id_number", mask_id_number(number), "ID_NUMBER_FORMAT", "证件号码格式错误")
        number = ""
    name = (raw.name or "").strip()
    if not name:
        fail("name", "", "NAME_REQUIRED", "姓名不能为空")
    elif len(name) > 50:
        fail("name", name[:50], "NAME_TOO_LONG", "姓名不能超过50个字")
    if raw.group not in groups:
        fail(
            "group",
            str(raw.group),
            "GROUP_NOT_IN_BATCH",
            "特殊群体类别不在本批次的类别中",
        )
    action = raw.action or _ADD
    if mode == IssueMode.FULL:
        if action != _ADD:
            fail("action", str(raw.action), "ACTION_IN_FULL_BATCH", "全量下发批次只能包含新增行")
        action = _ADD
    elif not raw.action:
        fail("action", "", "ACTION_REQUIRED", "增量下发的每行须指明新增或退出")
    elif action not in (_ADD, _REMOVE):
        fail("action", str(raw.action), "ACTION_UNKNOWN", "变更类型应为新增或退出")
    region = (raw.household_region_code or "").strip()
    if region and not _REGION.match(region):
        fail("household_region_code", region, "REGION_CODE_FORMAT", "户籍地应为6位行政区划代码")
    year_start, year_end = _year_bounds(school_year)
    dates = ["", ""]
    if raw.valid_from or raw.valid_to:  # most lists leave both to the school year
        for i, column, value in ((0, "valid_from", raw.valid_from), (1, "valid_to", raw.valid_to)):
            text = (value or "").strip()
            if not text:
                continue
            iso = _iso_date(text)
            if iso is None:
                fail(column, text, "DATE_FORMAT", "日期应为YYYY-MM-DD或YYYYMMDD")
            else:
                dates[i] = iso
    valid_from = dates[0] or year_start
    valid_to = dates[1]
    if valid_to and valid_to < valid_from:
        fail("valid_to", valid_to, "VALID_TO_BEFORE_FROM", "有效期止早于有效期起")
    if valid_from > year_end or (valid_to and valid_to < year_start):
        fail("valid_from", valid_from, "VALIDITY_OUTSIDE_YEAR", f"有效期不在{school_year}学年内")
    return CheckedIssuedRow(  # positionally: a million rows a list
        row_number,
        int(id_type),
        number if error is None or number else "",
        mask_id_number(number or (raw.id_number or "").strip().upper()),
        name[:50],
        raw.group if raw.group in _GROUPS else 0,
        action if action in (_ADD, _REMOVE) else _ADD,
        region if region and _REGION.match(region) else "",
        valid_from,
        valid_to,
        error,
    )


@dataclass(slots=True)
class MatchInfo:
    """What matching needs of a student: name and current enrolment."""

    student_id: str
    name: str
    school_org_code: str
    school_org_path: str
    stage: int
    status: int


def match_result(hit: MatchInfo | None, name: str, territory: str) -> tuple[MatchStatus, str]:
    """How an issued row matches the roster: a student enrolled (在籍) in the issuer's territory
    under the same name; otherwise why not."""
    if hit is None:
        return MatchStatus.NOT_FOUND, MATCH_NOTES["not_found"]
    if not hit.school_org_path.startswith(territory):
        return MatchStatus.NOT_FOUND, MATCH_NOTES["outside"]
    if hit.status not in ON_ROLL:
        return MatchStatus.NOT_ENROLLED, MATCH_NOTES["not_enrolled"]
    if hit.name != name:
        return MatchStatus.AMBIGUOUS, MATCH_NOTES["name_mismatch"]
    return MatchStatus.MATCHED, ""


def counts_for_period(
    *,
    status: int,
    verification: int,
    valid_from: str,
    valid_to: str,
    ended_on: str,
    lo: date,
    hi: date,
) -> bool:
    """True when a membership counts for a period [lo, hi]: not rejected by the school, valid
    during it, and not ended before it began."""
    if verification == Verification.REJECTED:
        return False
    if valid_from and valid_from > hi.isoformat():
        return False
    if valid_to and valid_to < lo.isoformat():
        return False
    if status == MembershipStatus.ENDED and (not ended_on or ended_on < lo.isoformat()):
        return False
    return True


def group_label(group: int) -> str:
    """Chinese name of a group (or its number when unknown)."""
    try:
        return GROUP_NAMES[SpecialGroup(group)]
    except ValueError:
        return str(group)

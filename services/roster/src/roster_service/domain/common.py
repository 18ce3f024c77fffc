"""Vocabulary shared by the roster's domain: enums (values equal the contract's), dates, school
years and terms, row errors and ids. No I/O."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import IntEnum
from operator import mul
from zoneinfo import ZoneInfo

from zizhu_common.idnumber import ResidentId, parse_resident_id

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Stage(IntEnum):
    """Education stage (学段)."""

    PRESCHOOL = 1  # 学前教育
    COMPULSORY = 2  # 义务教育
    GENERAL_HIGH_SCHOOL = 3  # 普通高中
    SECONDARY_VOCATIONAL = 4  # 中等职业教育
    UNDERGRADUATE = 5  # 本专科
    POSTGRADUATE = 6  # 研究生


STAGE_NAMES = {
    Stage.PRESCHOOL: "学前教育",
    Stage.COMPULSORY: "义务教育",
    Stage.GENERAL_HIGH_SCHOOL: "普通高中",
    Stage.SECONDARY_VOCATIONAL: "中职",
    Stage.UNDERGRADUATE: "本专科",
    Stage.POSTGRADUATE: "研究生",
}
STAGE_ALIASES: dict[str, Stage] = {
    **{s.name.lower(): s for s in Stage},
    **{str(s.value): s for s in Stage},
    **{v: k for k, v in STAGE_NAMES.items()},
    "学前": Stage.PRESCHOOL,
    "幼儿园": Stage.PRESCHOOL,
    "义务": Stage.COMPULSORY,
    "小学": Stage.COMPULSORY,
    "初中": Stage.COMPULSORY,
    "高中": Stage.GENERAL_HIGH_SCHOOL,
    "普高": Stage.GENERAL_HIGH_SCHOOL,
    "中等职业教育": Stage.SECONDARY_VOCATIONAL,
    "本科": Stage.UNDERGRADUATE,
    "专科": Stage.UNDERGRADUATE,
    "高等教育": Stage.UNDERGRADUATE,
    "preschool": Stage.PRESCHOOL,
    "compulsory": Stage.COMPULSORY,
    "general_high_school": Stage.GENERAL_HIGH_SCHOOL,
    "secondary_vocational": Stage.SECONDARY_VOCATIONAL,
    "undergraduate": Stage.UNDERGRADUATE,
    "postgraduate": Stage.POSTGRADUATE,
}
K12_STAGES = frozenset(
    {Stage.PRESCHOOL, Stage.COMPULSORY, Stage.GENERAL_HIGH_SCHOOL, Stage.SECONDARY_VOCATIONAL}
)


class Gender(IntEnum):
    """性别."""

    MALE = 1  # 男
    FEMALE = 2  # 女


GENDER_ALIASES = {
    "男": Gender.MALE,
    "1": Gender.MALE,
    "m": Gender.MALE,
    "male": Gender.MALE,
    "女": Gender.FEMALE,
    "2": Gender.FEMALE,
    "f": Gender.FEMALE,
    "female": Gender.FEMALE,
}
GENDER_NAMES = {Gender.MALE: "男", Gender.FEMALE: "女"}


class IdType(IntEnum):
    """证件类型; GB 11643 checks apply to RESIDENT_ID only."""

    RESIDENT_ID = 1  # 居民身份证
    HK_MACAO_RESIDENCE_PERMIT = 2  # 港澳居民居住证
    TAIWAN_RESIDENCE_PERMIT = 3  # 台湾居民居住证
    FOREIGNER_PERMANENT_RESIDENCE = 4  # 外国人永久居留身份证
    PASSPORT = 5  # 护照
    OTHER = 6  # 其他


ID_TYPE_ALIASES: dict[str, IdType] = {
    "": IdType.RESIDENT_ID,
    "1": IdType.RESIDENT_ID,
    "居民身份证": IdType.RESIDENT_ID,
    "身份证": IdType.RESIDENT_ID,
    "2": IdType.HK_MACAO_RESIDENCE_PERMIT,
    "港澳居民居住证": IdType.HK_MACAO_RESIDENCE_PERMIT,
    "3": IdType.TAIWAN_RESIDENCE_PERMIT,
    "台湾居民居住证": IdType.TAIWAN_RESIDENCE_PERMIT,
    "4": IdType.FOREIGNER_PERMANENT_RESIDENCE,
    "外国人永久居留身份证": IdType.FOREIGNER_PERMANENT_RESIDENCE,
    "5": IdType.PASSPORT,
    "护照": IdType.PASSPORT,
    "6": IdType.OTHER,
    "其他": IdType.OTHER,
}


class HouseholdType(IntEnum):
    """户口性质."""

    RURAL = 1  # 农村户口
    URBAN = 2  # 城镇户口


HOUSEHOLD_ALIASES = {
    "农村": HouseholdType.RURAL,
    "农业": HouseholdType.RURAL,
    "农村户口": HouseholdType.RURAL,
    "1": HouseholdType.RURAL,
    "城镇": HouseholdType.URBAN,
    "非农业": HouseholdType.URBAN,
    "城镇户口": HouseholdType.URBAN,
    "2": HouseholdType.URBAN,
}


class StudentStatus(IntEnum):
    """学籍状态 of an enrolment."""

    IN_SCHOOL = 1  # 在籍在校
    REGISTERED_ABSENT = 2  # 在籍不在校
    SUSPENDED = 3  # 休学
    DROPPED_OUT = 4  # 退学
    GRADUATED = 5  # 毕业
    TRANSFERRED_OUT = 6  # 转出
    DECEASED = 7  # 死亡


STATUS_NAMES = {
    StudentStatus.IN_SCHOOL: "在籍",
    StudentStatus.REGISTERED_ABSENT: "在籍不在校",
    StudentStatus.SUSPENDED: "休学",
    StudentStatus.DROPPED_OUT: "退学",
    StudentStatus.GRADUATED: "毕业",
    StudentStatus.TRANSFERRED_OUT: "转学",
    StudentStatus.DECEASED: "死亡",
}
STATUS_ALIASES: dict[str, StudentStatus] = {
    **{v: k for k, v in STATUS_NAMES.items()},
    **{str(s.value): s for s in StudentStatus},
    **{s.name.lower(): s for s in StudentStatus},
    "在校": StudentStatus.IN_SCHOOL,
    "在籍在校": StudentStatus.IN_SCHOOL,
    "转出": StudentStatus.TRANSFERRED_OUT,
    "已毕业": StudentStatus.GRADUATED,
}
# Statuses under which the student still holds a 学籍 at the school (在籍).
ON_ROLL = frozenset(
    {StudentStatus.IN_SCHOOL, StudentStatus.REGISTERED_ABSENT, StudentStatus.SUSPENDED}
)
# Statuses that end an enrolment: they need the date they took effect.
LEAVING = frozenset(
    {
        StudentStatus.DROPPED_OUT,
        StudentStatus.GRADUATED,
        StudentStatus.TRANSFERRED_OUT,
        StudentStatus.DECEASED,
    }
)


class SpecialGroup(IntEnum):
    """The 13 special groups of V3.3.2 (十三类特殊群体)."""

    POVERTY_ALLEVIATED = 1  # 脱贫家庭学生
    UNSTABLE_POST_POVERTY = 2  # 脱贫不稳定家庭学生
    NEAR_POVERTY = 3  # 边缘易致贫家庭学生
    SUDDEN_SEVERE_HARDSHIP = 4  # 突发严重困难家庭学生
    DIBAO = 5  # 低保学生
    EXTREME_POVERTY_SUPPORT = 6  # 特困救助学生
    ORPHAN = 7  # 孤儿学生
    DISABLED = 8  # 残疾学生
    CHILD_OF_DISABLED = 9  # 残疾人子女
    DE_FACTO_UNSUPPORTED = 10  # 事实无人抚养儿童
    DIBAO_EDGE = 11  # 低保边缘学生
    RIGID_EXPENDITURE = 12  # 支出型(刚性支出)困难家庭学生
    OTHER_LOW_INCOME = 13  # 其他低收入家庭学生


GROUP_NAMES = {
    SpecialGroup.POVERTY_ALLEVIATED: "脱贫家庭学生",
    SpecialGroup.UNSTABLE_POST_POVERTY: "脱贫不稳定家庭学生",
    SpecialGroup.NEAR_POVERTY: "边缘易致贫家庭学生",
    SpecialGroup.SUDDEN_SEVERE_HARDSHIP: "突发严重困难家庭学生",
    SpecialGroup.DIBAO: "低保学生",
    SpecialGroup.EXTREME_POVERTY_SUPPORT: "特困救助学生",
    SpecialGroup.ORPHAN: "孤儿学生",
    SpecialGroup.DISABLED: "残疾学生",
    SpecialGroup.CHILD_OF_DISABLED: "残疾人子女",
    SpecialGroup.DE_FACTO_UNSUPPORTED: "事实无人抚养儿童",
    SpecialGroup.DIBAO_EDGE: "低保边缘学生",
    SpecialGroup.RIGID_EXPENDITURE: "支出型困难家庭学生",
    SpecialGroup.OTHER_LOW_INCOME: "其他低收入家庭学生",
}
GROUP_ALIASES: dict[str, SpecialGroup] = {
    **{v: k for k, v in GROUP_NAMES.items()},
    **{v.removesuffix("学生"): k for k, v in GROUP_NAMES.items()},
    **{str(g.value): g for g in SpecialGroup},
    **{f"{g.value:02d}": g for g in SpecialGroup},
    **{g.name.lower(): g for g in SpecialGroup},
    "建档立卡": SpecialGroup.POVERTY_ALLEVIATED,
    "低保": SpecialGroup.DIBAO,
    "孤儿": SpecialGroup.ORPHAN,
    "特困": SpecialGroup.EXTREME_POVERTY_SUPPORT,
    "残疾": SpecialGroup.DISABLED,
    "支出型(刚性支出)困难家庭学生": SpecialGroup.RIGID_EXPENDITURE,
}


class HardshipLevel(IntEnum):
    """困难认定档次; lower is more severe."""

    SPECIAL = 1  # 特别困难
    DIFFICULT = 2  # 困难
    GENERAL = 3  # 一般困难
    NOT_DIFFICULT = 4  # 不困难


LEVEL_NAMES = {
    HardshipLevel.SPECIAL: "特别困难",
    HardshipLevel.DIFFICULT: "困难",
    HardshipLevel.GENERAL: "一般困难",
    HardshipLevel.NOT_DIFFICULT: "不困难",
}
LEVEL_ALIASES: dict[str, HardshipLevel] = {
    **{v: k for k, v in LEVEL_NAMES.items()},
    **{str(x.value): x for x in HardshipLevel},
    **{x.name.lower(): x for x in HardshipLevel},
    "特殊困难": HardshipLevel.SPECIAL,
    "比较困难": HardshipLevel.DIFFICULT,
}


class Term(IntEnum):
    """学期: autumn opens the school year, spring closes it."""

    AUTUMN = 1  # 秋季学期
    SPRING = 2  # 春季学期


TERM_NAMES = {Term.AUTUMN: "秋季学期", Term.SPRING: "春季学期"}
TERM_ALIASES = {
    "秋季": Term.AUTUMN,
    "秋季学期": Term.AUTUMN,
    "autumn": Term.AUTUMN,
    "1": Term.AUTUMN,
    "春季": Term.SPRING,
    "春季学期": Term.SPRING,
    "spring": Term.SPRING,
    "2": Term.SPRING,
}


@dataclass(frozen=True, slots=True)
class RowError:
    """One refused row as a user sees it: row, column, value (masked if personal), code, why."""

    row: int
    column: str
    value: str
    code: str
    message: str


# ---------------------------------------------------------------------------------------------
# Dates, school years and terms (Asia/Shanghai)
# ---------------------------------------------------------------------------------------------

_DATE_FORMS = (
    re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
    re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"),
    re.compile(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日$"),
)
_SCHOOL_YEAR = re.compile(r"^(\d{4})-(\d{4})$")


def parse_date(text: str) -> date | None:
    """A calendar date from YYYY-MM-DD, YYYYMMDD, YYYY/MM/DD or 2024年9月1日; None if malformed."""
    value = (text or "").strip()
    if " " in value:  # spreadsheet date-times: "2024-09-01 00:00:00"
        value = value.split(" ", 1)[0]
    for form in _DATE_FORMS:
        m = form.match(value)
        if m:
            try:
                return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                return None
    return None


def today() -> date:
    """Today's date in Asia/Shanghai."""
    return datetime.now(SHANGHAI).date()


def school_year_of(day: date) -> str:
    """The school year containing a date: September opens it ("2024-2025" from 2024-09-01)."""
    start = day.year if day.month >= 9 else day.year - 1
    return f"{start}-{start + 1}"


def term_of(day: date) -> Term:
    """The term containing a date: autumn Sep–Jan, spring Feb–Aug."""
    return Term.AUTUMN if day.month >= 9 or day.month == 1 else Term.SPRING


def valid_school_year(text: str) -> bool:
    """True for "YYYY-YYYY" with consecutive years."""
    m = _SCHOOL_YEAR.match(text or "")
    return bool(m) and int(m.group(2)) == int(m.group(1)) + 1 and 1990 <= int(m.group(1)) <= 2100


def school_year_range(school_year: str) -> tuple[date, date]:
    """First and last day of a school year (1 September to 31 August)."""
    start = int(school_year[:4])
    return date(start, 9, 1), date(start + 1, 8, 31)


def term_range(school_year: str, term: Term) -> tuple[date, date]:
    """First and last day of a term: autumn 1 Sep–31 Jan, spring 1 Feb–31 Aug (the summer
    belongs to spring, whose entry deadline is 31 July)."""
    start = int(school_year[:4])
    if term == Term.AUTUMN:
        return date(start, 9, 1), date(start + 1, 1, 31)
    return date(start + 1, 2, 1), date(start + 1, 8, 31)


def iso(day: date | None) -> str:
    """YYYY-MM-DD, or "" for None."""
    return day.isoformat() if day else ""


def overlaps(start: str, end: str, lo: date, hi: date) -> bool:
    """True when [start, end] (ISO dates, empty = open) overlaps [lo, hi]."""
    return (not start or start <= hi.isoformat()) and (not end or end >= lo.isoformat())


def day_after(day: date) -> date:
    """The next calendar day."""
    return day + timedelta(days=1)


# ---------------------------------------------------------------------------------------------
# Identifiers
# ---------------------------------------------------------------------------------------------

_counter = int.from_bytes(os.urandom(3), "big")


def new_id(prefix: str = "") -> str:
    """A roughly time-ordered 24-hex id (ms timestamp, process-random, counter): index friendly."""
    global _counter
    _counter = (_counter + 1) & 0xFFFFFF
    return f"{prefix}{int(time.time() * 1000):012x}{_PROCESS_TAG}{_counter:06x}"


_PROCESS_TAG = os.urandom(3).hex()


def mask_name(name: str) -> str:
    """A name for lists shown beyond the school: the first character and asterisks."""
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID18_SHAPE = re.compile(r"^\d{17}[\dX]$")
_MIN_BIRTH = date(1900, 1, 1)
_ID_ASCII_OFFSET = 48 * sum(_ID_WEIGHTS)
_today_at: tuple[float, date] = (float("-inf"), _MIN_BIRTH)


def _today_cached() -> date:
    """date.today(), read again at most once a second (a bulk check calls it for every row)."""
    global _today_at
    now = time.monotonic()
    if now - _today_at[0] >= 1.0:
        _today_at = (now, date.today())
    return _today_at[1]


def resident_id(number: str) -> ResidentId:
    """`parse_resident_id` (same result, same errors) with a quick path for the usual case of a
    well-formed 18-character number: bulk paths check hundreds of thousands of them."""
    if len(number) == 18 and _ID18_SHAPE.match(number):
        # The digits' ASCII codes are each 48 over their value (17 int() calls cost more).
        total = sum(map(mul, number[:17].encode(), _ID_WEIGHTS)) - _ID_ASCII_OFFSET
        if "10X98765432"[total % 11] == number[17]:
            try:
                born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
            except ValueError:
                born = None
            if born is not None and _MIN_BIRTH <= born <= _today_cached():
                return ResidentId(
                    number, number[:6], born, "male" if int(number[16]) % 2 else "female"
                )
    return parse_resident_id(number)

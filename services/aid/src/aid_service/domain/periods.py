"""Aid periods (资助周期 = school year + term) and the deadlines of seed 000 article 17.

Dates are calendar dates in Asia/Shanghai; instants are aware UTC datetimes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from zizhu_common.errors import InvalidArgument

from aid_service.domain.enums import PeriodStatus, Term

TZ = ZoneInfo("Asia/Shanghai")
_SCHOOL_YEAR = re.compile(r"^(\d{4})-(\d{4})$")


def parse_school_year(value: str, *, field: str = "period.school_year") -> tuple[int, int]:
    """(first, second) calendar years of a school year "YYYY-YYYY" with second = first + 1."""
    match = _SCHOOL_YEAR.match((value or "").strip())
    if not match or int(match.group(2)) != int(match.group(1)) + 1:
        raise InvalidArgument(
            f"学年格式应为“2024-2025”（后一年比前一年大1），收到“{value}”",
            code="SCHOOL_YEAR_INVALID",
            field=field,
        )
    first = int(match.group(1))
    if not 2000 <= first <= 2100:
        raise InvalidArgument(f"学年“{value}”超出合理范围", code="SCHOOL_YEAR_INVALID", field=field)
    return first, first + 1


def parse_term(value: int, *, field: str = "period.term") -> Term:
    """A term from its contract number; refuses UNSPECIFIED."""
    try:
        return Term(value)
    except ValueError:
        raise InvalidArgument("学期须为秋季或春季", code="TERM_INVALID", field=field) from None


def parse_date(value: str, *, field: str) -> date:
    """A calendar date "YYYY-MM-DD"."""
    try:
        return date.fromisoformat((value or "").strip())
    except ValueError:
        raise InvalidArgument(
            f"日期格式应为YYYY-MM-DD，收到“{value}”", code="DATE_INVALID", field=field
        ) from None


@dataclass(frozen=True, order=True)
class AidPeriod:
    """School year + term, e.g. 2024-2025 秋季学期."""

    school_year: str
    term: Term

    @classmethod
    def parse(cls, school_year: str, term: int, *, field: str = "period") -> AidPeriod:
        """A validated period from contract fields."""
        parse_school_year(school_year, field=f"{field}.school_year")
        return cls(school_year.strip(), parse_term(term, field=f"{field}.term"))

    @property
    def label(self) -> str:
        """e.g. "2024-2025学年秋季学期"."""
        return f"{self.school_year}学年{self.term.label}"

    @property
    def key(self) -> str:
        """Compact key used in ids and caches, e.g. "2024-2025/1"."""
        return f"{self.school_year}/{int(self.term)}"

    def default_dates(self) -> tuple[date, date, date]:
        """(starts_on, ends_on, deadline_on): autumn Sep 1 – Jan 31, spring Feb 1 – Jul 31; the
        deadline of 第十七条 is the last day of the term (31 January / 31 July)."""
        first, second = parse_school_year(self.school_year)
        if self.term is Term.AUTUMN:
            return date(first, 9, 1), date(second, 1, 31), date(second, 1, 31)
        return date(second, 2, 1), date(second, 7, 31), date(second, 7, 31)


def current_period(now: datetime) -> AidPeriod:
    """The term containing an instant in Beijing (autumn Sep–Jan, with August counted as the coming
    autumn; spring Feb–Jul): the default period of reads that name none."""
    d = now.astimezone(TZ).date()
    if d.month >= 8:
        return AidPeriod(f"{d.year}-{d.year + 1}", Term.AUTUMN)
    if d.month == 1:
        return AidPeriod(f"{d.year - 1}-{d.year}", Term.AUTUMN)
    return AidPeriod(f"{d.year - 1}-{d.year}", Term.SPRING)


def start_of_day(day: date) -> datetime:
    """00:00 of a calendar day in Asia/Shanghai, as UTC."""
    return datetime.combine(day, time(0, 0), tzinfo=TZ).astimezone(UTC)


def end_of_day(day: date) -> datetime:
    """24:00 of a calendar day in Asia/Shanghai (the next day's 00:00), as UTC."""
    return start_of_day(day + timedelta(days=1))


def local_text(instant: datetime) -> str:
    """An instant as shown to users: "2025-01-31 24:00" style local time (Asia/Shanghai)."""
    local = instant.astimezone(TZ)
    if local.time() == time(0, 0):
        return f"{(local.date() - timedelta(days=1)).isoformat()} 24:00"
    return local.strftime("%Y-%m-%d %H:%M")


@dataclass
class Period:
    """An aid period as opened by the nation, with its dates."""

    period: AidPeriod
    status: PeriodStatus
    starts_on: date
    ends_on: date
    deadline_on: date
    opened_at: datetime | None = None
    closed_at: datetime | None = None
    opened_by: str = ""

    @property
    def is_open(self) -> bool:
        """True while entries and audits are possible at all."""
        return self.status is PeriodStatus.OPEN


def plan_period(
    period: AidPeriod, *, starts_on: str = "", ends_on: str = "", deadline_on: str = ""
) -> tuple[date, date, date]:
    """The dates of a period to open: given ones, or the term's defaults; checked for order."""
    d_start, d_end, d_deadline = period.default_dates()
    start = parse_date(starts_on, field="starts_on") if starts_on else d_start
    end = parse_date(ends_on, field="ends_on") if ends_on else d_end
    deadline = parse_date(deadline_on, field="deadline_on") if deadline_on else d_deadline
    if end < start:
        raise InvalidArgument(
            "结束日期不能早于开始日期", code="PERIOD_DATES_INVALID", field="ends_on"
        )
    if deadline < start:
        raise InvalidArgument(
            "填报截止日期不能早于开始日期", code="PERIOD_DATES_INVALID", field="deadline_on"
        )
    return start, end, deadline

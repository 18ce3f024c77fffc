"""Aid periods (资助周期): school year + term, their dates, deadlines and fiscal year."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from zizhu_common.errors import InvalidArgument

SHANGHAI = ZoneInfo("Asia/Shanghai")
AUTUMN, SPRING = 1, 2
TERM_NAMES = {AUTUMN: "秋季学期", SPRING: "春季学期"}
_SCHOOL_YEAR = re.compile(r"^(\d{4})-(\d{4})$")


@dataclass(frozen=True, order=True)
class Period:
    """A school year ("2024-2025") and a term (1 autumn 秋季, 2 spring 春季)."""

    school_year: str
    term: int

    @classmethod
    def parse(cls, school_year: str, term: int, *, field: str = "period") -> Period:
        """Validate a period given by a caller (InvalidArgument naming the field)."""
        m = _SCHOOL_YEAR.match(school_year or "")
        if not m or int(m.group(2)) != int(m.group(1)) + 1:
            raise InvalidArgument(
                "学年格式应为“YYYY-YYYY”且后一年等于前一年加一，如“2024-2025”",
                code="SCHOOL_YEAR_INVALID",
                field=f"{field}.school_year",
            )
        if term not in (AUTUMN, SPRING):
            raise InvalidArgument(
                "学期应为秋季学期或春季学期", code="TERM_INVALID", field=f"{field}.term"
            )
        return cls(school_year, term)

    @property
    def first_year(self) -> int:
        """The calendar year the school year starts in."""
        return int(self.school_year[:4])

    @property
    def label(self) -> str:
        """e.g. "2024-2025学年秋季学期"."""
        return f"{self.school_year}学年{TERM_NAMES.get(self.term, '')}"

    def default_starts_on(self) -> date:
        """Autumn opens on Sep 1, spring on Feb 1 of the following calendar year."""
        return (
            date(self.first_year, 9, 1) if self.term == AUTUMN else date(self.first_year + 1, 2, 1)
        )

    def default_ends_on(self) -> date:
        """Autumn runs to Jan 31 of the next year, spring to Jul 31."""
        return (
            date(self.first_year + 1, 1, 31)
            if self.term == AUTUMN
            else date(self.first_year + 1, 7, 31)
        )

    def default_deadline_on(self) -> date:
        """第十七条: autumn entry and audit done by Jan 31 of the next year, spring by Jul 31."""
        return self.default_ends_on()

    @property
    def fiscal_year(self) -> str:
        """The budget year the period's spending falls in (autumn: the first year)."""
        return str(self.first_year if self.term == AUTUMN else self.first_year + 1)


@dataclass(frozen=True)
class PeriodDates:
    """Start, end and reporting deadline of a period as aid published them (or the defaults)."""

    period: Period
    starts_on: date
    ends_on: date
    deadline_on: date

    @classmethod
    def of(
        cls, period: Period, *, starts_on: str = "", ends_on: str = "", deadline_on: str = ""
    ) -> PeriodDates:
        """Dates from event strings, falling back to the term's defaults."""
        return cls(
            period,
            parse_date(starts_on) or period.default_starts_on(),
            parse_date(ends_on) or period.default_ends_on(),
            parse_date(deadline_on) or period.default_deadline_on(),
        )

    def as_of(self, today: date) -> date:
        """The day whose state the comparison reflects: today, or the period's end once past."""
        return min(max(today, self.starts_on), self.ends_on)

    def deadline_passed(self, now: datetime) -> bool:
        """True after 24:00 of the deadline day in Asia/Shanghai."""
        end = datetime.combine(self.deadline_on + timedelta(days=1), time(0), tzinfo=SHANGHAI)
        return now.astimezone(SHANGHAI) >= end


def parse_date(value: str | None) -> date | None:
    """A YYYY-MM-DD string (or YYYYMMDD) as a date; None when empty or malformed."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        if len(text) == 8 and text.isdigit():
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def shanghai_today(now: datetime) -> date:
    """The calendar date in Asia/Shanghai at an instant."""
    return now.astimezone(SHANGHAI).date()


def next_daily_slot(now: datetime, *, hour: int = 2, minute: int = 0) -> datetime:
    """The next hh:mm Asia/Shanghai strictly after now, as an aware UTC datetime."""
    local = now.astimezone(SHANGHAI)
    candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate.astimezone(UTC)


def latest_daily_slot(now: datetime, *, hour: int = 2, minute: int = 0) -> datetime:
    """The latest hh:mm Asia/Shanghai at or before now, as an aware UTC datetime."""
    return next_daily_slot(now, hour=hour, minute=minute) - timedelta(days=1)


def slot_name(slot: datetime) -> str:
    """A slot's stable name, e.g. "2026-11-23T02:00+08:00"."""
    return slot.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M+08:00")

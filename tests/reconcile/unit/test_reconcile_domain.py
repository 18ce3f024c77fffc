"""Reconcile's domain rules without I/O: periods and deadlines, the 02:00 slot, the 13-group
masks, reason checks, finding life cycle, statistics rows."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from reconcile_service.domain import groups, reasons, rules, scope
from reconcile_service.domain.periods import (
    AUTUMN,
    SPRING,
    Period,
    PeriodDates,
    latest_daily_slot,
    next_daily_slot,
    slot_name,
)
from zizhu_common.errors import InvalidArgument

DICT = {r.code: r for r in reasons.DEFAULT_REASONS}


def test_period_defaults_follow_article_17_and_fiscal_year_follows_the_calendar() -> None:
    autumn = Period("2024-2025", AUTUMN)
    spring = Period("2024-2025", SPRING)
    assert (autumn.default_starts_on(), autumn.default_deadline_on()) == (
        date(2024, 9, 1),
        date(2025, 1, 31),
    )
    assert (spring.default_starts_on(), spring.default_deadline_on()) == (
        date(2025, 2, 1),
        date(2025, 7, 31),
    )
    assert (autumn.fiscal_year, spring.fiscal_year) == ("2024", "2025")
    assert autumn.label == "2024-2025学年秋季学期"


@pytest.mark.parametrize(
    ("school_year", "term", "code"),
    [
        ("2024", 1, "SCHOOL_YEAR_INVALID"),
        ("2024-2026", 1, "SCHOOL_YEAR_INVALID"),
        ("2024-2025", 3, "TERM_INVALID"),
    ],
)
def test_malformed_periods_are_refused_with_the_field(
    school_year: str, term: int, code: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        Period.parse(school_year, term)
    assert err.value.code == code and err.value.field.startswith("period.")


def test_deadline_ends_at_midnight_shanghai_and_as_of_stays_in_the_period() -> None:
    dates = PeriodDates.of(Period("2024-2025", AUTUMN), deadline_on="2025-01-25")
    assert not dates.deadline_passed(datetime(2025, 1, 25, 15, 59, 59, tzinfo=UTC))
    assert dates.deadline_passed(datetime(2025, 1, 25, 16, 0, tzinfo=UTC))
    assert dates.as_of(date(2024, 8, 1)) == date(2024, 9, 1)
    assert dates.as_of(date(2024, 11, 2)) == date(2024, 11, 2)
    assert dates.as_of(date(2025, 6, 1)) == date(2025, 1, 31)


def test_the_daily_slot_is_0200_in_shanghai() -> None:
    before = datetime(2024, 11, 20, 17, 59, tzinfo=UTC)  # 01:59 on the 21st in Shanghai
    after = datetime(2024, 11, 20, 18, 0, tzinfo=UTC)  # 02:00
    assert slot_name(next_daily_slot(before)) == "2024-11-21T02:00+08:00"
    assert slot_name(latest_daily_slot(before)) == "2024-11-20T02:00+08:00"
    assert slot_name(latest_daily_slot(after)) == "2024-11-21T02:00+08:00"
    assert slot_name(next_daily_slot(after)) == "2024-11-22T02:00+08:00"


def test_group_masks_round_trip_all_thirteen_groups() -> None:
    mask = groups.mask_of([1, 5, 13])
    assert mask == 1 | 16 | 4096
    assert groups.groups_in(mask) == [1, 5, 13]
    assert len(groups.GROUP_NAMES) == 13 and groups.GROUP_NAMES[10] == "事实无人抚养儿童"
    assert not groups.is_group(0) and not groups.is_group(14)


def test_reason_checks_need_a_known_enabled_code_and_a_note_for_other() -> None:
    code, note = reasons.check_reason("02", "  ", DICT)
    assert (code.code, note) == ("02", "")
    with pytest.raises(InvalidArgument) as err:
        reasons.check_reason("99", "", DICT)
    assert (err.value.code, err.value.field) == ("REASON_NOTE_REQUIRED", "note")
    with pytest.raises(InvalidArgument) as err:
        reasons.check_reason("42", "", DICT)
    assert err.value.code == "REASON_CODE_UNKNOWN"
    disabled = {**DICT, "11": reasons.ReasonCode("11", "x", enabled=False)}
    with pytest.raises(InvalidArgument) as err:
        reasons.check_reason("11", "", disabled)
    assert err.value.code == "REASON_CODE_DISABLED"
    with pytest.raises(InvalidArgument) as err:
        reasons.check_reason("99", "长" * 501, DICT)
    assert err.value.code == "REASON_NOTE_TOO_LONG"


def test_legacy_reasons_map_by_label_or_become_other_with_the_text() -> None:
    assert reasons.map_legacy_reason("经认定不困难", DICT) == ("03", "")
    assert reasons.map_legacy_reason("03经认定不困难", DICT) == ("03", "")
    assert reasons.map_legacy_reason("家长不同意", DICT) == ("99", "家长不同意")


def test_finding_life_cycle_across_runs() -> None:
    assert rules.status_after_run(rules.OPEN, True) is None
    assert rules.status_after_run(rules.FIXED, True) == rules.OPEN
    assert rules.status_after_run(rules.CLEARED, True) == rules.OPEN
    assert rules.status_after_run(rules.DISMISSED, True) is None
    assert rules.status_after_run(rules.CONFIRMED, False) == rules.CLEARED
    assert rules.status_after_run(rules.DISMISSED, False) is None
    assert rules.Hit("R07", "fp", "x", "/x/", "s").severity == rules.WARNING
    assert set(rules.RULES) == {f"R{n:02d}" for n in (1, 2, 3, 4, 5, 6, 7, 9, 11, 12)}


def test_statistics_rows_put_schools_under_the_right_child() -> None:
    root = "/000000/440000/440100/"
    county_school = root + "440106/2144010601/"
    direct_school = root + "3644010001/"
    assert scope.child_code(county_school, root) == "440106"
    assert scope.child_code(root, root) is None
    assert scope.child_code("/000000/450000/", root) is None
    assert scope.row_for_school(direct_school, root, child_is_school=True, expand_direct=False) == (
        scope.RowKey(2, "3644010001")
    )
    assert scope.parent_path(county_school) == root + "440106/"
    assert scope.code_of(county_school) == "2144010601"

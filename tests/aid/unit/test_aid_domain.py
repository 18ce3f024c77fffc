"""The aid domain without I/O: periods and article-17 deadlines, which window governs, the audit
chain and its transitions, amounts and recognition rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from aid_service.domain.enums import (
    Category,
    Decision,
    HardshipLevel,
    IdType,
    Level,
    OwnerType,
    PeriodStatus,
    Phase,
    RecordStatus,
    Stage,
    Term,
)
from aid_service.domain.periods import AidPeriod, Period, end_of_day, local_text, plan_period
from aid_service.domain.projects import (
    AmountProblem,
    AmountTier,
    Project,
    choose_amount,
    owner_level_for,
    recognition_problem,
    validate_project,
    yuan,
)
from aid_service.domain.records import (
    AidRecord,
    after_decision,
    audit_chain,
    audit_refusal,
    dedup_key,
    edit_refusal,
)
from aid_service.domain.windows import Window, default_window, governing_window, window_closed
from zizhu_common.errors import InvalidArgument, PermissionDenied

AUTUMN = AidPeriod("2024-2025", Term.AUTUMN)
NOW = datetime(2024, 11, 20, 2, 0, tzinfo=UTC)


def project(**kw) -> Project:
    values = dict(
        project_code="P1", name="助学金", owner_type=OwnerType.NATIONAL, owner_org_code="000000",
        owner_org_path="/000000/", owner_level=Level.NATIONAL, stage=Stage.GENERAL_HIGH_SCHOOL,
        category=Category.NEED_BASED,
        tiers=(AmountTier("1", "一档", 175000), AmountTier("2", "二档", 115000)),
    )  # fmt: skip
    values.update(kw)
    return Project(**values)


def record(**kw) -> AidRecord:
    values = dict(
        record_id="R1", project_code="P1", period=AUTUMN, student_id="S1", id_number_blind_index="b",
        id_number_masked="m", id_type=IdType.RESIDENT_ID, student_name="张三", student_number="",
        school_org_code="3444010601", school_org_path="/000000/440000/440100/440106/3444010601/",
        stage=Stage.GENERAL_HIGH_SCHOOL, category=Category.NEED_BASED, owner_type=OwnerType.NATIONAL,
        grade="", class_name="", amount_fen=115000, tier_code="2", hardship_level=None,
        entered_by="op", submitted_by="op",
        audit_chain=((Level.COUNTY, "440106"), (Level.CITY, "440100"), (Level.PROVINCE, "440000")),
    )  # fmt: skip
    values.update(kw)
    return AidRecord(**values)


def test_terms_have_the_article_17_deadlines() -> None:
    assert AUTUMN.default_dates() == (date(2024, 9, 1), date(2025, 1, 31), date(2025, 1, 31))
    spring = AidPeriod("2024-2025", Term.SPRING)
    assert spring.default_dates() == (date(2025, 2, 1), date(2025, 7, 31), date(2025, 7, 31))
    # 24:00 on 31 January in Beijing is 16:00 UTC that day.
    assert end_of_day(date(2025, 1, 31)) == datetime(2025, 1, 31, 16, 0, tzinfo=UTC)
    assert local_text(end_of_day(date(2025, 1, 31))) == "2025-01-31 24:00"
    assert AUTUMN.label == "2024-2025学年秋季学期"


def test_bad_periods_are_refused() -> None:
    for year in ("2024", "2024-2026", "24-25", ""):
        with pytest.raises(InvalidArgument) as err:
            AidPeriod.parse(year, 1)
        assert err.value.code == "SCHOOL_YEAR_INVALID"
    with pytest.raises(InvalidArgument):
        AidPeriod.parse("2024-2025", 0)
    with pytest.raises(InvalidArgument):
        plan_period(AUTUMN, starts_on="2025-02-01", ends_on="2025-01-01")


def _w(
    org_path: str, start: datetime, end: datetime, *, extension: bool = False, wid: str = "w"
) -> Window:
    return Window(wid, "P1", AUTUMN, Phase.ENTRY, org_path.strip("/").split("/")[-1], org_path,
                  start, end, extension=extension, set_at=start)  # fmt: skip


def test_most_specific_window_governs_and_open_extensions_widen() -> None:
    school = "/000000/440000/440100/440106/3444010601/"
    period = Period(
        AUTUMN, PeriodStatus.OPEN, date(2024, 9, 1), date(2025, 1, 31), date(2025, 1, 31)
    )
    default = default_window("P1", period, Phase.ENTRY, "/000000/")
    whole = _w("/000000/", NOW - timedelta(days=30), NOW + timedelta(days=30), wid="whole")
    county = _w(
        "/000000/440000/440100/440106/",
        NOW - timedelta(days=30),
        NOW - timedelta(days=1),
        wid="county",
    )
    other = _w(
        "/000000/440000/440300/", NOW - timedelta(days=30), NOW + timedelta(days=90), wid="other"
    )
    ext = _w(school, NOW - timedelta(hours=1), NOW + timedelta(days=2), extension=True, wid="ext")

    def gov(ws, now=NOW):
        return governing_window(ws, org_path=school, phase=Phase.ENTRY, now=now, default=default)

    assert gov([]).is_default and gov([]).open_at(NOW)
    assert gov([whole]).window_id == "whole"
    assert gov([whole, county, other]).window_id == "county"
    assert not gov([whole, county]).open_at(NOW)
    assert gov([whole, county, ext]).window_id == "ext"
    # An extension that ended no longer governs.
    assert gov([whole, county, ext], NOW + timedelta(days=3)).window_id == "county"


def test_window_closed_names_the_window_in_beijing_time() -> None:
    w = _w(
        "/000000/", datetime(2024, 9, 1, 0, 0, tzinfo=UTC), datetime(2025, 1, 25, 16, 0, tzinfo=UTC)
    )
    err = window_closed(Phase.ENTRY, w, now=datetime(2025, 1, 26, tzinfo=UTC))
    assert err.code == "WINDOW_CLOSED" and err.details["window_id"] == "w"
    assert "2024-09-01 08:00 至 2025-01-25 24:00" in err.message and "已结束" in err.message


def test_audit_chain_follows_the_schools_ancestors_and_the_owner() -> None:
    county_school = [(Level.NATIONAL, "000000"), (Level.PROVINCE, "440000"), (Level.CITY, "440100"),
                     (Level.COUNTY, "440106")]  # fmt: skip
    assert audit_chain(project(audit_levels=(Level.COUNTY, Level.CITY, Level.PROVINCE)), county_school) == (
        (Level.COUNTY, "440106"), (Level.CITY, "440100"), (Level.PROVINCE, "440000"))  # fmt: skip
    city_project = project(owner_type=OwnerType.LOCAL_GOVERNMENT, owner_level=Level.CITY,
                           audit_levels=(Level.COUNTY, Level.CITY, Level.PROVINCE))  # fmt: skip
    assert [lvl for lvl, _ in audit_chain(city_project, county_school)] == [
        Level.COUNTY,
        Level.CITY,
    ]
    city_run = county_school[:3]
    assert [c for _, c in audit_chain(project(audit_levels=(Level.COUNTY, Level.CITY, Level.PROVINCE)), city_run)] == [
        "440100", "440000"]  # fmt: skip
    university = [(Level.NATIONAL, "000000")]
    assert audit_chain(project(audit_levels=(Level.COUNTY, Level.CITY, Level.PROVINCE)), university) == (
        (Level.NATIONAL, "000000"),)  # fmt: skip
    assert (
        audit_chain(project(owner_type=OwnerType.SCHOOL, owner_level=Level.SCHOOL), county_school)
        == ()
    )


def test_decisions_move_the_record_along_its_chain() -> None:
    r = record(
        status=RecordStatus.PENDING_SCHOOL_AUDIT,
        pending_level=Level.SCHOOL,
        pending_org_code="3444010601",
    )
    step = after_decision(r, Decision.APPROVE)
    assert (step.status, step.pending_level, step.pending_org_code) == (
        RecordStatus.PENDING_AUTHORITY_AUDIT, Level.COUNTY, "440106")  # fmt: skip
    r = record(
        status=RecordStatus.PENDING_AUTHORITY_AUDIT,
        pending_level=Level.PROVINCE,
        pending_org_code="440000",
    )
    step = after_decision(r, Decision.APPROVE)
    assert step.status is RecordStatus.APPROVED and step.final_level is Level.PROVINCE
    assert after_decision(r, Decision.RETURN).status is RecordStatus.RETURNED
    school_only = record(status=RecordStatus.PENDING_SCHOOL_AUDIT, pending_level=Level.SCHOOL,
                         pending_org_code="3444010601", audit_chain=())  # fmt: skip
    assert after_decision(school_only, Decision.APPROVE).final_level is Level.SCHOOL


def test_refusals_name_why_a_record_cannot_be_audited_or_edited() -> None:
    r = record(
        status=RecordStatus.PENDING_SCHOOL_AUDIT,
        pending_level=Level.SCHOOL,
        pending_org_code="3444010601",
    )
    assert (
        audit_refusal(r, caller_level=Level.SCHOOL, caller_org="3444010601", caller_account="aud")
        is None
    )
    assert (
        audit_refusal(
            r, caller_level=Level.SCHOOL, caller_org="3444010601", caller_account="op"
        ).code
        == "FOUR_EYES"
    )
    assert (
        audit_refusal(r, caller_level=Level.COUNTY, caller_org="440106", caller_account="x").code
        == "NOT_AWAITING_CALLER"
    )
    assert (
        audit_refusal(
            record(), caller_level=Level.SCHOOL, caller_org="3444010601", caller_account="x"
        ).code
        == "RECORD_NOT_PENDING"
    )
    assert edit_refusal(record()) is None
    assert edit_refusal(record(status=RecordStatus.APPROVED)).code == "RECORD_NOT_EDITABLE"


def test_amounts_come_from_tiers_or_the_custom_range() -> None:
    p = project()
    assert choose_amount(p, tier_code="1", amount_fen=0).amount_fen == 175000
    assert choose_amount(p, tier_code="二档", amount_fen=0).tier_code == "2"
    assert choose_amount(p, tier_code="", amount_fen=115000).tier_code == "2"
    for tier, amount, code in (("9", 0, "TIER_UNKNOWN"), ("1", 1, "AMOUNT_TIER_MISMATCH"),
                               ("", 1, "AMOUNT_NOT_IN_TIERS"), ("", 0, "AMOUNT_REQUIRED")):  # fmt: skip
        with pytest.raises(AmountProblem) as err:
            choose_amount(p, tier_code=tier, amount_fen=amount)
        assert err.value.code == code
    loan = project(
        tiers=(), allow_custom_amount=True, min_amount_fen=100000, max_amount_fen=2000000
    )
    assert choose_amount(loan, tier_code="", amount_fen=1234500).tier_code == ""
    assert yuan(62550) == "625.5" and yuan(115000) == "1150" and yuan(5) == "0.05"


def test_recognition_rule_is_at_least_the_required_level() -> None:
    p = validate_project(project(requires_recognition=True), audit_levels=())
    assert p.min_hardship_level is HardshipLevel.GENERAL
    assert recognition_problem(p, HardshipLevel.SPECIAL) is None
    assert "尚未认定" in recognition_problem(p, None)
    assert "不困难" in recognition_problem(p, HardshipLevel.NOT_DIFFICULT)
    strict = validate_project(project(requires_recognition=True, min_hardship_level=HardshipLevel.DIFFICULT),
                              audit_levels=())  # fmt: skip
    assert recognition_problem(strict, HardshipLevel.GENERAL) is not None


def test_owner_levels_and_default_audit_levels() -> None:
    owner_level_for(OwnerType.LOCAL_GOVERNMENT, Level.COUNTY)
    with pytest.raises(PermissionDenied):
        owner_level_for(OwnerType.NATIONAL, Level.PROVINCE)
    p = validate_project(
        project(owner_type=OwnerType.LOCAL_GOVERNMENT, owner_level=Level.PROVINCE), audit_levels=()
    )
    assert p.audit_levels == (Level.COUNTY, Level.CITY, Level.PROVINCE)
    p = validate_project(
        project(owner_type=OwnerType.LOCAL_GOVERNMENT, owner_level=Level.COUNTY), audit_levels=()
    )
    assert p.audit_levels == (Level.COUNTY,)
    with pytest.raises(InvalidArgument):
        validate_project(
            project(owner_type=OwnerType.SCHOOL, owner_level=Level.SCHOOL),
            audit_levels=(Level.COUNTY,),
        )


def test_dedup_key_is_per_term_or_per_school_year_for_annual_projects() -> None:
    spring = AidPeriod("2024-2025", Term.SPRING)
    assert dedup_key(project(), AUTUMN, "S1") != dedup_key(project(), spring, "S1")
    annual = project(annual=True)
    assert dedup_key(annual, AUTUMN, "S1") == dedup_key(annual, spring, "S1")

"""Domain rules without I/O: 学籍 row validation, transfers, periods, issued rows, recognition."""

from __future__ import annotations

from datetime import date

from roster_service.domain.common import (
    Gender,
    HardshipLevel,
    SpecialGroup,
    Stage,
    StudentStatus,
    Term,
    parse_date,
    school_year_of,
    term_of,
    term_range,
)
from roster_service.domain.groups import (
    IssuedRowInput,
    IssueMode,
    MembershipStatus,
    Verification,
    check_issued_row,
    counts_for_period,
)
from roster_service.domain.recognition import (
    RecognitionEntry,
    check_level_rules,
    in_force,
    parse_groups,
    suggested_level,
    validate_import_row,
)
from roster_service.domain.students import (
    StoredEnrollment,
    StudentRow,
    departure_for,
    stored_number,
    validate_row,
    was_in_school,
)

from tests.roster.helpers import make_id

TODAY = date(2026, 11, 22)


def raw(**kw: str) -> dict[str, str]:
    idn = make_id(1)
    values = {
        "id_number": idn, "name": "张三", "school_org_code": "2144010601", "stage": "义务教育",
        "student_number": "G" + idn, "grade": "六年级",
    }  # fmt: skip
    values.update(kw)
    return values


def codes(result) -> list[str]:
    assert isinstance(result, list), result
    return [e.code for e in result]


def test_valid_row_derives_gender_and_birth_date_from_the_id():
    r = validate_row(2, raw(), today=TODAY)
    assert isinstance(r, StudentRow)
    assert (r.gender, r.birth_date, r.status) == (
        Gender.MALE,
        "2012-09-01",
        StudentStatus.IN_SCHOOL,
    )
    assert r.id_number_masked.count("*") == 8


def test_legacy_15_digit_id_is_upgraded():
    r = validate_row(
        2, raw(id_number="440106120901003", student_number="J44010612090100312"), today=TODAY
    )
    assert codes(r) == ["STUDENT_NUMBER_FORMAT"]  # J numbers carry 18 characters after the letter
    r = validate_row(
        2, raw(id_number="440106120901003", student_number="J440106120901003123"), today=TODAY
    )
    assert isinstance(r, StudentRow) and len(r.id_number) == 18


def test_g_number_must_carry_the_id_and_supplies_a_missing_id():
    assert codes(validate_row(2, raw(student_number="G" + make_id(2)), today=TODAY)) == [
        "STUDENT_NUMBER_ID_MISMATCH"
    ]
    r = validate_row(2, raw(id_number=""), today=TODAY)
    assert isinstance(r, StudentRow) and r.id_number == make_id(1)
    assert stored_number("G" + make_id(1)) == "G" + make_id(1)[:6] + "********" + make_id(1)[-4:]
    assert stored_number("J440106201209010123") == "J440106201209010123"


def test_row_without_id_needs_a_j_or_l_number():
    assert "ID_NUMBER_REQUIRED" in codes(
        validate_row(2, raw(id_number="", student_number="", stage="本专科"), today=TODAY)
    )
    assert isinstance(
        validate_row(
            2,
            raw(
                id_number="",
                student_number="L440106201209011234",
                gender="女",
                birth_date="2012-09-01",
            ),
            today=TODAY,
        ),
        StudentRow,
    )


def test_every_error_of_a_row_is_reported_with_its_column():
    r = validate_row(
        5,
        raw(
            id_number="440106201209010011",
            name="",
            stage="大学",
            grade="",
            boarder="也许",
            phone="123",
        ),
        today=TODAY,
    )
    got = {(e.column, e.code) for e in r}  # type: ignore[union-attr]
    assert ("身份证件号码", "ID_NUMBER_CHECKSUM") in got
    assert ("姓名", "NAME_REQUIRED") in got and ("学段", "STAGE_UNKNOWN") in got
    assert ("年级", "GRADE_REQUIRED") in got and ("是否寄宿", "BOARDER_FORMAT") in got
    assert ("联系电话", "PHONE_FORMAT") in got
    assert all(e.row == 5 for e in r)  # type: ignore[union-attr]


def test_leaving_status_needs_a_date_and_sets_left_on():
    assert codes(validate_row(2, raw(status="毕业"), today=TODAY)) == ["STATUS_DATE_REQUIRED"]
    r = validate_row(2, raw(status="转学", status_date="2024-03-01"), today=TODAY)
    assert isinstance(r, StudentRow) and r.left_on == "2024-03-01"
    assert codes(validate_row(2, raw(left_on="2024-03-01"), today=TODAY)) == [
        "LEFT_ON_WHILE_ENROLLED"
    ]
    assert codes(validate_row(2, raw(enrolled_on="2030-09-01"), today=TODAY)) == ["DATE_FUTURE"]


def _enrollment(stage: int, status: int = StudentStatus.IN_SCHOOL) -> StoredEnrollment:
    return StoredEnrollment(
        "E1",
        "S1",
        "2144010601",
        "/p/",
        stage,
        "G",
        "6",
        "1",
        "",
        status,
        "",
        "2019-09-01",
        "",
        False,
        True,
        1,
    )


def test_a_new_school_in_the_same_stage_is_a_transfer_and_a_later_stage_a_graduation():
    row = validate_row(2, raw(enrolled_on="2024-09-01"), today=TODAY)
    assert isinstance(row, StudentRow)
    moved = departure_for(_enrollment(Stage.COMPULSORY), row, today=TODAY)
    assert moved is not None and (moved.status, moved.left_on) == (
        StudentStatus.TRANSFERRED_OUT,
        "2024-09-01",
    )
    later = validate_row(2, raw(stage="普通高中", enrolled_on="2024-09-01"), today=TODAY)
    assert (
        departure_for(_enrollment(Stage.COMPULSORY), later, today=TODAY).status
        == StudentStatus.GRADUATED
    )  # type: ignore[union-attr,arg-type]
    assert (
        departure_for(_enrollment(Stage.COMPULSORY, StudentStatus.GRADUATED), row, today=TODAY)
        is None
    )


def test_in_school_during_a_period():
    lo, hi = term_range("2024-2025", Term.AUTUMN)
    assert was_in_school(StudentStatus.IN_SCHOOL, "2019-09-01", "", "", lo, hi)
    assert not was_in_school(StudentStatus.IN_SCHOOL, "2025-03-01", "", "", lo, hi)
    assert was_in_school(StudentStatus.GRADUATED, "", "2024-10-01", "2024-10-01", lo, hi)
    assert not was_in_school(StudentStatus.GRADUATED, "", "2024-07-01", "2024-07-01", lo, hi)
    assert not was_in_school(StudentStatus.SUSPENDED, "", "", "2024-06-01", lo, hi)


def test_school_years_and_terms():
    assert (
        school_year_of(date(2024, 9, 1)) == "2024-2025"
        and school_year_of(date(2025, 8, 31)) == "2024-2025"
    )
    assert term_of(date(2025, 1, 15)) == Term.AUTUMN and term_of(date(2025, 2, 1)) == Term.SPRING
    assert term_range("2024-2025", Term.SPRING) == (date(2025, 2, 1), date(2025, 8, 31))
    assert parse_date("2024年9月1日") == date(2024, 9, 1) and parse_date("20240230") is None


def test_issued_rows_are_checked_without_lookups():
    groups = frozenset({SpecialGroup.DIBAO})
    ok = check_issued_row(
        1,
        IssuedRowInput(1, make_id(1).lower(), " 张三 ", 5, 0, "", "", ""),
        groups=groups,
        mode=IssueMode.FULL,
        school_year="2024-2025",
    )
    assert ok.error is None and ok.valid_from == "2024-09-01" and ok.name == "张三"
    bad = check_issued_row(
        2,
        IssuedRowInput(1, make_id(1), "张三", 7, 0, "", "", ""),
        groups=groups,
        mode=IssueMode.FULL,
        school_year="2024-2025",
    )
    assert bad.error is not None and bad.error.code == "GROUP_NOT_IN_BATCH"
    late = check_issued_row(
        3,
        IssuedRowInput(1, make_id(1), "张三", 5, 0, "", "2026-01-01", ""),
        groups=groups,
        mode=IssueMode.FULL,
        school_year="2024-2025",
    )
    assert late.error is not None and late.error.code == "VALIDITY_OUTSIDE_YEAR"


def test_which_memberships_count_for_a_period():
    lo, hi = term_range("2024-2025", Term.SPRING)
    base = dict(
        status=MembershipStatus.ACTIVE,
        verification=Verification.PENDING,
        valid_from="2024-09-01",
        valid_to="",
        ended_on="",
        lo=lo,
        hi=hi,
    )
    assert counts_for_period(**base)
    assert not counts_for_period(**{**base, "verification": Verification.REJECTED})
    assert not counts_for_period(
        **{**base, "status": MembershipStatus.ENDED, "ended_on": "2025-01-10"}
    )
    assert counts_for_period(**{**base, "status": MembershipStatus.ENDED, "ended_on": "2025-03-10"})
    assert not counts_for_period(**{**base, "valid_to": "2024-12-31"})


def test_level_in_force_follows_terms_then_versions():
    e = lambda v, term, level: RecognitionEntry(v, "S", "2024-2025", term, level, v)  # noqa: E731
    entries = [e(1, Term.AUTUMN, 2), e(2, Term.SPRING, 1), e(3, Term.AUTUMN, 3)]
    assert in_force(entries, Term.AUTUMN).level == 3  # type: ignore[union-attr]
    assert in_force(entries, Term.SPRING).level == 1  # type: ignore[union-attr]
    assert in_force(entries, None).level == 1  # type: ignore[union-attr]
    assert in_force([], Term.AUTUMN) is None


def test_defaults_suggest_the_most_severe_level():
    defaults = {
        SpecialGroup.DIBAO: HardshipLevel.GENERAL,
        SpecialGroup.ORPHAN: HardshipLevel.SPECIAL,
    }
    assert (
        suggested_level([SpecialGroup.DIBAO, SpecialGroup.ORPHAN], defaults)
        == HardshipLevel.SPECIAL
    )
    assert suggested_level([SpecialGroup.DISABLED], defaults) is None


def test_recognition_rules_and_import_rows():
    assert (
        check_level_rules(
            level=2,
            basis_groups=[],
            basis_note="",
            recognized_on="",
            change_reason="",
            previous_level=1,
            today=TODAY,
        )[0][1]
        == "CHANGE_REASON_REQUIRED"
    )
    assert not check_level_rules(
        level=1,
        basis_groups=[5],
        basis_note="",
        recognized_on="2024-10-01",
        change_reason="",
        previous_level=1,
        today=TODAY,
    )
    assert parse_groups("低保学生、孤儿，残疾学生/外星人") == ((5, 7, 8), ["外星人"])
    r = validate_import_row(
        2, {"id_number": make_id(1), "level": "特别困难", "basis_groups": "低保"}, today=TODAY
    )
    assert not isinstance(r, list) and r.level == HardshipLevel.SPECIAL and r.basis_groups == (5,)

"""Entry validation passes with an in-memory roster (the real one is used by the integration
tests): local checks, roster outcomes, and the bulk insert tuples."""

from __future__ import annotations

from datetime import UTC, date, datetime

from aid_fakes import FakeRoster, FakeStudent
from aid_service.domain.enums import (
    Action,
    Category,
    HardshipLevel,
    IdType,
    Level,
    OwnerType,
    Stage,
    Term,
)
from aid_service.domain.orgs import OrgNode
from aid_service.domain.periods import AidPeriod
from aid_service.domain.projects import AmountTier, Project
from aid_service.repository.records import RECORD_COLUMNS, record_values
from aid_service.service.context import Deps
from aid_service.service.entry import (
    EntryRow,
    build_records,
    bulk_rows,
    check_locally,
    check_with_roster,
    same_number,
)
from aid_service.settings import Settings
from zizhu_common.crypto import FieldCipher
from zizhu_common.idnumber import id_check_char
from zizhu_common.rpc import CallerContext

PERIOD = AidPeriod("2026-2027", Term.AUTUMN)
SCHOOL = OrgNode("3444010601", "天河中学", Level.SCHOOL, "440106",
                 "/000000/440000/440100/440106/3444010601/", (Stage.GENERAL_HIGH_SCHOOL,))  # fmt: skip
CALLER = CallerContext("op", SCHOOL.org_code, SCHOOL.org_path, "school", frozenset({"operator"}))
PROJECT = Project("GJ-PG-ZXJ", "普通高中国家助学金", OwnerType.NATIONAL, "000000", "/000000/", Level.NATIONAL,
                  Stage.GENERAL_HIGH_SCHOOL, Category.NEED_BASED,
                  tiers=(AmountTier("1", "一档", 175000), AmountTier("2", "二档", 115000)),
                  requires_recognition=True, min_hardship_level=HardshipLevel.GENERAL)  # fmt: skip


def idn(n: int) -> str:
    first17 = f"44010620100101{n:03d}"
    return first17 + id_check_char(first17)


def deps(roster: FakeRoster) -> Deps:
    settings = Settings(zizhu_env="test", database_url="sqlite+aiosqlite:///:memory:")
    return Deps(settings=settings, db=None, outbox=None, roster=roster,  # type: ignore[arg-type]
                cipher=FieldCipher("k" * 32),
                clock=lambda: datetime(2026, 11, 20, tzinfo=UTC))  # fmt: skip


def test_local_checks_report_every_problem_of_every_row() -> None:
    rows = [
        EntryRow(2, "甲", idn(1), tier_code="1"),
        EntryRow(3, "", idn(2), tier_code="1"),
        EntryRow(4, "丙", idn(3)[:-1] + "Y", tier_code="1"),
        EntryRow(5, "丁", idn(1), tier_code="1"),
        EntryRow(6, "戊", idn(4), tier_code="3", bank_card_number="12ab"),
    ]
    checked = check_locally(PROJECT, rows, today=date(2026, 11, 20))
    assert [r.row for r in checked.rows] == [2]
    assert [(i.row, i.code) for i in checked.issues] == [
        (3, "NAME_REQUIRED"), (4, "ID_NUMBER_FORMAT"), (5, "DUPLICATE_IN_FILE"),
        (6, "TIER_UNKNOWN"), (6, "BANK_CARD_INVALID"),
    ]  # fmt: skip
    assert checked.issues[0].as_dict()["column"] == "姓名"


async def test_roster_outcomes_become_row_errors_and_recognition_is_checked() -> None:
    roster = FakeRoster()
    roster.add(FakeStudent("S1", idn(1), "甲", SCHOOL.org_code, Stage.GENERAL_HIGH_SCHOOL,
                           hardship={"2026-2027": HardshipLevel.DIFFICULT}))  # fmt: skip
    roster.add(FakeStudent("S2", idn(2), "乙", SCHOOL.org_code, Stage.GENERAL_HIGH_SCHOOL))
    roster.add(
        FakeStudent("S3", idn(3), "丙", SCHOOL.org_code, Stage.GENERAL_HIGH_SCHOOL, in_school=False)
    )
    rows = [
        EntryRow(n + 1, name, idn(n), tier_code="1")
        for n, name in ((1, "甲"), (2, "乙"), (3, "丙"), (4, "丁"))
    ]
    rows.append(EntryRow(6, "错名", idn(1), tier_code="1"))
    checked = check_locally(PROJECT, rows, today=date(2026, 11, 20))
    assert [i.code for i in checked.issues] == ["DUPLICATE_IN_FILE"]
    checked = await check_with_roster(deps(roster), CALLER, PROJECT, PERIOD, SCHOOL, checked)
    assert roster.calls == [4]
    assert [r.row for r in checked.rows] == [2]
    assert sorted((i.row, i.code) for i in checked.issues) == [
        (3, "RECOGNITION_REQUIRED"), (4, "STUDENT_NOT_IN_SCHOOL"), (5, "STUDENT_NOT_FOUND"), (6, "DUPLICATE_IN_FILE")]  # fmt: skip


async def test_bulk_insert_tuples_equal_the_records_they_stand_for() -> None:
    roster = FakeRoster()
    roster.add(FakeStudent("S1", idn(1), "甲", SCHOOL.org_code, Stage.GENERAL_HIGH_SCHOOL, student_number="G" + idn(1),
                           hardship={"2026-2027": HardshipLevel.SPECIAL}))  # fmt: skip
    d = deps(roster)
    checked = check_locally(PROJECT, [EntryRow(2, "甲", idn(1), tier_code="2", bank_card_number="6222020200112233445",
                                               remark="备注")], today=date(2026, 11, 20))  # fmt: skip
    checked = await check_with_roster(d, CALLER, PROJECT, PERIOD, SCHOOL, checked)
    [record] = build_records(
        d, CALLER, PROJECT, PERIOD, SCHOOL, checked.rows, action=Action.IMPORTED, import_id="I1"
    )
    [row] = bulk_rows(
        d,
        CALLER,
        PROJECT,
        PERIOD,
        SCHOOL,
        checked.rows,
        ["sealed"],
        import_id="I1",
        now_value=d.now(),
    )
    expected = record_values(record)
    got = dict(zip(RECORD_COLUMNS, row, strict=True))
    for name in ("record_id", "bank_card_enc"):
        expected.pop(name), got.pop(name)
    assert got == expected
    assert record.id_type is IdType.RESIDENT_ID


def test_masked_student_numbers_compare_on_their_visible_characters() -> None:
    assert same_number("G440106201001010014", "G440106********0014")
    assert not same_number("G440106201001010015", "G440106********0014")
    assert same_number("2024001", "2024001") and not same_number("2024001", "2024002")
    assert same_number("g440106201001010014", "G440106********0014")  # case does not matter
    assert not same_number("G44010620100101001", "G440106********0014")  # one character short
    assert not same_number("G440106201001010014", "G440106********0015")
    # Stars in more than one run: every visible character still counts.
    assert same_number("G440106201001010014", "G44**06201****10014")
    assert not same_number("G440106201001010014", "G44**06301****10014")

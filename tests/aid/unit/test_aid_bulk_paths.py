"""The fast paths of a large import build exactly what the plain code would: roster requests
from a shared prototype, answers read without enum constructors, the collector paused and
resumed around nested bulk work."""

from __future__ import annotations

import gc

from aid_service.domain.enums import (
    Category,
    EnrollmentOutcome,
    HardshipLevel,
    IdType,
    Level,
    OwnerType,
    Stage,
    Term,
)
from aid_service.domain.orgs import OrgNode
from aid_service.domain.periods import AidPeriod
from aid_service.domain.projects import Project
from aid_service.roster import EnrollmentQuery, _answer, _request
from aid_service.service.entry import EntryRow, enrollment_queries
from zizhu_common.bulk import paused_gc
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.roster.v1 import roster_pb2

AUTUMN = AidPeriod("2026-2027", Term.AUTUMN)
SPRING = AidPeriod("2026-2027", Term.SPRING)


def _plain(q: EnrollmentQuery) -> roster_pb2.EnrollmentCheck:
    return roster_pb2.EnrollmentCheck(
        student_id=q.student_id, id_type=int(q.id_type), id_number=q.id_number, name=q.name,
        id_number_blind_index=q.id_number_blind_index, school_org_code=q.school_org_code, stage=int(q.stage),
        period=common_pb2.AidPeriod(school_year=q.period.school_year, term=int(q.period.term)),
    )  # fmt: skip


def test_requests_built_from_a_prototype_equal_plainly_built_ones() -> None:
    queries = [
        EnrollmentQuery("3444010601", Stage.GENERAL_HIGH_SCHOOL, AUTUMN, id_number="44010620090901001X", name="甲"),
        EnrollmentQuery("3444010601", Stage.GENERAL_HIGH_SCHOOL, AUTUMN, student_id="S1"),
        EnrollmentQuery("3444010601", Stage.GENERAL_HIGH_SCHOOL, AUTUMN, id_type=IdType.PASSPORT,
                        id_number="E12345678", name="乙"),
        # Another school, stage and period in the same batch take their own prototype.
        EnrollmentQuery("2144010601", Stage.COMPULSORY, SPRING, id_number="440106201209010011", name="丙"),
        EnrollmentQuery("3444010601", Stage.GENERAL_HIGH_SCHOOL, AUTUMN, id_number="440106200909010020"),
        EnrollmentQuery("3444010601", Stage.GENERAL_HIGH_SCHOOL, AUTUMN, id_number="440106200909010039",
                        id_number_blind_index="b" * 64),
    ]  # fmt: skip
    built = _request(queries)
    assert list(built.checks) == [_plain(q) for q in queries]
    plain = roster_pb2.CheckEnrollmentRequest(checks=[_plain(q) for q in queries])
    assert built.SerializeToString() == plain.SerializeToString()


def test_resident_ids_carry_their_person_key_and_other_rows_do_not() -> None:
    project = Project(
        "GZ", "普通高中国家助学金", OwnerType.NATIONAL, "000000", "/000000/", Level.NATIONAL,
        Stage.GENERAL_HIGH_SCHOOL, Category.NEED_BASED,
    )  # fmt: skip
    school = OrgNode(
        "3444010601", "华阳中学", Level.SCHOOL, "440106", "/000000/440000/440100/440106/3444010601/"
    )
    rows = [
        EntryRow(2, "甲", id_number="44010620090901001X"),
        EntryRow(3, "乙", id_type=IdType.PASSPORT, id_number="E12345678"),
        EntryRow(4, "丙", student_id="S1"),
    ]
    keys = {"44010620090901001X": "k" * 64}
    with_keys = enrollment_queries(project, AUTUMN, school, rows, keys.__getitem__)
    assert [q.id_number_blind_index for q in with_keys] == ["k" * 64, "", ""]
    # The number still goes with it (roster validates numbers it does not know).
    assert with_keys[0].id_number == "44010620090901001X"
    plain = enrollment_queries(project, AUTUMN, school, rows)
    assert [q.id_number_blind_index for q in plain] == ["", "", ""]


def test_answers_map_outcomes_and_levels_and_default_the_unknown() -> None:
    result = roster_pb2.EnrollmentCheckResult(
        index=0, outcome=int(EnrollmentOutcome.NAME_MISMATCH), student_id="S1",
        id_number_blind_index="bi", name="甲", id_number_masked="440106********001X",
        enrollment=roster_pb2.Enrollment(student_number="G1", grade="2026级", class_name="1班",
                                         school_org_path="/000000/440000/"),
        hardship_level=int(HardshipLevel.SPECIAL),
    )  # fmt: skip
    a = _answer(result)
    assert a.outcome is EnrollmentOutcome.NAME_MISMATCH
    assert a.hardship_level is HardshipLevel.SPECIAL
    assert (a.student_id, a.name, a.student_number, a.grade, a.class_name, a.school_org_path) == (
        "S1", "甲", "G1", "2026级", "1班", "/000000/440000/")  # fmt: skip
    bare = _answer(roster_pb2.EnrollmentCheckResult(index=1))
    assert bare.outcome is EnrollmentOutcome.STUDENT_NOT_FOUND and bare.hardship_level is None


def test_paused_gc_nests_and_restores_the_collector() -> None:
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.enable()

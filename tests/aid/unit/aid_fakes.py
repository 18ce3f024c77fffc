"""An in-memory Roster (aid's port to roster) for unit tests only; integration tests and the
benchmark use the real roster service over gRPC."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from aid_service.domain.enums import EnrollmentOutcome, HardshipLevel, IdType, Stage
from aid_service.roster import EnrollmentAnswer, EnrollmentQuery, StudentBrief
from zizhu_common.idnumber import IdentifierError, mask_id_number, parse_resident_id
from zizhu_common.rpc import CallerContext


@dataclass
class FakeStudent:
    """A student as the fake roster knows it."""

    student_id: str
    id_number: str
    name: str
    school_org_code: str
    stage: Stage
    in_school: bool = True
    grade: str = "2024级"
    class_name: str = "1班"
    student_number: str = ""
    hardship: dict[str, HardshipLevel] = field(default_factory=dict)


class FakeRoster:
    """Answers enrolment checks from a dict; counts calls to prove batching."""

    def __init__(self) -> None:
        self.students: dict[str, FakeStudent] = {}
        self.by_id_number: dict[str, FakeStudent] = {}
        self.calls: list[int] = []

    def add(self, s: FakeStudent) -> FakeStudent:
        """Know a student."""
        self.students[s.student_id] = s
        self.by_id_number[s.id_number] = s
        return s

    async def check_enrollment(
        self, caller: CallerContext, queries: Sequence[EnrollmentQuery]
    ) -> list[EnrollmentAnswer]:
        """Roster's CheckEnrollment semantics, from memory."""
        self.calls.append(len(queries))
        out = []
        for q in queries:
            if q.student_id:
                s = self.students.get(q.student_id)
            else:
                if q.id_type is IdType.RESIDENT_ID:
                    try:
                        parse_resident_id(q.id_number)
                    except IdentifierError:
                        out.append(EnrollmentAnswer(EnrollmentOutcome.INVALID_ID_NUMBER))
                        continue
                s = self.by_id_number.get(q.id_number)
            if s is None:
                out.append(EnrollmentAnswer(EnrollmentOutcome.STUDENT_NOT_FOUND))
                continue
            base = dict(
                student_id=s.student_id,
                id_number_blind_index="bi-" + s.id_number,
                name=s.name,
                id_number_masked=mask_id_number(s.id_number),
                student_number=s.student_number,
                grade=s.grade,
                class_name=s.class_name,
                hardship_level=s.hardship.get(q.period.school_year),
            )
            if q.name and q.name != s.name:
                outcome = EnrollmentOutcome.NAME_MISMATCH
            elif s.school_org_code != q.school_org_code:
                outcome = EnrollmentOutcome.NOT_AT_SCHOOL
            elif s.stage is not q.stage:
                outcome = EnrollmentOutcome.STAGE_MISMATCH
            elif not s.in_school:
                outcome = EnrollmentOutcome.NOT_IN_SCHOOL
            else:
                outcome = EnrollmentOutcome.ENROLLED
            out.append(EnrollmentAnswer(outcome, **base))
        return out

    async def reveal_id_number(self, caller: CallerContext, student_id: str) -> str:
        """The full ID number."""
        return self.students[student_id].id_number

    async def list_students(
        self, caller: CallerContext, *, school_org_code: str, stage: Stage, school_year: str
    ) -> list[StudentBrief]:
        """In-school students of a school and stage."""
        return [
            StudentBrief(
                s.student_id,
                s.name,
                mask_id_number(s.id_number),
                s.stage,
                s.grade,
                False,
                s.hardship.get(school_year),
            )  # fmt: skip
            for s in self.students.values()
            if s.school_org_code == school_org_code and s.stage is stage and s.in_school
        ]

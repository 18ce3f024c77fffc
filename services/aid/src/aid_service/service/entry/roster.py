"""Roster's part of entry validation: the batched CheckEnrollment queries for rows that passed
the local checks, and applying roster's answers (enrolled at the school in the project's stage,
name as in 学籍, hardship recognition)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from zizhu_common.bulk import paused_gc
from zizhu_common.idnumber import mask_id_number
from zizhu_common.rpc import CallerContext

from aid_service.domain.enums import EnrollmentOutcome, HardshipLevel, IdType
from aid_service.domain.orgs import OrgNode
from aid_service.domain.periods import AidPeriod
from aid_service.domain.projects import Project, recognition_problem
from aid_service.roster import EnrollmentAnswer, EnrollmentQuery
from aid_service.service.context import Deps
from aid_service.service.entry.rows import Checked, EntryRow, RowIssue, same_number

# Roster's answer → (field at fault, stable code, reason).
_OUTCOME_TEXT = {
    EnrollmentOutcome.INVALID_ID_NUMBER: (
        "id_number", "ID_NUMBER_INVALID", "学籍系统认为该身份证件号码无效"),
    EnrollmentOutcome.STUDENT_NOT_FOUND: (
        "id_number", "STUDENT_NOT_FOUND", "学籍中无此学生，请核对身份证件号码"),
    EnrollmentOutcome.NAME_MISMATCH: ("student_name", "NAME_MISMATCH", "姓名与学籍不一致"),
    EnrollmentOutcome.NOT_AT_SCHOOL: ("id_number", "STUDENT_NOT_AT_SCHOOL", "该学生不在本校就读"),
    EnrollmentOutcome.STAGE_MISMATCH: (
        "id_number", "STAGE_MISMATCH", "该学生的学段与项目学段不符"),
    EnrollmentOutcome.NOT_IN_SCHOOL: (
        "id_number", "STUDENT_NOT_IN_SCHOOL",
        "该学生本资助周期不在校（休学、退学、毕业或转出等）"),
}  # fmt: skip


def enrollment_queries(
    project: Project,
    period: AidPeriod,
    school: OrgNode,
    rows: Sequence[EntryRow],
    blind_index: Callable[[str], str] | None = None,
) -> list[EnrollmentQuery]:
    """The roster checks of rows that passed the local checks, in row order. With blind_index,
    resident IDs (validated and normalised by the local checks) also carry their person key,
    so that roster looks them up without computing it: aid does that work while roster answers
    earlier chunks."""
    code, stage = school.org_code, project.stage
    resident = IdType.RESIDENT_ID
    return [
        EnrollmentQuery(
            code,
            stage,
            period,
            r.student_id,
            r.id_type,
            "" if r.student_id else r.id_number,
            r.student_name,
            blind_index(r.id_number)
            if blind_index is not None
            and not r.student_id
            and r.id_number
            and r.id_type == resident
            else "",
        )  # fmt: skip
        for r in rows
    ]


class RosterAnswers:
    """Roster's answers applied to rows, chunk after chunk in row order (a pipelined import):
    enrolment, 学籍号, recognition, and one row per student across the whole file."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.seen: dict[str, int] = {}
        self.levels: dict[HardshipLevel | None, str | None] = {}

    def apply(
        self, rows: Sequence[EntryRow], answers: Sequence[EnrollmentAnswer], issues: list[RowIssue]
    ) -> list[EntryRow]:
        """The rows roster confirmed; the problems of the others go to issues."""
        with paused_gc():
            return self._apply(rows, answers, issues)

    def _apply(
        self, rows: Sequence[EntryRow], answers: Sequence[EnrollmentAnswer], issues: list[RowIssue]
    ) -> list[EntryRow]:
        project = self.project
        levels = self.levels
        seen = self.seen
        enrolled = EnrollmentOutcome.ENROLLED
        ok: list[EntryRow] = []
        keep = ok.append
        add = issues.append
        for r, a in zip(rows, answers, strict=True):
            if a.outcome is not enrolled:
                fld, code, text = _OUTCOME_TEXT.get(
                    a.outcome, ("id_number", "ENROLLMENT_CHECK_FAILED", "学籍核验未通过")
                )
                value = (
                    r.student_name
                    if fld == "student_name"
                    else mask_id_number(r.id_number or r.student_id)
                )
                add(RowIssue(r.row, fld, value, code, text))
                continue
            number = r.student_number
            if number and a.student_number and not same_number(number, a.student_number):
                add(RowIssue(r.row, "student_number", number, "STUDENT_NUMBER_MISMATCH",
                             f"学籍号与学籍不一致（学籍中为{a.student_number}）"))  # fmt: skip
                continue
            level = a.hardship_level
            if level in levels:
                problem = levels[level]
            else:
                problem = levels[level] = recognition_problem(project, level)
            if problem:
                add(RowIssue(r.row, "id_number", mask_id_number(r.id_number or a.id_number_masked),
                             "RECOGNITION_REQUIRED", problem))  # fmt: skip
                continue
            first = seen.get(a.student_id)
            if first is not None:
                add(RowIssue(r.row, "id_number", a.id_number_masked, "DUPLICATE_IN_FILE",
                             f"与第{first}行是同一名学生"))  # fmt: skip
                continue
            seen[a.student_id] = r.row
            r.answer = a
            keep(r)
        return ok


async def check_with_roster(
    deps: Deps,
    caller: CallerContext,
    project: Project,
    period: AidPeriod,
    school: OrgNode,
    checked: Checked,
) -> Checked:
    """One batched roster check for the rows that passed the local checks."""
    rows = checked.rows
    if not rows:
        return checked
    answers = await deps.roster.check_enrollment(
        caller, enrollment_queries(project, period, school, rows, deps.blind_index)
    )
    ok = RosterAnswers(project).apply(rows, answers, checked.issues)
    return Checked(ok, checked.issues)

"""Entry validation (DESIGN.md §5), shared by single entry and template import.

Rows are checked in three passes so that an import of 100,000 rows stays fast: local checks (ID
number, amount, bank card, lengths), one batched roster check for the rows that passed (enrolled
at that school in the project's stage, name as in 学籍, hardship recognition), then the database
checks run inside the writing transaction (one record per student × project × period, mutually
exclusive projects, quota).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.errors import AlreadyExists, DomainError, FailedPrecondition, InvalidArgument
from zizhu_common.idnumber import IdentifierError, mask_id_number
from zizhu_common.rpc import CallerContext

from aid_service.bulk import paused_gc
from aid_service.domain.enums import (
    Action,
    EnrollmentOutcome,
    ExclusionScope,
    HardshipLevel,
    IdType,
    RecordStatus,
)
from aid_service.domain.idcheck import normalize_resident_id_fast
from aid_service.domain.orgs import OrgNode
from aid_service.domain.periods import AidPeriod
from aid_service.domain.projects import (
    AmountChoice,
    AmountProblem,
    Project,
    choose_amount,
    recognition_problem,
    yuan,
)
from aid_service.domain.records import (
    AidRecord,
    IdBlock,
    check_bank_card,
    dedup_key,
    mask_bank_card,
)
from aid_service.roster import EnrollmentAnswer, EnrollmentQuery
from aid_service.service.context import BANK_CARD_CONTEXT, Deps
from aid_service.xlsx import FIELD_HEADER

MAX_NAME = 50
MAX_REMARK = 200
MAX_BANK_NAME = 50

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
# Error class of a single entry refused for a row code (InvalidArgument otherwise).
_ERROR_CLASS: dict[str, type[DomainError]] = {
    "DUPLICATE_RECORD": AlreadyExists,
    "EXCLUSIVE_PROJECT": FailedPrecondition,
    "QUOTA_EXCEEDED": FailedPrecondition,
    "RECOGNITION_REQUIRED": FailedPrecondition,
}


@dataclass(slots=True)
class EntryRow:
    """One record to enter, as given (single entry: row 1; import: the spreadsheet row)."""

    row: int
    student_name: str
    id_number: str = ""
    id_type: IdType = IdType.RESIDENT_ID
    student_id: str = ""
    student_number: str = ""
    tier_code: str = ""
    amount_fen: int = 0
    bank_name: str = ""
    bank_card_number: str = ""
    remark: str = ""
    amount: AmountChoice | None = None
    answer: EnrollmentAnswer | None = None
    # The bank card number sealed for storage (a committing import seals while roster answers).
    bank_card_sealed: str = ""


@dataclass(slots=True)
class RowIssue:
    """One problem of one row: row, field/column, value (masked when personal), code, reason."""

    row: int
    field: str
    value: str
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        """The stored and reported form (column = the template's Chinese header)."""
        return {
            "row": self.row,
            "column": FIELD_HEADER.get(self.field, self.field),
            "value": self.value,
            "code": self.code,
            "message": self.message,
        }

    def as_error(self) -> DomainError:
        """The refusal of a single entry."""
        cls = _ERROR_CLASS.get(self.code, InvalidArgument)
        return cls(self.message, code=self.code, field=self.field)


@dataclass
class Checked:
    """Rows that passed so far, and every problem found."""

    rows: list[EntryRow]
    issues: list[RowIssue] = field(default_factory=list)


def same_number(given: str, known: str) -> bool:
    """A 学籍号 as given equals roster's, which may come masked (G440106********0039)."""
    if "*" not in known:
        return given.upper() == known.upper()
    return len(given) == len(known) and all(
        k == "*" or k == g for g, k in zip(given.upper(), known.upper(), strict=True)
    )


def check_locally(project: Project, rows: Sequence[EntryRow], *, today: date) -> Checked:
    """Checks that need neither roster nor the database."""
    return LocalChecks(project, today=today).check(rows)


class LocalChecks:
    """The local checks over a file fed in consecutive chunks (a pipelined import): duplicates
    are found across chunks, each amount choice is worked out once."""

    def __init__(self, project: Project, *, today: date) -> None:
        self.project = project
        self.today = today
        self.seen: dict[str, int] = {}
        self.amounts: dict[tuple[str, int], AmountChoice | AmountProblem] = {}

    def check(self, rows: Sequence[EntryRow]) -> Checked:
        """The rows of this chunk that passed, and the problems of the others."""
        with paused_gc():
            return self._check(rows)

    def _check(self, rows: Sequence[EntryRow]) -> Checked:
        project, today = self.project, self.today
        ok: list[EntryRow] = []
        issues: list[RowIssue] = []
        add = issues.append
        keep = ok.append
        seen = self.seen
        amounts = self.amounts
        resident = IdType.RESIDENT_ID
        normalize = normalize_resident_id_fast
        for r in rows:
            bad = False
            name = r.student_name
            if not name and not r.student_id:
                add(RowIssue(r.row, "student_name", "", "NAME_REQUIRED", "姓名不能为空"))
                bad = True
            elif len(name) > MAX_NAME:
                add(RowIssue(r.row, "student_name", name[:20], "NAME_TOO_LONG",
                             f"姓名不超过{MAX_NAME}个字"))  # fmt: skip
                bad = True
            if not r.student_id:
                id_type = r.id_type
                if id_type is resident:
                    try:
                        r.id_number = normalize(r.id_number, today)
                    except IdentifierError as exc:
                        add(RowIssue(r.row, "id_number", mask_id_number(r.id_number), exc.code,
                                     exc.message))  # fmt: skip
                        bad = True
                elif not r.id_number or len(r.id_number) > 30:
                    add(RowIssue(r.row, "id_number", mask_id_number(r.id_number),
                                 "ID_NUMBER_REQUIRED", "证件号码不能为空且不超过30位"))  # fmt: skip
                    bad = True
                if not bad:
                    key = r.id_number if id_type is resident else f"{int(id_type)}|{r.id_number}"
                    first = seen.get(key)
                    if first is not None:
                        add(RowIssue(r.row, "id_number", mask_id_number(r.id_number),
                                     "DUPLICATE_IN_FILE", f"与第{first}行是同一名学生"))  # fmt: skip
                        bad = True
                    else:
                        seen[key] = r.row
            amount_key = (r.tier_code, r.amount_fen)
            choice = amounts.get(amount_key)
            if choice is None:
                try:
                    choice = choose_amount(project, tier_code=r.tier_code, amount_fen=r.amount_fen)
                except AmountProblem as exc:
                    choice = exc
                amounts[amount_key] = choice
            if choice.__class__ is AmountChoice:
                r.amount = choice  # type: ignore[assignment]
            else:
                assert isinstance(choice, AmountProblem)
                value = r.tier_code if choice.field == "tier_code" else yuan(r.amount_fen)
                add(RowIssue(r.row, choice.field, value, choice.code, choice.message))
                bad = True
            card = r.bank_card_number
            problem = check_bank_card(card) if card else None
            if problem:
                add(RowIssue(r.row, "bank_card_number", mask_bank_card(card), "BANK_CARD_INVALID",
                             problem))  # fmt: skip
                bad = True
            if len(r.bank_name) > MAX_BANK_NAME:
                add(RowIssue(r.row, "bank_name", r.bank_name[:20], "TEXT_TOO_LONG",
                             f"开户银行不超过{MAX_BANK_NAME}个字"))  # fmt: skip
                bad = True
            if len(r.remark) > MAX_REMARK:
                add(RowIssue(r.row, "remark", r.remark[:20], "TEXT_TOO_LONG",
                             f"备注不超过{MAX_REMARK}个字"))  # fmt: skip
                bad = True
            if not bad:
                keep(r)
        return Checked(ok, issues)


def enrollment_queries(
    project: Project, period: AidPeriod, school: OrgNode, rows: Sequence[EntryRow]
) -> list[EnrollmentQuery]:
    """The roster checks of rows that passed the local checks, in row order."""
    code, stage = school.org_code, project.stage
    return [
        EnrollmentQuery(
            code,
            stage,
            period,
            r.student_id,
            r.id_type,
            "" if r.student_id else r.id_number,
            r.student_name,
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
        caller, enrollment_queries(project, period, school, rows)
    )
    ok = RosterAnswers(project).apply(rows, answers, checked.issues)
    return Checked(ok, checked.issues)


async def check_in_database(
    deps: Deps,
    session: AsyncSession,
    project: Project,
    period: AidPeriod,
    school: OrgNode,
    checked: Checked,
    *,
    ignore_record_id: str = "",
    slots_checked: bool = False,
) -> Checked:
    """Slot taken, mutually exclusive projects, quota: inside the writing transaction.
    slots_checked: the slots were looked up already (a pipelined import, see slot_issues);
    the unique slot index still refuses one taken in between."""
    rows = checked.rows
    issues = checked.issues
    if not rows:
        return checked
    keys = [dedup_key(project, period, r.answer.student_id) for r in rows]  # type: ignore[union-attr]
    taken = {} if slots_checked else await deps.records.taken_slots(session, keys)
    taken.pop("", None)
    conflicts: dict[str, str] = {}
    others = await exclusive_projects(deps, session, project)
    if others:
        found = await deps.records.live_of_students(
            session,
            student_ids=[r.answer.student_id for r in rows],  # type: ignore[union-attr]
            project_codes=list(others),
            school_year=period.school_year,
        )
        for student_id, code, term, record_id in found:
            if record_id == ignore_record_id:
                continue
            scope = others[code]
            if scope is ExclusionScope.SCHOOL_YEAR or term is period.term:
                conflicts.setdefault(student_id, code)
    ok: list[EntryRow] = []
    for r, key in zip(rows, keys, strict=True):
        a = r.answer
        assert a is not None
        holder = taken.get(key)
        if holder and holder != ignore_record_id:
            when = period.school_year + "学年" if project.annual else period.label
            issues.append(RowIssue(r.row, "id_number", a.id_number_masked, "DUPLICATE_RECORD",
                                   f"该学生{when}已有本项目资助记录（记录号{holder}）"))  # fmt: skip
            continue
        if a.student_id in conflicts:
            other = conflicts[a.student_id]
            issues.append(RowIssue(r.row, "id_number", a.id_number_masked, "EXCLUSIVE_PROJECT",
                                   f"该学生本{'学年' if others[other] is ExclusionScope.SCHOOL_YEAR else '学期'}"
                                   f"已有互斥项目“{other}”的资助记录，不能同时享受"))  # fmt: skip
            continue
        ok.append(r)
    if project.quota_per_school and ok:
        used = await deps.records.live_count(
            session,
            school_org_code=school.org_code,
            project_code=project.project_code,
            period=period,
        )
        room = max(project.quota_per_school - used, 0)
        for r in ok[room:]:
            issues.append(RowIssue(r.row, "id_number", r.answer.id_number_masked, "QUOTA_EXCEEDED",  # type: ignore[union-attr]
                                   f"超出本校名额{project.quota_per_school}人（已用{used}人）"))  # fmt: skip
        ok = ok[:room]
    issues.sort(key=lambda i: i.row)
    return Checked(ok, issues)


async def exclusive_projects(
    deps: Deps, session: AsyncSession, project: Project
) -> dict[str, ExclusionScope]:
    """Projects excluded by this one or excluding it, with the widest scope."""
    out = {e.project_code: e.scope for e in project.exclusions}
    for other in await deps.projects.excluding(session, project.project_code):
        for e in other.exclusions:
            if e.project_code == project.project_code:
                prior = out.get(other.project_code)
                out[other.project_code] = (
                    ExclusionScope.SCHOOL_YEAR
                    if ExclusionScope.SCHOOL_YEAR in (prior, e.scope)
                    else e.scope
                )
    return out


def slot_keys(project: Project, period: AidPeriod, rows: Sequence[EntryRow]) -> list[str]:
    """The slot (dedup key) each roster-confirmed row would take."""
    slot = dedup_key(project, period, "")
    return [slot + r.answer.student_id for r in rows]  # type: ignore[union-attr]


def slot_issues(
    project: Project,
    period: AidPeriod,
    rows: Sequence[EntryRow],
    keys: Sequence[str],
    taken: dict[str, str],
    issues: list[RowIssue],
) -> list[EntryRow]:
    """The rows whose slot is free; a DUPLICATE_RECORD issue for the others."""
    if not taken:
        return list(rows)
    when = period.school_year + "学年" if project.annual else period.label
    ok: list[EntryRow] = []
    for r, key in zip(rows, keys, strict=True):
        holder = taken.get(key)
        if holder:
            issues.append(RowIssue(r.row, "id_number", r.answer.id_number_masked,  # type: ignore[union-attr]
                                   "DUPLICATE_RECORD",
                                   f"该学生{when}已有本项目资助记录（记录号{holder}）"))  # fmt: skip
        else:
            ok.append(r)
    return ok


def build_records(
    deps: Deps,
    caller: CallerContext,
    project: Project,
    period: AidPeriod,
    school: OrgNode,
    rows: Sequence[EntryRow],
    *,
    action: Action,
    import_id: str = "",
) -> list[AidRecord]:
    """New DRAFT records from validated rows."""
    now = deps.now()
    ids = IdBlock("R")
    cipher = deps.cipher
    out: list[AidRecord] = []
    for r in rows:
        a = r.answer
        amount = r.amount
        assert a is not None and amount is not None
        card = r.bank_card_number
        out.append(
            AidRecord(
                record_id=ids.next(),
                project_code=project.project_code,
                period=period,
                student_id=a.student_id,
                id_number_blind_index=a.id_number_blind_index
                or (deps.blind_index(r.id_number, int(r.id_type)) if r.id_number else ""),
                id_number_masked=a.id_number_masked or mask_id_number(r.id_number),
                id_type=r.id_type,
                student_name=a.name or r.student_name,
                student_number=a.student_number,
                school_org_code=school.org_code,
                school_org_path=school.org_path,
                stage=project.stage,
                category=project.category,
                owner_type=project.owner_type,
                grade=a.grade,
                class_name=a.class_name,
                amount_fen=amount.amount_fen,
                tier_code=amount.tier_code,
                hardship_level=a.hardship_level,
                bank_name=r.bank_name,
                bank_card_enc=cipher.encrypt(card, context=BANK_CARD_CONTEXT) if card else "",
                bank_card_masked=mask_bank_card(card) if card else "",
                remark=r.remark,
                status=RecordStatus.DRAFT,
                entered_by=caller.account_id,
                entered_at=now,
                entry_action=action,
                entered_amount_fen=amount.amount_fen,
                import_id=import_id,
                updated_at=now,
                version=1,
                dedup_key=dedup_key(project, period, a.student_id),
            )
        )
    return out


def bulk_rows(
    deps: Deps,
    caller: CallerContext,
    project: Project,
    period: AidPeriod,
    school: OrgNode,
    rows: Sequence[EntryRow],
    sealed_cards: Sequence[str] | None = None,
    *,
    import_id: str,
    now_value: Any,
) -> list[tuple[Any, ...]]:
    """Insert tuples (RecordRepository.RECORD_COLUMNS order) of new DRAFT imported records,
    without building domain objects: the fast path of a large template import. Bank card
    numbers come sealed: sealed_cards (one per row) or EntryRow.bank_card_sealed."""
    if sealed_cards is not None:
        for r, card in zip(rows, sealed_cards, strict=True):
            r.bank_card_sealed = card
    parts = bulk_row_parts(deps, caller, project, period, school, rows, import_id=import_id,
                           now_value=now_value, part_size=max(len(rows), 1))  # fmt: skip
    return [t for part in parts for t in part]


def bulk_row_parts(
    deps: Deps,
    caller: CallerContext,
    project: Project,
    period: AidPeriod,
    school: OrgNode,
    rows: Sequence[EntryRow],
    *,
    import_id: str,
    now_value: Any,
    part_size: int = 5000,
) -> Iterator[list[tuple[Any, ...]]]:
    """bulk_rows in consecutive parts, each built when asked for (while the database stores the
    previous one). The tuples are in student id order, which is the order of the slot (dedup
    key) and student indexes, with record ids given in that order too: the database then
    appends to those indexes instead of inserting at random places (about a third less work
    for 100,000 rows)."""
    ordered = sorted(rows, key=_student_id)
    ids = IdBlock("R")
    for start in range(0, len(ordered), part_size):
        with paused_gc():
            part = _bulk_rows(deps, caller, project, period, school,
                              ordered[start : start + part_size], ids, import_id, now_value)  # fmt: skip
        yield part


def record_tuples(
    deps: Deps,
    caller: CallerContext,
    project: Project,
    period: AidPeriod,
    school: OrgNode,
    rows: Sequence[EntryRow],
    ids: IdBlock,
    *,
    import_id: str,
    now_value: Any,
) -> list[tuple[Any, ...]]:
    """bulk_rows of one part of an import (in student id order, ids from the import's block)."""
    with paused_gc():
        ordered = sorted(rows, key=_student_id)
        return _bulk_rows(deps, caller, project, period, school, ordered, ids, import_id,
                          now_value)  # fmt: skip


def _student_id(r: EntryRow) -> str:
    return r.answer.student_id if r.answer else ""


def _bulk_rows(
    deps: Deps,
    caller: CallerContext,
    project: Project,
    period: AidPeriod,
    school: OrgNode,
    rows: Sequence[EntryRow],
    ids: IdBlock,
    import_id: str,
    now_value: Any,
) -> list[tuple[Any, ...]]:
    next_id = ids.next
    code, year, term = project.project_code, period.school_year, int(period.term)
    stage, category, owner = int(project.stage), int(project.category), int(project.owner_type)
    school_code, school_path = school.org_code, school.org_path
    actor, draft, imported = caller.account_id, int(RecordStatus.DRAFT), int(Action.IMPORTED)
    slot = f"{code}|{year if project.annual else period.key}|"
    out: list[tuple[Any, ...]] = []
    append = out.append
    for r in rows:
        a = r.answer
        amount = r.amount
        assert a is not None and amount is not None
        level = a.hardship_level
        fen = amount.amount_fen
        append((
            next_id(), code, year, term, a.student_id,
            a.id_number_blind_index or deps.blind_index(r.id_number, int(r.id_type)),
            a.id_number_masked or mask_id_number(r.id_number), int(r.id_type),
            a.name or r.student_name, a.student_number, school_code, school_path, stage,
            category, owner, a.grade, a.class_name, fen, amount.tier_code,
            int(level) if level else None, r.bank_name, r.bank_card_sealed,
            mask_bank_card(r.bank_card_number) if r.bank_card_number else "", r.remark, draft,
            None, "", "", "", actor, now_value, imported, fen, import_id, "", None,
            None, None, now_value, 1, slot + a.student_id,
        ))  # fmt: skip
    return out

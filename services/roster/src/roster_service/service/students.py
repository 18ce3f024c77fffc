"""Student use cases: 学籍 sync (batched calls and file imports), reads, search, and the batched
enrolment check that aid's entry and import rely on."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.errors import (
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from zizhu_common.idnumber import IdentifierError
from zizhu_common.rpc import CallerContext

from roster_service.domain.common import (
    IdType,
    Term,
    resident_id,
    term_of,
    term_range,
    valid_school_year,
)
from roster_service.domain.recognition import in_force
from roster_service.domain.students import (
    StoredEnrollment,
    was_in_school_iso,
)
from roster_service.events import AUDIT_RECORDED, add_events
from roster_service.repository.students import SearchFilters
from roster_service.service.context import (
    Deps,
    audit_event,
    next_token,
    page_window,
)
from roster_service.service.student_imports import StudentImportOps
from roster_service.service.sync import RowApplier
from roster_service.service.views import (
    ChangeView,
    CheckResult,
    EnrollmentView,
    GroupMembershipView,
    Page,
    RecognitionView,
    StudentDetail,
    StudentView,
)

MAX_BATCH_GET = 1000
MAX_CHECKS = 5000


class CheckOutcome:
    """EnrollmentCheckOutcome values."""

    ENROLLED = 1
    INVALID_ID_NUMBER = 2
    STUDENT_NOT_FOUND = 3
    NAME_MISMATCH = 4
    NOT_AT_SCHOOL = 5
    STAGE_MISMATCH = 6
    NOT_IN_SCHOOL = 7


@dataclass(slots=True)
class CheckInput:
    """One enrolment check as asked."""

    index: int
    student_id: str = ""
    id_type: int = 0
    id_number: str = ""
    id_number_blind_index: str = ""
    name: str = ""
    school_org_code: str = ""
    stage: int = 0
    school_year: str = ""
    term: int = 0


@dataclass(slots=True)
class SearchInput:
    """SearchStudents' filters as asked."""

    org_code: str = ""
    stage: int = 0
    grade: str = ""
    class_name: str = ""
    statuses: tuple[int, ...] = ()
    name: str = ""
    id_number: str = ""
    student_number: str = ""
    groups: tuple[int, ...] = ()
    hardship_levels: tuple[int, ...] = ()
    hardship_school_year: str = ""


def enrollment_view(e: StoredEnrollment | Any, school_name: str) -> EnrollmentView:
    """An enrolment for display."""
    return EnrollmentView(
        school_org_code=e.school_org_code,
        school_name=school_name,
        school_org_path=e.school_org_path,
        stage=e.stage,
        student_number=e.student_number,
        grade=e.grade,
        class_name=e.class_name,
        major_name=e.major_name,
        status=e.status,
        enrolled_on=e.enrolled_on,
        left_on=e.left_on,
        boarder=bool(e.boarder),
        status_date=e.status_date,
    )


def recognition_view(row: Any, *, student_name: str = "", masked: str = "") -> RecognitionView:
    """A recognition entry for display."""
    return RecognitionView(
        recognition_id=str(row.id),
        student_id=row.student_id,
        student_name=student_name or getattr(row, "student_name", ""),
        id_number_masked=masked or getattr(row, "id_number_masked", ""),
        school_org_code=row.school_org_code,
        school_org_path=row.school_org_path,
        school_year=row.school_year,
        term=row.term,
        level=row.level,
        basis_groups=[int(x) for x in row.basis_groups.split(",") if x],
        basis_note=row.basis_note,
        recognized_on=row.recognized_on,
        change_reason=row.change_reason,
        current=bool(row.is_current),
        recorded_by=row.recorded_by,
        recorded_at=row.recorded_at,
        version=row.version,
    )


class StudentService(StudentImportOps):
    """Students from 学籍."""

    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.applier = RowApplier(deps)

    # -- sync ----------------------------------------------------------------------------------

    # -- reads ---------------------------------------------------------------------------------

    def _resolve_bi(self, id_type: int, id_number: str, field_name: str = "id_number") -> str:
        number = (id_number or "").strip().upper()
        if not id_type or id_type == IdType.RESIDENT_ID:
            try:
                number = resident_id(number).number
            except IdentifierError as exc:
                raise InvalidArgument(exc.message, code=exc.code, field=field_name) from None
        return self.d.id_index(id_type or IdType.RESIDENT_ID, number)

    async def _student_id(
        self,
        session: AsyncSession,
        caller: CallerContext,
        student_id: str,
        id_type: int,
        id_number: str,
    ) -> str:
        if not student_id and not id_number:
            raise InvalidArgument(
                "须提供学生ID或证件号码", code="STUDENT_KEY_REQUIRED", field="student_id"
            )
        if not student_id:
            student_id = (
                await self.d.students.student_id_by_bi(
                    session, self._resolve_bi(id_type, id_number)
                )
                or ""
            )
        if not student_id or not await self.d.students.visible(
            session, student_id, caller.org_path
        ):
            raise NotFound(
                "学生不存在或不在本单位管辖范围内", code="STUDENT_NOT_FOUND", field="student_id"
            )
        return student_id

    async def resolve_student(
        self,
        session: AsyncSession,
        caller: CallerContext,
        student_id: str,
        id_type: int,
        id_number: str,
    ) -> str:
        """The id of a student in the caller's subtree (NOT_FOUND otherwise)."""
        return await self._student_id(session, caller, student_id, id_type, id_number)

    async def views(
        self,
        session: AsyncSession,
        student_rows: Sequence[Any],
        *,
        enrollments: dict[str, Any] | None = None,
        reveal: bool = False,
    ) -> list[StudentView]:
        """Student views with their enrolment (given, or the current one), active groups of the
        current school year and the recognition in force."""
        d = self.d
        ids = [r.student_id for r in student_rows]
        if enrollments is None:
            enrollments = dict(await d.students.current_enrollments(session, ids))
        schools = await d.orgs.by_codes(session, {e.school_org_code for e in enrollments.values()})
        year = d.current_school_year()
        groups = await d.students.active_groups(session, ids, year)
        recognitions = await d.recognitions.rows_for(session, ids, [year])
        views = []
        for r in student_rows:
            e = enrollments.get(r.student_id)
            rec_rows = recognitions.get((r.student_id, year), [])
            current = next((x for x in rec_rows if x.is_current), None)
            views.append(
                StudentView(
                    student_id=r.student_id,
                    name=r.name,
                    gender=r.gender,
                    birth_date=r.birth_date,
                    id_type=r.id_type,
                    id_number_masked=r.id_number_masked,
                    id_number=d.decrypt_id(r.id_number_enc) if reveal and r.id_number_enc else "",
                    id_number_blind_index=r.id_number_bi or "",
                    ethnicity=r.ethnicity,
                    household_type=r.household_type,
                    household_region_code=r.household_region_code,
                    enrollment=enrollment_view(
                        e, schools[e.school_org_code].name if e.school_org_code in schools else ""
                    )
                    if e is not None
                    else None,
                    groups=[
                        GroupMembershipView(
                            g.special_group, g.source, str(g.id), g.verification_status
                        )
                        for g in groups.get(r.student_id, [])
                    ],
                    current_recognition=recognition_view(
                        current, student_name=r.name, masked=r.id_number_masked
                    )
                    if current is not None
                    else None,
                    synced_at=r.synced_at,
                    created_at=r.created_at,
                    updated_at=r.updated_at,
                    version=r.version,
                    phone_masked=r.phone_masked,
                    phone=d.decrypt_phone(r.phone_enc) if reveal else "",
                )
            )
        return views

    async def get(
        self,
        caller: CallerContext,
        *,
        student_id: str,
        id_type: int,
        id_number: str,
        reveal: bool,
        include_history: bool,
    ) -> StudentDetail:
        """One student in the caller's subtree; the full ID and phone only in an audited read."""
        d = self.d
        if reveal and not d.may_reveal(caller):
            raise PermissionDenied(
                "无权查看完整证件号码", code="REVEAL_NOT_ALLOWED", field="reveal_id_number"
            )
        async with d.db.read() as session:
            sid = await self._student_id(session, caller, student_id, id_type, id_number)
            row = (await d.students.student_rows(session, [sid]))[sid]
            all_enrollments = (await d.students.enrollments_of(session, [sid])).get(sid, [])
            visible = [e for e in all_enrollments if caller.in_scope(e.school_org_path)]
            current = next((e for e in visible if e.is_current), None) or max(
                visible, key=lambda e: (e.enrolled_on, e.enrollment_id)
            )
            view = (await self.views(session, [row], enrollments={sid: current}, reveal=reveal))[0]
            detail = StudentDetail(student=view)
            if include_history:
                schools = await d.orgs.by_codes(session, {e.school_org_code for e in visible})
                ordered = sorted(
                    visible,
                    key=lambda e: (e.is_current, e.enrolled_on, e.enrollment_id),
                    reverse=True,
                )
                detail.enrollments = [
                    enrollment_view(
                        e, schools[e.school_org_code].name if e.school_org_code in schools else ""
                    )
                    for e in ordered
                ]
                codes = {e.school_org_code for e in visible}
                detail.changes = [
                    ChangeView(
                        change_id=str(c.id),
                        kind=c.kind,
                        changed_fields=json.loads(c.changed_fields),
                        before=json.loads(c.before),
                        after=json.loads(c.after),
                        school_org_code=c.school_org_code,
                        source_system=c.source_system,
                        batch_id=c.batch_id,
                        actor_account_id=c.actor_account_id,
                        occurred_at=c.occurred_at,
                    )
                    for c in await d.students.changes(session, sid)
                    if not c.school_org_code or c.school_org_code in codes
                ]
        if reveal:
            async with d.db.write() as session:
                await add_events(
                    session,
                    d.outbox,
                    [
                        (
                            AUDIT_RECORDED,
                            audit_event(
                                caller,
                                action="roster.GetStudent",
                                object_type="student",
                                object_id=sid,
                                org_path=current.school_org_path,
                                detail="查看学生完整证件号码和联系电话",
                                sensitive=True,
                            ),
                        )
                    ],
                )
        return detail

    async def batch_get(
        self, caller: CallerContext, ids: Sequence[str]
    ) -> tuple[list[StudentView], list[str]]:
        """Several students by id (masked); ids outside the caller's subtree are missing."""
        if len(ids) > MAX_BATCH_GET:
            raise InvalidArgument(
                f"每次最多查询{MAX_BATCH_GET}名学生", code="TOO_MANY_IDS", field="student_ids"
            )
        d = self.d
        async with d.db.read() as session:
            visible = await d.students.visible_ids(session, ids, caller.org_path)
            rows = await d.students.student_rows(session, sorted(visible))
            views = await self.views(session, [rows[i] for i in ids if i in rows])
        found = {v.student_id for v in views}
        return views, [i for i in ids if i not in found]

    async def search(
        self, caller: CallerContext, f: SearchInput, page: Any
    ) -> tuple[list[StudentView], Page]:
        """Enrolments in a subtree matching the filters (a transferred student shows at both
        schools: the old one with status 转出)."""
        d = self.d
        if f.hardship_levels and not f.hardship_school_year:
            f.hardship_school_year = d.current_school_year()
        if f.hardship_school_year and not valid_school_year(f.hardship_school_year):
            raise InvalidArgument(
                "学年格式应为YYYY-YYYY", code="SCHOOL_YEAR_FORMAT", field="hardship_school_year"
            )
        offset, limit = page_window(page, f)
        id_bi = self._resolve_bi(IdType.RESIDENT_ID, f.id_number) if f.id_number.strip() else ""
        number = f.student_number.strip().upper()
        if number.startswith("G") and len(number) == 19:
            # A G number is the ID number: search by its blind index.
            id_bi = self._resolve_bi(IdType.RESIDENT_ID, number[1:], "student_number")
            number = ""
        async with d.db.read() as session:
            root = await d.scope(session, caller, f.org_code)
            filters = SearchFilters(
                path=root.org_path,
                stage=f.stage,
                grade=f.grade.strip(),
                class_name=f.class_name.strip(),
                statuses=f.statuses,
                name_prefix=f.name.strip(),
                student_number=number,
                id_number_bi=id_bi,
                groups=f.groups,
                group_school_year=d.current_school_year(),
                hardship_levels=f.hardship_levels,
                hardship_school_year=f.hardship_school_year,
            )
            rows, total = await d.students.search(session, filters, offset=offset, limit=limit)
            views = (
                await self.views(session, rows, enrollments={r.student_id: r for r in rows})
                if rows
                else []
            )
            # One student may appear twice (two enrolments in scope): views follow the rows.
            for view, row in zip(views, rows, strict=True):
                if view.enrollment is not None:
                    view.enrollment = enrollment_view(row, view.enrollment.school_name)
        return views, Page(next_token(offset, limit, len(rows), total, f), total)

    async def check_enrollment(
        self, caller: CallerContext, checks: Sequence[CheckInput]
    ) -> list[CheckResult]:
        """Per check: does the student exist, is it at that school in that stage during the
        period, and its hardship level in force. Schools outside the caller's subtree answer
        STUDENT_NOT_FOUND.

        Set-based per call: one blind-index lookup for every ID number, per-call caches for
        scope tests, periods and schools. An 18-character resident ID is looked up as given
        (upper-cased): a stored number passed full validation when it was imported, so a hit
        proves it; only misses are validated, to tell INVALID_ID_NUMBER from STUDENT_NOT_FOUND."""
        d = self.d
        if len(checks) > MAX_CHECKS:
            raise InvalidArgument(
                f"每次最多核验{MAX_CHECKS}条", code="TOO_MANY_CHECKS", field="checks"
            )
        results = [CheckResult(c.index, 0) for c in checks]
        bis: list[str] = [""] * len(checks)
        unproven: dict[int, str] = {}  # check → number looked up before validation
        good_years: set[str] = set()
        bi_of = d.id_index
        for i, c in enumerate(checks):
            if c.school_year and c.school_year not in good_years:
                if valid_school_year(c.school_year):
                    good_years.add(c.school_year)
                    continue
                raise InvalidArgument(
                    "学年格式应为YYYY-YYYY", code="SCHOOL_YEAR_FORMAT", field=f"checks[{i}].period"
                )
        resident = int(IdType.RESIDENT_ID)
        for i, c in enumerate(checks):
            if c.student_id:
                continue
            if c.id_number_blind_index:
                bis[i] = c.id_number_blind_index
                continue
            number = c.id_number.strip().upper() if c.id_number else ""
            if len(number) == 18 and (not c.id_type or c.id_type == resident):
                bis[i] = bi_of(resident, number)
                unproven[i] = number
                continue
            try:
                bis[i] = self._resolve_bi(c.id_type, c.id_number)
            except InvalidArgument:
                results[i].outcome = CheckOutcome.INVALID_ID_NUMBER
        async with d.db.read() as session:
            by_bi = await d.students.enrolled_by(session, "id_number_bi", [b for b in bis if b])
            for i, number in unproven.items():
                if bis[i] not in by_bi:
                    try:
                        resident_id(number)
                    except IdentifierError:
                        results[i].outcome = CheckOutcome.INVALID_ID_NUMBER
            wanted_ids = {c.student_id for c in checks if c.student_id}
            by_id = (
                await d.students.enrolled_by(session, "student_id", wanted_ids)
                if wanted_ids
                else {}
            )
            schools = await d.orgs.by_codes(session, {c.school_org_code for c in checks})
            this_year = d.current_school_year()
            years = {c.school_year or this_year for c in checks}
            ids = {p.student_id for p in by_bi.values()} | set(by_id)
            recs = await d.recognitions.entries_for(session, ids, years)
        today = d.today()
        today_term = term_of(today)
        ranges: dict[tuple[str, int], tuple[date, date, str, str]] = {}
        today_span = (today, today, today.isoformat(), today.isoformat())
        in_scope: dict[str, bool] = {}
        scope = caller.in_scope
        school_ok = {
            code: school is not None and scope(school.org_path) for code, school in schools.items()
        }
        school_names = {code: school.name if school else "" for code, school in schools.items()}
        enrolled, not_in_school = CheckOutcome.ENROLLED, CheckOutcome.NOT_IN_SCHOOL
        for i, c in enumerate(checks):
            res = results[i]
            if res.outcome:
                continue
            person = by_id.get(c.student_id) if c.student_id else by_bi.get(bis[i])
            code = c.school_org_code
            if person is None or (code and not school_ok.get(code, False)):
                res.outcome = CheckOutcome.STUDENT_NOT_FOUND
                continue
            # Only enrolments the caller may see count (and are ever shown).
            mine = []
            for e in person.enrollments:
                seen = in_scope.get(e.school_org_path)
                if seen is None:
                    seen = in_scope[e.school_org_path] = scope(e.school_org_path)
                if seen:
                    mine.append(e)
            if not mine:
                res.outcome = CheckOutcome.STUDENT_NOT_FOUND
                continue
            res.student_id = person.student_id
            res.id_number_blind_index = person.id_number_bi
            res.name = person.name
            res.id_number_masked = person.id_number_masked
            year = c.school_year or this_year
            found = recs.get((person.student_id, year))
            if found:
                term = (
                    Term(c.term)
                    if c.term in (1, 2)
                    else (today_term if not c.school_year else None)
                )
                chosen = in_force(found, term)
                res.hardship_level = chosen.level if chosen else 0
            at_school = [e for e in mine if e.school_org_code == code] if code else mine
            if c.name and c.name.strip() != person.name:
                res.outcome = CheckOutcome.NAME_MISMATCH
                continue
            if not at_school:
                res.outcome = CheckOutcome.NOT_AT_SCHOOL
                latest = next((e for e in mine if e.is_current), None)
                if latest is not None:
                    res.enrollment = enrollment_view(latest, "")
                continue
            stage = c.stage
            in_stage = [e for e in at_school if e.stage == stage] if stage else at_school
            name = school_names.get(code, "")
            if not in_stage:
                res.outcome = CheckOutcome.STAGE_MISMATCH
                res.enrollment = enrollment_view(at_school[0], name)
                continue
            chosen_e = (
                in_stage[0]
                if len(in_stage) == 1
                else max(in_stage, key=lambda e: (e.is_current, e.enrolled_on))
            )
            res.enrollment = enrollment_view(chosen_e, name)
            span = ranges.get((c.school_year, c.term)) if c.school_year else today_span
            if span is None:
                lo, hi = (
                    term_range(year, Term(c.term))
                    if c.term in (1, 2)
                    else (term_range(year, Term.AUTUMN)[0], term_range(year, Term.SPRING)[1])
                )
                span = ranges[(year, c.term)] = (lo, hi, lo.isoformat(), hi.isoformat())
            res.outcome = not_in_school
            for e in in_stage:
                if was_in_school_iso(e.status, e.enrolled_on, e.left_on, e.status_date, *span):
                    res.outcome = enrolled
                    break
        return results

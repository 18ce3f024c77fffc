"""Hardship recognition use cases (家庭经济困难学生认定): single entry, template import, reads,
the special-group students still to recognise, and per-province default levels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.errors import (
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from zizhu_common.rpc import CallerContext
from zizhu_contracts.roster.v1 import events_pb2

from roster_service.domain.common import (
    ON_ROLL,
    HardshipLevel,
    SpecialGroup,
    Term,
    term_of,
)
from roster_service.domain.recognition import (
    check_level_rules,
    in_force,
    suggested_level,
)
from roster_service.events import RECOGNITION_RECORDED, add_events, meta
from roster_service.repository.groups import GroupRepository
from roster_service.repository.recognitions import RecognitionFilters, entry
from roster_service.service.context import Deps, next_token, page_window, require_level
from roster_service.service.recognition_import import RecognitionImportOps, check_term
from roster_service.service.students import recognition_view
from roster_service.service.views import (
    GroupMembershipView,
    Page,
    RecognitionView,
)


@dataclass(slots=True)
class PendingView:
    """A special-group student not yet recognised."""

    student_id: str
    name: str
    id_number_masked: str
    school_org_code: str
    school_name: str
    stage: int
    grade: str
    class_name: str
    groups: list[GroupMembershipView] = field(default_factory=list)
    suggested_level: int = 0


@dataclass(slots=True)
class DefaultsView:
    """A default-level table and where it comes from."""

    source_org_code: str
    defaults: list[tuple[int, int]]
    updated_by: str = ""
    updated_at: datetime | None = None


class RecognitionService(RecognitionImportOps):
    """Hardship recognition."""

    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.groups = GroupRepository()

    async def _school_of(
        self, session: AsyncSession, caller: CallerContext, student_id: str
    ) -> Any:
        """The student's current enrolment, which must lie in the caller's subtree."""
        current = (
            (await self.d.students.current_enrollments(session, [student_id])).get(student_id)
            if student_id
            else None
        )
        if current is None or not caller.in_scope(current.school_org_path):
            raise NotFound(
                "学生不存在或不在本单位管辖范围内", code="STUDENT_NOT_FOUND", field="student_id"
            )
        return current

    async def _record(
        self,
        session: AsyncSession,
        caller: CallerContext,
        *,
        student_id: str,
        school: Any,
        school_year: str,
        term: Term,
        level: int,
        basis_groups: Sequence[int],
        basis_note: str,
        recognized_on: str,
        change_reason: str,
        expected_version: int,
        import_id: str = "",
        existing: list[Any] | None = None,
    ) -> tuple[int | None, list[tuple[str, str, str]], tuple[str, Message] | None]:
        """Add an entry unless it repeats the level in force; returns (id, problems, event)."""
        d = self.d
        rows = (
            existing
            if existing is not None
            else await d.recognitions.history(session, student_id, school_year)
        )
        entries = [entry(r) for r in rows]
        previous = in_force(entries, term)
        latest = max(entries, key=lambda e: e.version) if entries else None
        problems = check_level_rules(
            level=level,
            basis_groups=basis_groups,
            basis_note=basis_note,
            recognized_on=recognized_on,
            change_reason=change_reason,
            previous_level=previous.level if previous else None,
            today=d.today(),
        )
        if expected_version and (latest is None or latest.version != expected_version):
            raise Conflict(
                "认定记录已被他人修改，请刷新后重试",
                code="VERSION_CONFLICT",
                field="expected_version",
                details={"current_version": latest.version if latest else 0},
            )
        if problems:
            return None, problems, None
        prev_row = next((r for r in rows if previous and r.id == previous.recognition_id), None)
        if (
            prev_row is not None
            and prev_row.level == level
            and prev_row.term == term
            and prev_row.basis_groups == ",".join(str(g) for g in sorted(set(basis_groups)))
            and prev_row.basis_note == basis_note
        ):
            return prev_row.id, [], None  # nothing new: recording it again changes nothing
        now = d.now()
        version = (latest.version if latest else 0) + 1
        rid = await d.recognitions.insert(
            session,
            {
                "student_id": student_id,
                "school_org_code": school.school_org_code,
                "school_org_path": school.school_org_path,
                "school_year": school_year,
                "term": int(term),
                "level": int(level),
                "basis_groups": ",".join(str(g) for g in sorted(set(basis_groups))),
                "basis_note": basis_note,
                "recognized_on": recognized_on or d.today().isoformat(),
                "change_reason": change_reason,
                "is_current": False,
                "recorded_by": caller.account_id,
                "recorded_at": now,
                "version": version,
                "import_id": import_id,
            },
        )
        await d.recognitions.set_current(session, [(student_id, school_year)])
        student = (await d.students.persons_by_id(session, [student_id]))[student_id]
        event = events_pb2.RecognitionRecorded(
            meta=meta(caller, school.school_org_path),
            recognition_id=str(rid),
            student_id=student_id,
            id_number_blind_index=student.id_number_bi,
            school_org_code=school.school_org_code,
            school_org_path=school.school_org_path,
            school_year=school_year,
            term=int(term),
            level=int(level),
            previous_level=previous.level if previous else 0,
            recognized_on=recognized_on or d.today().isoformat(),
        )
        return rid, [], (RECOGNITION_RECORDED, event)

    async def recognize(
        self,
        caller: CallerContext,
        *,
        student_id: str,
        school_year: str,
        term: int,
        level: int,
        basis_groups: Sequence[int],
        basis_note: str,
        recognized_on: str,
        change_reason: str,
        expected_version: int,
    ) -> RecognitionView:
        """Record a student's level for a school year from a term on (history kept)."""
        d = self.d
        year = d.school_year(school_year)
        t = check_term(term)
        if level not in HardshipLevel.__members__.values():
            raise InvalidArgument(
                "认定档次应为特别困难、困难、一般困难或不困难", code="LEVEL_REQUIRED", field="level"
            )
        async with d.db.write() as session:
            school = await self._school_of(session, caller, student_id)
            if school.status not in ON_ROLL:
                raise FailedPrecondition(
                    "该学生已不在籍", code="STUDENT_NOT_ENROLLED", field="student_id"
                )
            rid, problems, event = await self._record(
                session,
                caller,
                student_id=student_id,
                school=school,
                school_year=year,
                term=t,
                level=level,
                basis_groups=list(basis_groups),
                basis_note=basis_note.strip(),
                recognized_on=recognized_on.strip(),
                change_reason=change_reason.strip(),
                expected_version=expected_version,
            )
            if problems:
                field_name, code, message = problems[0]
                raise InvalidArgument(message, code=code, field=field_name)
            if event is not None:
                await add_events(session, d.outbox, [event])
            rows = await d.recognitions.history(session, student_id, year)
            student = (await d.students.persons_by_id(session, [student_id]))[student_id]
        row = next(r for r in rows if r.id == rid)
        return recognition_view(row, student_name=student.name, masked=student.id_number_masked)

    async def get(
        self, caller: CallerContext, *, student_id: str, school_year: str
    ) -> tuple[RecognitionView | None, list[RecognitionView]]:
        """The entry in force (now, or at the end of a past year) and the year's history."""
        d = self.d
        year = d.school_year(school_year)
        async with d.db.read() as session:
            if not student_id or not await d.students.visible(session, student_id, caller.org_path):
                raise NotFound(
                    "学生不存在或不在本单位管辖范围内", code="STUDENT_NOT_FOUND", field="student_id"
                )
            rows = await d.recognitions.history(session, student_id, year)
            student = (await d.students.persons_by_id(session, [student_id]))[student_id]
        rows = [r for r in rows if caller.in_scope(r.school_org_path)]
        term = term_of(d.today()) if year == d.current_school_year() else None
        chosen = in_force([entry(r) for r in rows], term)
        views = [
            recognition_view(r, student_name=student.name, masked=student.id_number_masked)
            for r in rows
        ]
        current = next(
            (v for v in views if chosen and v.recognition_id == str(chosen.recognition_id)), None
        )
        return current, views

    async def list(
        self,
        caller: CallerContext,
        *,
        org_code: str,
        school_year: str,
        term: int,
        levels: Sequence[int],
        stage: int,
        grade: str,
        class_name: str,
        page: Any,
    ) -> tuple[list[RecognitionView], Page]:
        """Recognitions in force in a subtree (for a term, or now)."""
        d = self.d
        year = d.school_year(school_year)
        if term:
            check_term(term)
        key = (org_code, year, term, tuple(levels), stage, grade, class_name)
        offset, limit = page_window(page, key)
        async with d.db.read() as session:
            root = await d.scope(session, caller, org_code)
            rows, total = await d.recognitions.list(
                session,
                RecognitionFilters(
                    path=root.org_path, school_year=year, term=term, levels=tuple(levels),
                    stage=stage, grade=grade.strip(), class_name=class_name.strip(),
                ),
                offset=offset,
                limit=limit,
            )  # fmt: skip
        return [recognition_view(r) for r in rows], Page(
            next_token(offset, limit, len(rows), total, key), total
        )

    async def pending(
        self, caller: CallerContext, *, org_code: str, school_year: str, page: Any
    ) -> tuple[list[PendingView], Page]:
        """Special-group students with no recognition for the year, with a suggested level."""
        d = self.d
        year = d.school_year(school_year)
        key = (org_code, year)
        offset, limit = page_window(page, key)
        async with d.db.read() as session:
            root = await d.scope(session, caller, org_code)
            rows, total = await self.groups.unrecognized(
                session, path=root.org_path, school_year=year, offset=offset, limit=limit
            )
            ids = [r.student_id for r in rows]
            groups = await d.students.active_groups(session, ids, year)
            schools = await d.orgs.by_codes(session, {r.school_org_code for r in rows})
            tables: dict[str, dict[int, int]] = {}
            views = []
            for r in rows:
                province = await self._province_of(session, r.school_org_path)
                if province not in tables:
                    tables[province] = dict(
                        (await self._defaults_for(session, r.school_org_path)).defaults
                    )
                mine = [g for g in groups.get(r.student_id, []) if g.verification_status != 3]
                level = suggested_level([g.special_group for g in mine], tables[province])
                views.append(
                    PendingView(
                        student_id=r.student_id,
                        name=r.name,
                        id_number_masked=r.id_number_masked,
                        school_org_code=r.school_org_code,
                        school_name=schools[r.school_org_code].name
                        if r.school_org_code in schools
                        else "",
                        stage=r.stage,
                        grade=r.grade,
                        class_name=r.class_name,
                        groups=[
                            GroupMembershipView(
                                g.special_group, g.source, str(g.id), g.verification_status
                            )
                            for g in mine
                        ],
                        suggested_level=int(level) if level else 0,
                    )
                )
        return views, Page(next_token(offset, limit, len(rows), total, key), total)

    async def _province_of(self, session: AsyncSession, path: str) -> str:
        codes = [p for p in path.split("/") if p]
        orgs = await self.d.orgs.by_codes(session, codes)
        return next((c for c in codes if c in orgs and orgs[c].level == "province"), "")

    async def _defaults_for(self, session: AsyncSession, path: str) -> DefaultsView:
        """The table of the path's province, else of the national node."""
        codes = [p for p in path.split("/") if p]
        orgs = await self.d.orgs.by_codes(session, codes)
        candidates = [
            c for c in reversed(codes) if c in orgs and orgs[c].level in ("province", "national")
        ]
        tables = await self.d.recognitions.defaults(session, candidates)
        for code in candidates:
            if code in tables:
                rows = tables[code]
                return DefaultsView(
                    source_org_code=code,
                    defaults=[(r.special_group, r.level) for r in rows],
                    updated_by=rows[0].updated_by,
                    updated_at=max(r.updated_at for r in rows),
                )
        return DefaultsView(source_org_code="", defaults=[])

    async def set_defaults(
        self, caller: CallerContext, *, org_code: str, defaults: Sequence[tuple[int, int]]
    ) -> DefaultsView:
        """Replace the default-level table of a province (or the national one)."""
        d = self.d
        require_level(caller, "national", "province", action="设置特殊群体默认认定档次")
        table: dict[int, int] = {}
        for i, (group, level) in enumerate(defaults):
            if group not in SpecialGroup.__members__.values():
                raise InvalidArgument(
                    "特殊群体类别应为13类之一", code="GROUP_UNKNOWN", field=f"defaults[{i}].group"
                )
            if level not in HardshipLevel.__members__.values():
                raise InvalidArgument(
                    "认定档次无效", code="LEVEL_REQUIRED", field=f"defaults[{i}].level"
                )
            if group in table:
                raise InvalidArgument(
                    "同一类别重复设置", code="GROUP_DUPLICATE", field=f"defaults[{i}].group"
                )
            table[group] = level
        async with d.db.write() as session:
            org = await d.scope(session, caller, org_code)
            if org.level not in ("national", "province") or not org.org_code:
                raise InvalidArgument(
                    "默认档次只能由国家或省级设置", code="ORG_LEVEL", field="org_code"
                )
            await d.recognitions.replace_defaults(
                session, org.org_code, table, caller.account_id, d.now()
            )
        return DefaultsView(
            source_org_code=org.org_code,
            defaults=sorted(table.items()),
            updated_by=caller.account_id,
            updated_at=d.now(),
        )

    async def get_defaults(self, caller: CallerContext, *, org_code: str) -> DefaultsView:
        """The default-level table that applies to an org."""
        async with self.d.db.read() as session:
            org = await self.d.scope(session, caller, org_code)
            return await self._defaults_for(session, org.org_path)

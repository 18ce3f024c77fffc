"""Memberships: school verification (核实), self-collected members (自采集), ending, progress
per region or school, and the period listing reconcile reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from zizhu_common.rpc import CallerContext
from zizhu_contracts.roster.v1 import events_pb2

from roster_service.domain.common import (
    ON_ROLL,
    parse_date,
    school_year_range,
    valid_school_year,
)
from roster_service.domain.groups import (
    MAX_VERIFY,
    MembershipStatus,
    Source,
    Verification,
)
from roster_service.events import (
    MEMBERSHIP_ADDED,
    MEMBERSHIP_ENDED,
    MEMBERSHIP_VERIFIED,
    add_events,
    meta,
)
from roster_service.repository.groups import GroupRepository, MembershipFilters
from roster_service.service.context import Deps, next_token, page_window
from roster_service.service.group_views import (
    LEVEL_NUM,
    MembershipView,
    OrgRefView,
    PeriodMemberView,
    ProgressRow,
    add_counts,
    added_event,
    check_group,
    child_code,
    ended_event,
    membership_pk,
    membership_view,
    period_range,
)
from roster_service.service.views import Page


class MembershipOps:
    """Memberships (mixed into GroupService)."""

    d: Deps
    repo: GroupRepository

    async def list_memberships(
        self,
        caller: CallerContext,
        *,
        org_code: str,
        student_id: str,
        groups: Sequence[int],
        source: int,
        statuses: Sequence[int],
        verification_statuses: Sequence[int],
        batch_id: str,
        school_year: str,
        period_year: str,
        period_term: int,
        page: Any,
    ) -> tuple[list[MembershipView], Page]:
        """Memberships of students at schools in a subtree."""
        d = self.d
        key = (
            org_code,
            student_id,
            tuple(groups),
            source,
            tuple(statuses),
            tuple(verification_statuses),
            batch_id,
            school_year,
            period_year,
            period_term,
        )
        offset, limit = page_window(page, key)
        lo = hi = ""
        if period_year:
            if not valid_school_year(period_year):
                raise InvalidArgument(
                    "学年格式应为YYYY-YYYY", code="SCHOOL_YEAR_FORMAT", field="period.school_year"
                )
            start, end = period_range(period_year, period_term)
            lo, hi = start.isoformat(), end.isoformat()
            school_year = school_year or period_year
        if school_year and not valid_school_year(school_year):
            raise InvalidArgument(
                "学年格式应为YYYY-YYYY", code="SCHOOL_YEAR_FORMAT", field="school_year"
            )
        async with d.db.read() as session:
            root = await d.scope(session, caller, org_code)
            f = MembershipFilters(
                path=root.org_path,
                student_id=student_id,
                groups=tuple(groups),
                source=source,
                statuses=tuple(statuses),
                verification_statuses=tuple(verification_statuses),
                batch_id=batch_id,
                school_year=school_year,
                period_lo=lo,
                period_hi=hi,
            )
            rows, total = await self.repo.list_memberships(session, f, offset=offset, limit=limit)
            schools = await d.orgs.by_codes(session, {r.school_org_code for r in rows})
        views = [
            membership_view(
                r, schools[r.school_org_code].name if r.school_org_code in schools else ""
            )
            for r in rows
        ]
        return views, Page(next_token(offset, limit, len(rows), total, key), total)

    async def _memberships_in_scope(
        self, session: AsyncSession, caller: CallerContext, ids: Sequence[int]
    ) -> list[Any]:
        rows = await self.repo.memberships_by_ids(session, ids)
        if len(rows) != len(set(ids)) or any(not caller.in_scope(r.school_org_path) for r in rows):
            raise NotFound(
                "特殊群体记录不存在或不在本单位管辖范围内",
                code="MEMBERSHIP_NOT_FOUND",
                field="membership_ids",
            )
        return rows

    async def verify(
        self, caller: CallerContext, *, membership_ids: Sequence[str], result: int, note: str
    ) -> list[MembershipView]:
        """A school confirms or disputes issued memberships of its students (all or nothing)."""
        d = self.d
        if not membership_ids:
            raise InvalidArgument(
                "请选择要核实的记录", code="MEMBERSHIP_IDS_REQUIRED", field="membership_ids"
            )
        if len(membership_ids) > MAX_VERIFY:
            raise InvalidArgument(
                f"每次最多核实{MAX_VERIFY}条", code="TOO_MANY_IDS", field="membership_ids"
            )
        if result not in (Verification.CONFIRMED, Verification.REJECTED):
            raise InvalidArgument(
                "核实结果应为已核实或核实不符", code="RESULT_REQUIRED", field="result"
            )
        note = note.strip()
        if result == Verification.REJECTED and not note:
            raise InvalidArgument("核实不符须填写说明", code="NOTE_REQUIRED", field="note")
        if len(note) > 500:
            raise InvalidArgument("说明不能超过500字", code="NOTE_TOO_LONG", field="note")
        ids = sorted({membership_pk(i, "membership_ids") for i in membership_ids})
        now = d.now()
        async with d.db.write() as session:
            rows = await self._memberships_in_scope(session, caller, ids)
            for r in rows:
                if r.source != Source.ISSUED:
                    raise FailedPrecondition(
                        "自采集记录无需核实",
                        code="NOT_ISSUED",
                        field="membership_ids",
                        details={"membership_id": str(r.id)},
                    )
                if r.status != MembershipStatus.ACTIVE:
                    raise FailedPrecondition(
                        "该记录已退出，不能核实",
                        code="MEMBERSHIP_ENDED",
                        field="membership_ids",
                        details={"membership_id": str(r.id)},
                    )
            events: list[tuple[str, Message]] = []
            for r in rows:
                await self.repo.update_membership(
                    session,
                    r.id,
                    {
                        "verification_status": int(result),
                        "verification_note": note,
                        "verified_by": caller.account_id,
                        "verified_at": now,
                        "updated_at": now,
                    },
                )
                msg = events_pb2.MembershipVerified(
                    meta=meta(caller, r.school_org_path),
                    membership_id=str(r.id),
                    student_id=r.student_id,
                    school_org_code=r.school_org_code,
                    group=r.special_group,
                    verification_status=int(result),
                    school_org_path=r.school_org_path,
                    school_year=r.school_year,
                    note=note,
                )
                msg.verified_at.FromDatetime(now)
                events.append((MEMBERSHIP_VERIFIED, msg))
            await add_events(session, d.outbox, events)
            updated = await self.repo.memberships_by_ids(session, ids)
            schools = await d.orgs.by_codes(session, {r.school_org_code for r in updated})
        return [
            membership_view(
                r, schools[r.school_org_code].name if r.school_org_code in schools else ""
            )
            for r in updated
        ]

    async def add_self_collected(
        self,
        caller: CallerContext,
        *,
        student_id: str,
        id_type: int,
        id_number: str,
        group: int,
        valid_from: str,
        valid_to: str,
        evidence_note: str,
        school_year: str,
        students: Any,
    ) -> MembershipView:
        """A school adds a member the issued lists missed, with its evidence (自采集)."""
        d = self.d
        check_group(group, "group")
        evidence_note = evidence_note.strip()
        if not evidence_note:
            raise InvalidArgument(
                "自采集须说明证明材料", code="EVIDENCE_REQUIRED", field="evidence_note"
            )
        if len(evidence_note) > 1000:
            raise InvalidArgument(
                "证明材料说明不能超过1000字", code="NOTE_TOO_LONG", field="evidence_note"
            )
        year = d.school_year(school_year)
        start, end = school_year_range(year)
        dates = []
        for name, value in (("valid_from", valid_from), ("valid_to", valid_to)):
            if not value:
                dates.append("")
                continue
            parsed = parse_date(value)
            if parsed is None:
                raise InvalidArgument("日期应为YYYY-MM-DD", code="DATE_FORMAT", field=name)
            dates.append(parsed.isoformat())
        vf = dates[0] or start.isoformat()
        vt = dates[1]
        if vt and vt < vf:
            raise InvalidArgument(
                "有效期止早于有效期起", code="VALID_TO_BEFORE_FROM", field="valid_to"
            )
        if vf > end.isoformat() or (vt and vt < start.isoformat()):
            raise InvalidArgument(
                f"有效期不在{year}学年内", code="VALIDITY_OUTSIDE_YEAR", field="valid_from"
            )
        now = d.now()
        async with d.db.write() as session:
            sid = await students.resolve_student(session, caller, student_id, id_type, id_number)
            current = (await d.students.current_enrollments(session, [sid])).get(sid)
            if current is None or not caller.in_scope(current.school_org_path):
                raise NotFound(
                    "学生不存在或不在本单位管辖范围内", code="STUDENT_NOT_FOUND", field="student_id"
                )
            if current.status not in ON_ROLL:
                raise FailedPrecondition(
                    "该学生已不在籍，不能采集", code="STUDENT_NOT_ENROLLED", field="student_id"
                )
            existing = await self.repo.active_membership(session, sid, group, year)
            if existing is not None:
                raise AlreadyExists(
                    "该学生本学年已在此类特殊群体中",
                    code="MEMBERSHIP_EXISTS",
                    field="group",
                    details={"membership_id": str(existing.id)},
                )
            mid = await self.repo.add_membership(
                session,
                {
                    "student_id": sid,
                    "school_year": year,
                    "special_group": group,
                    "source": Source.SELF_COLLECTED,
                    "school_org_code": current.school_org_code,
                    "school_org_path": current.school_org_path,
                    "stage": current.stage,
                    "valid_from": vf,
                    "valid_to": vt,
                    "status": MembershipStatus.ACTIVE,
                    "verification_status": Verification.CONFIRMED,
                    "verified_by": caller.account_id,
                    "verified_at": now,
                    "evidence_note": evidence_note,
                    "created_by": caller.account_id,
                    "created_at": now,
                    "updated_at": now,
                    "version": 1,
                },
            )
            row = (await self.repo.memberships_by_ids(session, [mid]))[0]
            await add_events(
                session, d.outbox, [(MEMBERSHIP_ADDED, added_event(row, row.id_number_bi, caller))]
            )
            school = await d.orgs.get(session, row.school_org_code)
        return membership_view(row, school.name if school else "")

    async def end(
        self, caller: CallerContext, *, membership_id: str, ended_on: str, reason: str
    ) -> MembershipView:
        """End a membership (the student left the group); it stays as history."""
        d = self.d
        mid = membership_pk(membership_id)
        reason = reason.strip()
        if not reason:
            raise InvalidArgument("须填写退出原因", code="REASON_REQUIRED", field="reason")
        if len(reason) > 500:
            raise InvalidArgument("退出原因不能超过500字", code="NOTE_TOO_LONG", field="reason")
        day = parse_date(ended_on) if ended_on else d.today()
        if day is None:
            raise InvalidArgument("日期应为YYYY-MM-DD", code="DATE_FORMAT", field="ended_on")
        if day > d.today():
            raise InvalidArgument("退出日期不能晚于今天", code="DATE_FUTURE", field="ended_on")
        now = d.now()
        async with d.db.write() as session:
            row = (await self._memberships_in_scope(session, caller, [mid]))[0]
            if row.status != MembershipStatus.ACTIVE:
                raise FailedPrecondition(
                    "该记录已退出", code="MEMBERSHIP_ENDED", field="membership_id"
                )
            if row.valid_from and day.isoformat() < row.valid_from:
                raise InvalidArgument(
                    "退出日期早于有效期起", code="ENDED_BEFORE_VALID", field="ended_on"
                )
            await self.repo.update_membership(
                session,
                mid,
                {
                    "status": MembershipStatus.ENDED,
                    "end_reason": reason,
                    "ended_on": day.isoformat(),
                    "ended_at": now,
                    "updated_at": now,
                },
            )
            row = (await self.repo.memberships_by_ids(session, [mid]))[0]
            await add_events(session, d.outbox, [(MEMBERSHIP_ENDED, ended_event(row, caller))])
            school = await d.orgs.get(session, row.school_org_code)
        return membership_view(row, school.name if school else "")

    async def progress(
        self, caller: CallerContext, *, org_code: str, school_year: str, batch_id: str, group: int
    ) -> list[ProgressRow]:
        """Verification progress: the total, then one row per child region or school."""
        d = self.d
        year = d.school_year(school_year)
        if group:
            check_group(group, "group")
        async with d.db.read() as session:
            root = await d.scope(session, caller, org_code)
            if batch_id:
                await self._visible_batch(session, caller, batch_id)
            counts = await self.repo.progress(
                session, path=root.org_path, school_year=year, batch_id=batch_id, group=group
            )
            children = (
                {c.org_code: c for c in await d.orgs.children(session, root.org_code)}
                if root.org_code
                else {}
            )
            extra = set()
            for r in counts:
                code = child_code(r.school_org_path, root.org_path)
                if code and code not in children:
                    extra.add(code)
            if extra:
                children.update(await d.orgs.by_codes(session, extra))
        total = ProgressRow(
            kind=1,
            org=OrgRefView(root.org_code, root.name, LEVEL_NUM.get(root.level, 0), root.org_path),
        )
        per: dict[str, ProgressRow] = {}
        for code, org in children.items():
            per[code] = ProgressRow(
                kind=4 if org.is_school else 3,
                org=OrgRefView(code, org.name, LEVEL_NUM.get(org.level, 0), org.org_path),
            )
        for r in counts:
            code = child_code(r.school_org_path, root.org_path)
            targets = [total] + ([per[code]] if code in per else [])
            for target in targets:
                add_counts(target, r.source, r.status, r.verification_status, r.n)
        return [total] + [per[c] for c in sorted(per)]

    async def members_for_period(
        self,
        caller: CallerContext,
        *,
        school_year: str,
        term: int,
        org_code: str,
        stage: int,
        cursor: str,
        limit: int,
    ) -> tuple[list[PeriodMemberView], str]:
        """Special-group students enrolled during a period with their counting groups, by cursor."""
        d = self.d
        if not valid_school_year(school_year):
            raise InvalidArgument(
                "学年格式应为YYYY-YYYY", code="SCHOOL_YEAR_FORMAT", field="period.school_year"
            )
        if limit < 0 or limit > 10_000:
            raise InvalidArgument("每批最多10000名", code="LIMIT_INVALID", field="limit")
        limit = limit or 5000
        start, end = period_range(school_year, term)
        lo, hi = start.isoformat(), end.isoformat()
        async with d.db.read() as session:
            root = await d.scope(session, caller, org_code)
            ids = await self.repo.period_student_ids(
                session, path=root.org_path, school_year=school_year, lo=lo, hi=hi,
                stage=stage, cursor=cursor, limit=limit,
            )  # fmt: skip
            if not ids:
                return [], ""
            memberships = await self.repo.period_memberships(session, ids, school_year, lo, hi)
            persons = await d.students.persons_by_id(session, ids)
            enrollments = await d.students.enrollments_of(session, ids)
        from roster_service.domain.students import was_in_school
        from roster_service.service.views import GroupMembershipView

        by_student: dict[str, list[Any]] = {}
        for m in memberships:
            by_student.setdefault(m.student_id, []).append(m)
        members = []
        for sid in ids:
            p = persons[sid]
            candidates = [
                e
                for e in enrollments.get(sid, [])
                if caller.in_scope(e.school_org_path)
                and e.school_org_path.startswith(root.org_path)
                and (not stage or e.stage == stage)
                and was_in_school(e.status, e.enrolled_on, e.left_on, e.status_date, start, end)
            ]
            if not candidates:
                continue
            e = max(candidates, key=lambda x: (x.is_current, x.enrolled_on))
            members.append(
                PeriodMemberView(
                    student_id=sid,
                    id_number_blind_index=p.id_number_bi,
                    name=p.name,
                    id_number_masked=p.id_number_masked,
                    school_org_code=e.school_org_code,
                    school_org_path=e.school_org_path,
                    stage=e.stage,
                    grade=e.grade,
                    class_name=e.class_name,
                    groups=[
                        GroupMembershipView(
                            m.special_group, m.source, str(m.id), m.verification_status
                        )
                        for m in by_student.get(sid, [])
                    ],
                )
            )
        return members, ids[-1] if len(ids) == limit else ""

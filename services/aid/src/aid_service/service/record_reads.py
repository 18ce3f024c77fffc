"""Reads of aid records inside the caller's subtree: one record (with the audited reveal of the
full ID number), its history, filtered pages with the windows that apply, the .xlsx export, and
the approved-records feed of reconcile and funding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from zizhu_common.idnumber import IdentifierError, normalize_resident_id
from zizhu_common.rpc import CallerContext

from aid_service import events, xlsx
from aid_service.domain.enums import Category, Level, RecordStatus, Stage
from aid_service.domain.orgs import OrgNode
from aid_service.domain.periods import AidPeriod, local_text
from aid_service.domain.projects import Project
from aid_service.domain.records import AidRecord, Transition, creation_transition
from aid_service.domain.windows import Governing
from aid_service.repository import RecordQuery
from aid_service.service.context import (
    Deps,
    is_system,
    level_of,
    next_token,
    out_of_scope,
    page_of,
    scope_path,
)
from aid_service.service.records import MAX_EXPORT, ListFilter, in_scope
from aid_service.service.windows import WindowGate


class RecordReads:
    """Everyone's reads of records."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def _in_scope(self, caller: CallerContext, record: AidRecord | None) -> AidRecord:
        return in_scope(caller, record)

    async def get(
        self, caller: CallerContext, record_id: str, *, reveal_id_number: bool = False
    ) -> tuple[AidRecord, str, str, str, list[Governing]]:
        """(record, project name, school name, full ID number or "", governing windows)."""
        now = self.deps.now()
        async with self.deps.db.read() as session:
            r = self._in_scope(caller, await self.deps.records.get(session, record_id))
            project = await self.deps.projects.get(session, r.project_code)
            school = await self.deps.orgs.get(session, r.school_org_code)
            windows = await WindowGate(self.deps, session, now).all_phases(
                r.project_code, r.period, r.school_org_path
            )
        full = ""
        if reveal_id_number:
            if not (
                is_system(caller)
                or (level_of(caller) is Level.SCHOOL and caller.has_role("operator", "auditor"))
            ):
                raise PermissionDenied(
                    "只有学校业务人员可以查看完整证件号码",
                    code="REVEAL_NOT_ALLOWED",
                    field="reveal_id_number",
                )
            full = await self.deps.roster.reveal_id_number(caller, r.student_id)
            async with self.deps.db.write() as session:
                await self.deps.outbox.add(
                    session,
                    events.AUDIT_RECORDED,
                    events.action_audited(
                        caller,
                        action="aid.GetRecord",
                        object_type="aid_record",
                        object_id=r.record_id,
                        detail="查看资助记录的完整证件号码",
                        sensitive_read=True,
                        org_path=r.school_org_path,
                    ),
                )
        return r, project.name if project else "", school.name if school else "", full, windows

    async def history(self, caller: CallerContext, record_id: str) -> list[Transition]:
        """Every transition of a record, oldest first (deleted records included)."""
        async with self.deps.db.read() as session:
            r = await self.deps.records.get(session, record_id)
            if r is None or not (is_system(caller) or caller.in_scope(r.school_org_path)):
                raise out_of_scope("资助记录", field="record_id")
            items = [
                creation_transition(r),
                *await self.deps.records.transitions(session, record_id),
            ]
            orgs = await self.deps.orgs.get_many(session, [x.org_code for x in items])
        for x in items:
            org = orgs.get(x.org_code)
            x.org_name = org.name if org else ""
        return items

    async def query_for(
        self, session: AsyncSession, caller: CallerContext, f: ListFilter
    ) -> RecordQuery:
        """The repository query of a request's filters, inside the caller's subtree."""
        path = await scope_path(self.deps, session, caller, f.org_code, field="org_code")
        blind = ""
        if f.id_number:
            try:
                blind = self.deps.blind_index(normalize_resident_id(f.id_number))
            except IdentifierError:
                blind = self.deps.blind_index(f.id_number.strip().upper())
        try:
            statuses = tuple(RecordStatus(s) for s in f.statuses if s)
            stage = Stage(f.stage) if f.stage else None
            categories = tuple(Category(c) for c in f.categories if c)
        except ValueError:
            raise InvalidArgument("筛选条件取值无效", code="FILTER_INVALID") from None
        return RecordQuery(
            scope_path=path,
            project_code=f.project_code,
            period=f.period,
            statuses=statuses,
            pending_org_code=f.pending_org_code,
            stage=stage,
            categories=categories,
            student_name=f.student_name.strip(),
            blind_index=blind,
            student_number=f.student_number.strip(),
            grade=f.grade.strip(),
            class_name=f.class_name.strip(),
            entered_by=f.entered_by.strip(),
        )

    async def page(
        self, caller: CallerContext, f: ListFilter, *, page_size: int, page_token: str
    ) -> tuple[list[AidRecord], int, str, dict[str, str], dict[str, str], list[Governing]]:
        """(records, total, next token, project names, school names, windows for display)."""
        page = page_of(page_size, page_token, f)
        now = self.deps.now()
        async with self.deps.db.read() as session:
            query = await self.query_for(session, caller, f)
            total = await self.deps.records.count(session, query)
            records = await self.deps.records.find(
                session, query, offset=page.offset, limit=page.limit
            )
            projects = await self.deps.projects.get_many(session, [r.project_code for r in records])
            schools = await self.deps.orgs.get_many(session, [r.school_org_code for r in records])
            gate = WindowGate(self.deps, session, now)
            windows: list[Governing] = []
            pairs = (
                [(f.project_code, f.period)]
                if f.project_code and f.period
                else list(dict.fromkeys((r.project_code, r.period) for r in records))
            )
            for code, period in pairs:
                windows.extend(await gate.all_phases(code, period, query.scope_path))
        return (
            records,
            total,
            next_token(page, total, f),
            {c: p.name for c, p in projects.items()},
            {c: o.name for c, o in schools.items()},
            windows,
        )

    async def export(self, caller: CallerContext, f: ListFilter) -> tuple[bytes, int]:
        """The records of a filter as .xlsx (audited)."""
        async with self.deps.db.read() as session:
            query = await self.query_for(session, caller, f)
            total = await self.deps.records.count(session, query)
            if total > MAX_EXPORT:
                raise FailedPrecondition(
                    f"导出最多{MAX_EXPORT}条，当前条件下有{total}条，请缩小范围",
                    code="EXPORT_TOO_LARGE",
                )
            records = await self.deps.records.find(session, query)
            projects = await self.deps.projects.get_many(session, [r.project_code for r in records])
            schools = await self.deps.orgs.get_many(session, [r.school_org_code for r in records])
        content = xlsx.table(
            EXPORT_HEADERS,
            (
                _export_row(r, projects.get(r.project_code), schools.get(r.school_org_code))
                for r in records
            ),
            sheet="资助名单",
        )
        async with self.deps.db.write() as session:
            await self.deps.outbox.add(
                session,
                events.AUDIT_RECORDED,
                events.action_audited(
                    caller,
                    action="aid.ExportRecords",
                    object_type="aid_record",
                    detail=f"导出资助名单{len(records)}条",
                    org_path=query.scope_path,
                ),
            )
        return content, len(records)

    async def approved_page(
        self,
        caller: CallerContext,
        *,
        period: AidPeriod,
        org_code: str,
        categories: Sequence[int],
        project_code: str,
        cursor: str,
        limit: int,
    ) -> tuple[list[AidRecord], str]:
        """Approved records of a period by cursor (reconcile, funding)."""
        if limit < 0 or limit > 10_000:
            raise InvalidArgument("每次最多10000条", code="LIMIT_INVALID", field="limit")
        limit = limit or 5000
        async with self.deps.db.read() as session:
            path = await scope_path(self.deps, session, caller, org_code, field="org_code")
            records = await self.deps.records.approved_page(
                session,
                period=period,
                scope_path=path,
                categories=[Category(c) for c in categories if c],
                project_code=project_code,
                after=cursor,
                limit=limit,
            )
        return records, records[-1].record_id if len(records) == limit else ""


EXPORT_HEADERS = (
    ("记录号", 28), ("项目代码", 14), ("项目名称", 26), ("学年", 11), ("学期", 9),
    ("学校标识码", 13), ("学校名称", 26), ("姓名", 10), ("证件号码", 21), ("学籍号", 22),
    ("年级", 10), ("班级", 10), ("资助档次", 9), ("资助金额(元)", 12), ("困难认定", 10),
    ("银行卡号", 22), ("状态", 12), ("待审核单位", 13), ("审核意见", 30), ("录入时间", 20),
    ("上报时间", 20), ("审核通过时间", 20),
)  # fmt: skip


def _export_row(r: AidRecord, project: Project | None, school: OrgNode | None) -> list[Any]:
    def when(v: Any) -> str:
        return local_text(v) if v else ""

    return [
        r.record_id, r.project_code, project.name if project else "", r.period.school_year,
        r.period.term.label, r.school_org_code, school.name if school else "", r.student_name,
        r.id_number_masked, r.student_number, r.grade, r.class_name, r.tier_code,
        r.amount_fen / 100, r.hardship_level.label if r.hardship_level else "",
        r.bank_card_masked, r.status.label, r.pending_org_code, r.last_opinion,
        when(r.entered_at), when(r.submitted_at), when(r.approved_at),
    ]  # fmt: skip

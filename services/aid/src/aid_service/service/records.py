"""Aid records (资助名单): single entry, edit, delete, submit (上报), revoke."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.errors import (
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from zizhu_common.rpc import CallerContext

from aid_service import events
from aid_service.domain.enums import (
    Action,
    IdType,
    Level,
    Phase,
    ProjectStatus,
    RecordStatus,
)
from aid_service.domain.orgs import OrgNode
from aid_service.domain.periods import AidPeriod
from aid_service.domain.projects import AmountProblem, Project, choose_amount, yuan
from aid_service.domain.records import (
    AidRecord,
    Refusal,
    Transition,
    audit_chain,
    check_bank_card,
    edit_refusal,
    mask_bank_card,
)
from aid_service.service.context import (
    BANK_CARD_CONTEXT,
    Deps,
    is_system,
    level_of,
    out_of_scope,
    require_levels,
    require_roles,
    school_of,
)
from aid_service.service.entry import (
    EntryRow,
    build_records,
    check_in_database,
    check_locally,
    check_with_roster,
)
from aid_service.service.projects import visible
from aid_service.service.windows import WindowGate

MAX_BATCH = 10_000
MAX_EXPORT = 200_000
MAX_OPINION = 500


@dataclass
class RecordInput:
    """A single entry (资助名单录入)."""

    project_code: str
    period: AidPeriod
    school_org_code: str = ""
    student_id: str = ""
    id_type: int = 0
    id_number: str = ""
    student_name: str = ""
    tier_code: str = ""
    amount_fen: int = 0
    bank_name: str = ""
    bank_card_number: str = ""
    remark: str = ""


@dataclass(frozen=True)
class ListFilter:
    """The filters of ListRecords / ExportRecords / a bulk decision, as requested."""

    org_code: str = ""
    project_code: str = ""
    period: AidPeriod | None = None
    statuses: tuple[int, ...] = ()
    pending_org_code: str = ""
    stage: int = 0
    categories: tuple[int, ...] = ()
    student_name: str = ""
    id_number: str = ""
    student_number: str = ""
    grade: str = ""
    class_name: str = ""
    entered_by: str = ""


def refused(items: Sequence[Refusal], what: str) -> FailedPrecondition:
    """The all-or-nothing refusal of a batch, listing its items (first 100)."""
    first = items[0]
    return FailedPrecondition(
        f"{what}未执行：{len(items)}条记录不符合条件（如记录{first.record_id}：{first.message}）",
        code=first.code if len({i.code for i in items}) == 1 else "BATCH_REFUSED",
        field="record_ids",
        details={
            "items": [
                {"index": i, "record_id": x.record_id, "code": x.code, "message": x.message}
                for i, x in enumerate(items[:100])
            ],
            "refused_count": len(items),
        },
    )


def records_not_found(record_ids: Sequence[str]) -> NotFound:
    """The answer for a batch naming records that are missing, deleted or outside the caller's
    subtree: 404 with the record-not-found code of a single record, listing only the ids given
    (nothing about the records themselves)."""
    single = out_of_scope("资助记录", field="record_ids")
    return NotFound(
        f"{len(record_ids)}条{single.message}",
        code=single.code,
        field=single.field,
        details={"not_found_ids": list(record_ids[:100]), "not_found_count": len(record_ids)},
    )


def record_visible(caller: CallerContext, record: AidRecord | None) -> bool:
    """True when the record exists, is not deleted and lies inside the caller's subtree."""
    return (
        record is not None
        and record.status is not RecordStatus.DELETED
        and (is_system(caller) or caller.in_scope(record.school_org_path))
    )


def in_scope(caller: CallerContext, record: AidRecord | None) -> AidRecord:
    """The record, unless it is missing, deleted or outside the caller's subtree (NOT_FOUND)."""
    if (
        record is None
        or record.status is RecordStatus.DELETED
        or not (is_system(caller) or caller.in_scope(record.school_org_path))
    ):
        raise out_of_scope("资助记录", field="record_id")
    return record


class RecordService:
    """The school's work on its lists, and everyone's reads."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    # --- helpers ------------------------------------------------------------------------

    async def project_for_entry(
        self,
        session: AsyncSession,
        caller: CallerContext,
        code: str,
        school: OrgNode,
        period: AidPeriod,
    ) -> Project:
        """A project the school may enter records for in that period."""
        project = await self.deps.projects.get(session, code)
        if project is None or not visible(caller, project):
            raise out_of_scope("项目", field="project_code")
        if not project.applies_to(school.org_path):
            raise FailedPrecondition(
                "该项目不适用于本校（不在项目设立单位的辖区内）",
                code="PROJECT_NOT_APPLICABLE",
                field="project_code",
            )
        if project.status is not ProjectStatus.ACTIVE:
            raise FailedPrecondition("该项目已停用", code="PROJECT_DISABLED", field="project_code")
        if not project.runs_in(period.school_year):
            raise FailedPrecondition(
                f"该项目在{period.school_year}学年未实施",
                code="PROJECT_NOT_RUNNING",
                field="period",
            )
        if school.stages and project.stage not in school.stages:
            raise FailedPrecondition(
                f"本校没有{project.stage.label}学段，不能录入该项目",
                code="STAGE_NOT_AT_SCHOOL",
                field="project_code",
            )
        return project

    def _in_scope(self, caller: CallerContext, record: AidRecord | None) -> AidRecord:
        return in_scope(caller, record)

    def _school_operator(self, caller: CallerContext, record: AidRecord) -> None:
        if not is_system(caller) and record.school_org_code != caller.org_code:
            raise PermissionDenied(
                "只有记录所在学校可以修改、删除或上报", code="NOT_OWN_SCHOOL", field="record_id"
            )

    # --- single entry ---------------------------------------------------------------------

    async def enter(self, caller: CallerContext, req: RecordInput) -> AidRecord:
        """Validate and create one DRAFT record."""
        require_roles(caller, "operator", what="录入资助名单")
        require_levels(caller, Level.SCHOOL, what="录入资助名单")
        id_type = IdType(req.id_type) if req.id_type else IdType.RESIDENT_ID
        if not req.student_id and not req.id_number:
            raise InvalidArgument(
                "请填写学生编号或身份证件号码", code="STUDENT_REQUIRED", field="id_number"
            )
        row = EntryRow(
            row=1,
            student_name=req.student_name.strip(),
            id_number=req.id_number.strip().upper(),
            id_type=id_type,
            student_id=req.student_id.strip(),
            tier_code=req.tier_code.strip(),
            amount_fen=req.amount_fen,
            bank_name=req.bank_name.strip(),
            bank_card_number=req.bank_card_number.strip().replace(" ", ""),
            remark=req.remark.strip(),
        )
        now = self.deps.now()
        async with self.deps.db.read() as session:
            school = await school_of(self.deps, session, caller, req.school_org_code)
            project = await self.project_for_entry(
                session, caller, req.project_code, school, req.period
            )
            await WindowGate(self.deps, session, now).require_open(
                project.project_code, req.period, school.org_path, Phase.ENTRY
            )
        checked = check_locally(project, [row], today=self.deps.today())
        if checked.issues:
            raise checked.issues[0].as_error()
        checked = await check_with_roster(self.deps, caller, project, req.period, school, checked)
        if checked.issues:
            raise checked.issues[0].as_error()
        async with self.deps.db.write() as session:
            await WindowGate(self.deps, session, self.deps.now()).require_open(
                project.project_code, req.period, school.org_path, Phase.ENTRY
            )
            checked = await check_in_database(
                self.deps, session, project, req.period, school, checked
            )
            if checked.issues:
                raise checked.issues[0].as_error()
            [record] = build_records(
                self.deps, caller, project, req.period, school, checked.rows, action=Action.ENTERED
            )
            await self.deps.records.insert_many(session, [record])
        return record

    async def update(
        self, caller: CallerContext, record_id: str, changes: dict[str, Any], expected_version: int
    ) -> AidRecord:
        """Edit a DRAFT or RETURNED record inside the entry window."""
        require_roles(caller, "operator", what="修改资助名单")
        now = self.deps.now()
        async with self.deps.db.write() as session:
            record = self._in_scope(
                caller, await self.deps.records.get(session, record_id, lock=True)
            )
            self._school_operator(caller, record)
            if expected_version and expected_version != record.version:
                raise Conflict("记录已被他人修改，请刷新后重试", code="VERSION_CONFLICT")
            refusal = edit_refusal(record)
            if refusal:
                raise FailedPrecondition(refusal.message, code=refusal.code, field="record_id")
            await WindowGate(self.deps, session, now).require_open(
                record.project_code, record.period, record.school_org_path, Phase.ENTRY
            )
            project = await self.deps.projects.get(session, record.project_code)
            assert project is not None
            updated = replace(record)
            if "tier_code" in changes or "amount_fen" in changes:
                tier = changes.get("tier_code")
                amount = changes.get("amount_fen")
                try:
                    choice = choose_amount(
                        project,
                        tier_code=tier
                        if tier is not None
                        else ("" if amount else record.tier_code),
                        amount_fen=amount if amount is not None else 0,
                    )
                except AmountProblem as exc:
                    raise InvalidArgument(exc.message, code=exc.code, field=exc.field) from None
                updated.amount_fen, updated.tier_code = choice.amount_fen, choice.tier_code
            if changes.get("bank_card_number") is not None:
                card = changes["bank_card_number"].strip().replace(" ", "")
                problem = check_bank_card(card)
                if problem:
                    raise InvalidArgument(
                        problem, code="BANK_CARD_INVALID", field="bank_card_number"
                    )
                updated.bank_card_enc = (
                    self.deps.cipher.encrypt(card, context=BANK_CARD_CONTEXT) if card else ""
                )
                updated.bank_card_masked = mask_bank_card(card) if card else ""
            for name, limit in (("bank_name", 50), ("remark", 200)):
                if changes.get(name) is not None:
                    value = changes[name].strip()
                    if len(value) > limit:
                        raise InvalidArgument(
                            f"不超过{limit}个字", code="TEXT_TOO_LONG", field=name
                        )
                    setattr(updated, name, value)
            if updated == record:
                return record
            updated.version = record.version + 1
            updated.updated_at = now
            if not await self.deps.records.save(session, updated, record.version):
                raise Conflict("记录已被他人修改，请刷新后重试", code="VERSION_CONFLICT")
            await self.deps.records.add_transitions(
                session,
                [
                    self._transition(
                        caller, updated, Action.UPDATED, record.status, opinion="", at=now
                    )
                ],
            )
        return updated

    async def delete(self, caller: CallerContext, record_id: str, expected_version: int) -> None:
        """Delete a DRAFT or RETURNED record inside the entry window (kept in its history)."""
        require_roles(caller, "operator", what="删除资助名单")
        now = self.deps.now()
        async with self.deps.db.write() as session:
            record = self._in_scope(
                caller, await self.deps.records.get(session, record_id, lock=True)
            )
            self._school_operator(caller, record)
            if expected_version and expected_version != record.version:
                raise Conflict("记录已被他人修改，请刷新后重试", code="VERSION_CONFLICT")
            refusal = edit_refusal(record)
            if refusal:
                raise FailedPrecondition(refusal.message, code=refusal.code, field="record_id")
            await WindowGate(self.deps, session, now).require_open(
                record.project_code, record.period, record.school_org_path, Phase.ENTRY
            )
            before = record.status
            record.status, record.dedup_key = RecordStatus.DELETED, None
            record.version += 1
            record.updated_at = now
            if not await self.deps.records.save(session, record, record.version - 1):
                raise Conflict("记录已被他人修改，请刷新后重试", code="VERSION_CONFLICT")
            await self.deps.records.add_transitions(
                session,
                [self._transition(caller, record, Action.DELETED, before, opinion="", at=now)],
            )

    def _transition(
        self,
        caller: CallerContext,
        r: AidRecord,
        action: Action,
        before: RecordStatus,
        *,
        opinion: str,
        at: Any,
        level: Level | None = None,
        seq: int | None = None,
    ) -> Transition:
        return Transition(
            record_id=r.record_id,
            seq=seq if seq is not None else r.version,
            action=action,
            from_status=before,
            to_status=r.status,
            level=level or (Level.SCHOOL if is_system(caller) else level_of(caller)),
            org_code=caller.org_code or r.school_org_code,
            actor_account_id=caller.account_id,
            opinion=opinion,
            amount_fen=r.amount_fen,
            at=at,
        )

    # --- submit (上报) -------------------------------------------------------------------

    async def submit(self, caller: CallerContext, record_ids: Sequence[str]) -> list[AidRecord]:
        """Send DRAFT or RETURNED records to the school audit; all or nothing."""
        require_roles(caller, "operator", what="上报资助名单")
        ids = list(dict.fromkeys(record_ids))
        if not ids or len(ids) > MAX_BATCH:
            raise InvalidArgument(
                f"一次上报1至{MAX_BATCH}条记录", code="BATCH_SIZE_INVALID", field="record_ids"
            )
        now = self.deps.now()
        async with self.deps.db.write() as session:
            found = await self.deps.records.get_many(session, ids, lock=True)
            refusals: list[Refusal] = []
            gate = WindowGate(self.deps, session, now)
            records: list[AidRecord] = []
            missing = [rid for rid in ids if not record_visible(caller, found.get(rid))]
            if missing:
                raise records_not_found(missing)
            for rid in ids:
                r = found[rid]
                if not is_system(caller) and r.school_org_code != caller.org_code:
                    refusals.append(Refusal(rid, "NOT_OWN_SCHOOL", "只能上报本校的记录"))
                    continue
                refusal = edit_refusal(r)
                if refusal:
                    refusals.append(refusal)
                    continue
                w = await gate.governing(r.project_code, r.period, r.school_org_path, Phase.ENTRY)
                if w is None or not w.open_at(now):
                    text = f"不在名单录入时间内（{w.text()}）" if w else "资助周期未开启"
                    refusals.append(Refusal(rid, "WINDOW_CLOSED", text))
                    continue
                records.append(r)
            if refusals:
                raise refused(refusals, "上报")
            projects = await self.deps.projects.get_many(session, [r.project_code for r in records])
            transitions, outgoing = await self.mark_submitted(
                session, caller, records, projects, now
            )
            await self.deps.records.save_states(
                session,
                records,
                ["status", "pending_level", "pending_org_code", "audit_chain", "submitted_by",
                 "submitted_at", "updated_at"],
            )  # fmt: skip
            await self.deps.records.add_transitions(session, transitions)
            await self.deps.outbox.add_many(session, outgoing)
        return records

    async def mark_submitted(
        self,
        session: AsyncSession,
        caller: CallerContext,
        records: Sequence[AidRecord],
        projects: dict[str, Project],
        now: Any,
    ) -> tuple[list[Transition], list[tuple[str, Any]]]:
        """Move records to the school audit with their audit chain; (transitions, events)."""
        chains: dict[tuple[str, str], Any] = {}
        outgoing: list[tuple[str, Any]] = []
        transitions: list[Transition] = []
        for r in records:
            key = (r.project_code, r.school_org_path)
            if key not in chains:
                ancestors = await self.deps.orgs.ancestors(session, r.school_org_path)
                chains[key] = audit_chain(
                    projects[r.project_code], [(a.level, a.org_code) for a in ancestors]
                )
            before = r.status
            r.status = RecordStatus.PENDING_SCHOOL_AUDIT
            r.pending_level, r.pending_org_code = Level.SCHOOL, r.school_org_code
            r.audit_chain = chains[key]
            r.submitted_by, r.submitted_at, r.updated_at = caller.account_id, now, now
            r.version += 1
            transitions.append(
                self._transition(caller, r, Action.SUBMITTED, before, opinion="", at=now)
            )
            outgoing.append((events.RECORD_SUBMITTED, events.record_submitted(caller, r, now)))
        return transitions, outgoing

    # --- revoke -------------------------------------------------------------------------

    async def revoke(
        self, caller: CallerContext, record_id: str, reason: str, expected_version: int
    ) -> AidRecord:
        """Revoke an APPROVED record (an authority in its chain; the school for school projects)."""
        require_roles(caller, "auditor", "admin", what="撤销资助记录")
        reason = (reason or "").strip()
        if not reason or len(reason) > MAX_OPINION:
            raise InvalidArgument(
                "请填写撤销原因（不超过500字）", code="REASON_REQUIRED", field="reason"
            )
        now = self.deps.now()
        async with self.deps.db.write() as session:
            r = self._in_scope(caller, await self.deps.records.get(session, record_id, lock=True))
            if expected_version and expected_version != r.version:
                raise Conflict("记录已被他人修改，请刷新后重试", code="VERSION_CONFLICT")
            if r.status is not RecordStatus.APPROVED:
                raise FailedPrecondition(
                    f"只有审核通过的记录可以撤销，该记录为“{r.status.label}”",
                    code="RECORD_NOT_APPROVED",
                    field="record_id",
                )
            if not is_system(caller):
                lvl = level_of(caller)
                allowed = lvl is not Level.SCHOOL or (
                    not r.audit_chain and caller.org_code == r.school_org_code
                )
                if not allowed:
                    raise PermissionDenied(
                        "审核通过的记录只能由主管部门撤销",
                        code="REVOKE_NOT_ALLOWED",
                        field="record_id",
                    )
            before = r.status
            r.status, r.dedup_key = RecordStatus.REVOKED, None
            r.last_opinion = reason
            r.updated_at = now
            r.version += 1
            if not await self.deps.records.save(session, r, r.version - 1):
                raise Conflict("记录已被他人修改，请刷新后重试", code="VERSION_CONFLICT")
            await self.deps.records.add_transitions(
                session,
                [self._transition(caller, r, Action.REVOKED, before, opinion=reason, at=now)],
            )
            await self.deps.outbox.add_many(
                session,
                [
                    (events.RECORD_REVOKED, events.record_revoked(caller, r, now, reason)),
                    (
                        events.AUDIT_RECORDED,
                        events.action_audited(
                            caller,
                            action="aid.RevokeRecord",
                            object_type="aid_record",
                            object_id=r.record_id,
                            detail=f"撤销审核通过的资助记录，金额{yuan(r.amount_fen)}元",
                            org_path=r.school_org_path,
                        ),
                    ),
                ],
            )
        return r

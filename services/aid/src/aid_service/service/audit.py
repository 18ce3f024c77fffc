"""The multi-level audit (资助名单审核): approve or return many records at the caller's level.

All or nothing: when any record cannot take the decision (not awaiting the caller's org, entered
or submitted by the same account, outside the phase's window), nothing changes and the refusal
lists them. Approval at the last level of a record's chain makes it APPROVED and publishes
aid.record.approved; a return at any level sends it to the school with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from zizhu_common.errors import Conflict, InvalidArgument
from zizhu_common.rpc import CallerContext

from aid_service import events
from aid_service.domain.enums import Action, Decision, Level, Phase, RecordStatus
from aid_service.domain.records import (
    AidRecord,
    Refusal,
    Transition,
    after_decision,
    audit_refusal,
)
from aid_service.service.context import Deps, is_system, level_of, require_roles
from aid_service.service.record_reads import RecordReads
from aid_service.service.records import (
    MAX_BATCH,
    MAX_OPINION,
    ListFilter,
    record_visible,
    records_not_found,
    refused,
)
from aid_service.service.windows import WindowGate

MAX_FILTERED = 200_000
STATE_FIELDS = [
    "status",
    "pending_level",
    "pending_org_code",
    "last_opinion",
    "approved_at",
    "approved_level",
    "updated_at",
]


@dataclass
class AuditOutcome:
    """New states, and how many records moved on, were approved or returned."""

    records: list[AidRecord]
    forwarded: int
    approved: int
    returned: int


class AuditService:
    """Bulk audit decisions."""

    def __init__(self, deps: Deps, reads: RecordReads) -> None:
        self.deps = deps
        self.reads = reads

    async def decide(
        self,
        caller: CallerContext,
        *,
        decision: int,
        opinion: str,
        record_ids: Sequence[str] = (),
        where: ListFilter | None = None,
        expected_count: int = 0,
    ) -> AuditOutcome:
        """Approve or return records awaiting the caller's org, with one opinion."""
        require_roles(caller, "auditor", what="审核资助名单")
        try:
            verdict = Decision(decision)
        except ValueError:
            raise InvalidArgument(
                "请选择审核通过或退回", code="DECISION_INVALID", field="decision"
            ) from None
        opinion = (opinion or "").strip()
        if verdict is Decision.RETURN and not opinion:
            raise InvalidArgument("退回时必须填写退回原因", code="REASON_REQUIRED", field="opinion")
        if len(opinion) > MAX_OPINION:
            raise InvalidArgument("审核意见不超过500字", code="TEXT_TOO_LONG", field="opinion")
        ids = list(dict.fromkeys(record_ids))
        if ids and where is not None:
            raise InvalidArgument(
                "请指定记录或筛选条件之一", code="TARGET_AMBIGUOUS", field="record_ids"
            )
        if not ids and where is None:
            raise InvalidArgument("请选择要审核的记录", code="RECORDS_REQUIRED", field="record_ids")
        if len(ids) > MAX_BATCH:
            raise InvalidArgument(
                f"一次最多审核{MAX_BATCH}条记录，更多请按筛选条件批量审核",
                code="BATCH_SIZE_INVALID",
                field="record_ids",
            )
        level = Level.NATIONAL if is_system(caller) else level_of(caller)
        phase = Phase.SCHOOL_AUDIT if level is Level.SCHOOL else Phase.AUTHORITY_AUDIT
        now = self.deps.now()
        async with self.deps.db.write() as session:
            refusals: list[Refusal] = []
            if ids:
                found = await self.deps.records.get_many(session, ids, lock=True)
                missing = [rid for rid in ids if not record_visible(caller, found.get(rid))]
                if missing:
                    raise records_not_found(missing)
                targets = [found[rid] for rid in ids]
            else:
                assert where is not None
                query = await self.reads.query_for(session, caller, where)
                query = replace(
                    query,
                    pending_org_code=caller.org_code,
                    statuses=(
                        RecordStatus.PENDING_SCHOOL_AUDIT,
                        RecordStatus.PENDING_AUTHORITY_AUDIT,
                    ),
                )
                count = await self.deps.records.count(session, query)
                if expected_count and count != expected_count:
                    raise Conflict(
                        f"待审核记录数已变化（现有{count}条，页面显示{expected_count}条），请刷新后重试",
                        code="COUNT_CHANGED",
                        details={"count": count},
                    )
                if count > MAX_FILTERED:
                    raise InvalidArgument(
                        f"一次最多审核{MAX_FILTERED}条记录，请缩小筛选范围",
                        code="BATCH_SIZE_INVALID",
                    )
                targets = await self.deps.records.find(session, query, lock=True)
            gate = WindowGate(self.deps, session, now)
            for r in targets:
                refusal = audit_refusal(
                    r,
                    caller_level=level,
                    caller_org=caller.org_code,
                    caller_account=caller.account_id,
                )
                if refusal is None and not is_system(caller):
                    w = await gate.governing(r.project_code, r.period, r.school_org_path, phase)
                    if w is None or not w.open_at(now):
                        text = f"不在{phase.label}时间内（{w.text()}）" if w else "资助周期未开启"
                        refusal = Refusal(r.record_id, "WINDOW_CLOSED", text)
                if refusal is not None:
                    refusals.append(refusal)
            if refusals:
                raise refused(refusals, "审核")
            outcome = AuditOutcome([], 0, 0, 0)
            transitions: list[Transition] = []
            outgoing: list[tuple[str, Any]] = []
            for r in targets:
                step = after_decision(r, verdict)
                before = r.status
                r.status, r.pending_level, r.pending_org_code = (
                    step.status,
                    step.pending_level,
                    step.pending_org_code,
                )
                r.last_opinion = opinion
                r.updated_at = now
                r.version += 1
                if step.status is RecordStatus.APPROVED:
                    r.approved_at, r.approved_level = now, step.final_level
                    outcome.approved += 1
                    outgoing.append(
                        (events.RECORD_APPROVED, events.record_approved(caller, r, now, level))
                    )
                elif step.status is RecordStatus.RETURNED:
                    outcome.returned += 1
                    outgoing.append(
                        (
                            events.RECORD_RETURNED,
                            events.record_returned(caller, r, now, level, opinion),
                        )
                    )
                else:
                    outcome.forwarded += 1
                transitions.append(
                    Transition(
                        record_id=r.record_id,
                        seq=r.version,
                        action=Action.APPROVED if verdict is Decision.APPROVE else Action.RETURNED,
                        from_status=before,
                        to_status=r.status,
                        level=level,
                        org_code=caller.org_code,
                        actor_account_id=caller.account_id,
                        opinion=opinion,
                        amount_fen=r.amount_fen,
                        at=now,
                    )
                )
            await self.deps.records.save_states(session, targets, STATE_FIELDS)
            await self.deps.records.add_transitions(session, transitions)
            await self.deps.outbox.add_many(session, outgoing)
            outcome.records = targets
        return outcome

"""Subjects funding publishes and consumes, and builders of its outgoing events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from zizhu_common.rpc import CallerContext
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.funding.v1 import events_pb2

from funding_service import protomap
from funding_service.domain.model import Allocation, CostShare, Level
from funding_service.repository.ledger import FlagChange

ALLOCATION_MADE = "funding.allocation.made"
ALLOCATION_REVERSED = "funding.allocation.reversed"
COST_SHARE_SET = "funding.cost_share.set"
EXECUTION_OVERSPENT = "funding.execution.overspent"
EXECUTION_COVERED = "funding.execution.covered"

# Inputs: identity's org tree and aid's projects and record outcomes.
IDENTITY_ORG_SUBJECTS = [
    "identity.org.created",
    "identity.org.updated",
    "identity.org.moved",
    "identity.org.retired",
]
AID_SUBJECTS = [
    "aid.project.created",
    "aid.project.updated",
    "aid.record.approved",
    "aid.record.revoked",
]


def event_meta(caller: CallerContext | None, org_path: str) -> common_pb2.EventMeta:
    """Metadata with actor, correlation id and the org path the fact belongs to."""
    meta = common_pb2.EventMeta(org_path=org_path)
    if caller is not None:
        meta.actor_account_id = caller.account_id
        meta.correlation_id = caller.request_id
    return meta


def allocation_made(a: Allocation, caller: CallerContext) -> events_pb2.AllocationMade:
    """funding.allocation.made for one ledger line."""
    return events_pb2.AllocationMade(
        meta=event_meta(caller, a.to_org.path),
        allocation_id=a.allocation_id,
        project_code=a.project_code,
        fiscal_year=a.fiscal_year,
        from_org_code=a.from_org.code,
        from_org_path=a.from_org.path,
        to_org_code=a.to_org.code,
        to_org_path=a.to_org.path,
        source=int(a.source),  # type: ignore[arg-type]
        amount_fen=a.amount_fen,
        document_number=a.document_number,
        document_date=a.document_date,
        allocated_on=a.allocated_on,
        kind=protomap.KIND_TO_PROTO[a.kind],
        note=a.note,
    )


def allocation_reversed(
    a: Allocation, caller: CallerContext, at: datetime
) -> events_pb2.AllocationReversed:
    """funding.allocation.reversed."""
    msg = events_pb2.AllocationReversed(
        meta=event_meta(caller, a.to_org.path),
        allocation_id=a.allocation_id,
        project_code=a.project_code,
        fiscal_year=a.fiscal_year,
        from_org_code=a.from_org.code,
        to_org_code=a.to_org.code,
        to_org_path=a.to_org.path,
        source=int(a.source),  # type: ignore[arg-type]
        amount_fen=a.amount_fen,
        reason=a.reversal_reason,
        kind=protomap.KIND_TO_PROTO[a.kind],
        from_org_path=a.from_org.path,
    )
    msg.reversed_at.FromDatetime(at)
    return msg


def cost_share_set(share: CostShare, caller: CallerContext) -> events_pb2.CostShareSet:
    """funding.cost_share.set."""
    return events_pb2.CostShareSet(
        meta=event_meta(caller, share.region.path), cost_share=protomap.cost_share(share)
    )


def flag_changed(
    change: FlagChange, level: Level | None, caller: CallerContext | None
) -> tuple[str, events_pb2.ExecutionOverspent | events_pb2.ExecutionCovered]:
    """funding.execution.overspent or .covered for a flag that changed."""
    fields: dict[str, Any] = {
        "meta": event_meta(caller, change.org_path),
        "org_code": change.org_code,
        "org_path": change.org_path,
        "org_level": protomap.level_to_proto(level),
        "project_code": change.project_code,
        "fiscal_year": change.fiscal_year,
        "funds_fen": change.funds_fen,
        "executed_fen": change.executed_fen,
    }
    if change.overspent:
        return EXECUTION_OVERSPENT, events_pb2.ExecutionOverspent(**fields)
    return EXECUTION_COVERED, events_pb2.ExecutionCovered(**fields)

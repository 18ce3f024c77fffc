"""The audit log (安全审计): query within the caller's subtree, and verify the hash chain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.identity.v1 import identity_pb2

from gateway.deps import CurrentUser, Identity
from gateway.policy import guard
from gateway.schemas.audit import AuditChainRead, AuditEntryRead, AuditPage, audit_entry_read
from gateway.schemas.common import OrgCode, PageSize, PageToken, page_request, to_timestamp

router = APIRouter(tags=["审计 audit"])

Outcome = Literal["succeeded", "denied", "failed"]


@router.get(
    "/audit-log",
    response_model=AuditPage,
    summary="查询审计日志",
    **guard("audit.query", {"kind": "org", "in": "query", "name": "org_code"}),
)
async def query_audit_log(
    caller: CurrentUser,
    identity: Identity,
    org_code: Annotated[OrgCode | None, Query(description="范围根机构；默认本机构")] = None,
    actor_account_id: Annotated[str | None, Query(max_length=64)] = None,
    action_prefix: Annotated[str | None, Query(max_length=200)] = None,
    object_type: Annotated[str | None, Query(max_length=64)] = None,
    object_id: Annotated[str | None, Query(max_length=128)] = None,
    outcome: Outcome | None = None,
    sensitive_reads_only: bool = False,
    since: datetime | None = None,
    until: datetime | None = None,
    correlation_id: Annotated[str | None, Query(max_length=128)] = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> AuditPage:
    """Audited actions inside the caller's subtree, newest first."""
    req = identity_pb2.QueryAuditLogRequest(
        org_code=org_code or "",
        actor_account_id=actor_account_id or "",
        action_prefix=action_prefix or "",
        object_type=object_type or "",
        object_id=object_id or "",
        sensitive_reads_only=sensitive_reads_only,
        correlation_id=correlation_id or "",
        page=page_request(page_size, page_token),
    )
    if outcome:
        req.outcome = common_pb2.AuditOutcome.Value(f"AUDIT_OUTCOME_{outcome.upper()}")
    if since:
        req.since.CopyFrom(to_timestamp(since))
    if until:
        req.until.CopyFrom(to_timestamp(until))
    resp = await identity.QueryAuditLog(req, caller=caller)
    items: list[AuditEntryRead] = []
    for entry in resp.entries:
        path = entry.action.meta.org_path
        # Entries of no organisation (failed logins of unknown names) belong to the root only.
        if (path and caller.keeps(path, "audit entry")) or (
            not path and caller.level == "national"
        ):
            items.append(audit_entry_read(entry))
    return AuditPage(items=items, next_page_token=resp.page.next_page_token, total=resp.page.total)


@router.get(
    "/audit-log/verify",
    response_model=AuditChainRead,
    summary="校验审计日志哈希链",
    **guard(
        "audit.verify",
        {"kind": "global", "reason": "the chain is one sequence; the answer holds no entry data"},
    ),
)
async def verify_audit_chain(
    caller: CurrentUser,
    identity: Identity,
    from_seq: Annotated[int, Query(ge=0)] = 0,
    to_seq: Annotated[int, Query(ge=0)] = 0,
) -> AuditChainRead:
    """Recompute the SM3 chain over a range of entries and report the first break."""
    resp = await identity.VerifyAuditChain(
        identity_pb2.VerifyAuditChainRequest(from_seq=from_seq, to_seq=to_seq),
        caller=caller,
    )
    return AuditChainRead(
        intact=resp.intact,
        checked_count=resp.checked_count,
        last_seq=resp.last_seq,
        first_broken_seq=resp.first_broken_seq,
        message=resp.message,
    )

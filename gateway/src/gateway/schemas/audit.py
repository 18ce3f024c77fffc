"""The audit log (安全审计) and its hash chain."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.identity.v1 import identity_pb2

from gateway.schemas.common import enum_name, role_names, ts


class AuditEntryRead(BaseModel):
    """One audited action and its place in the SM3 hash chain."""

    seq: int
    event_id: str
    occurred_at: datetime | None
    recorded_at: datetime | None
    producer: str
    correlation_id: str
    actor_account_id: str
    actor_org_code: str
    actor_roles: list[str]
    org_path: str
    action: str
    object_type: str
    object_id: str
    outcome: str
    status_code: str
    client_ip: str
    user_agent: str
    sensitive_read: bool
    detail: str
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    """One page of the audit log, newest first."""

    items: list[AuditEntryRead]
    next_page_token: str
    total: int


class AuditChainRead(BaseModel):
    """Result of recomputing the hash chain."""

    intact: bool
    checked_count: int
    last_seq: int
    first_broken_seq: int
    message: str


def audit_entry_read(e: identity_pb2.AuditLogEntry) -> AuditEntryRead:
    """Proto AuditLogEntry → schema."""
    a = e.action
    return AuditEntryRead(
        seq=e.seq,
        event_id=a.meta.event_id,
        occurred_at=ts(a.meta.occurred_at, a.meta.HasField("occurred_at")),
        recorded_at=ts(e.recorded_at, e.HasField("recorded_at")),
        producer=a.meta.producer,
        correlation_id=a.meta.correlation_id,
        actor_account_id=a.meta.actor_account_id,
        actor_org_code=a.actor_org_code,
        actor_roles=role_names(a.actor_roles),
        org_path=a.meta.org_path,
        action=a.action,
        object_type=a.object_type,
        object_id=a.object_id,
        outcome=enum_name(common_pb2.AuditOutcome, a.outcome, "AUDIT_OUTCOME_"),
        status_code=a.status_code,
        client_ip=a.client_ip,
        user_agent=a.user_agent,
        sensitive_read=a.sensitive_read,
        detail=a.detail,
        prev_hash=e.prev_hash,
        hash=e.hash,
    )

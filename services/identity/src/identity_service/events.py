"""Subjects of identity's events, event metadata, and the audit consumers."""

from __future__ import annotations

from zizhu_common.rpc import CallerContext
from zizhu_contracts.common.v1 import common_pb2

ORG_CREATED = "identity.org.created"
ORG_UPDATED = "identity.org.updated"
ORG_MOVED = "identity.org.moved"
ORG_RETIRED = "identity.org.retired"
ACCOUNT_CREATED = "identity.account.created"
ACCOUNT_ROLES_CHANGED = "identity.account.roles_changed"
ACCOUNT_LOCKED = "identity.account.locked"
ACCOUNT_UNLOCKED = "identity.account.unlocked"
ACCOUNT_PASSWORD_CHANGED = "identity.account.password_changed"
ACCOUNT_RETIRED = "identity.account.retired"


def audit_subject(producer: str) -> str:
    """The subject on which a producer publishes ActionAudited events."""
    return f"{producer}.audit.recorded"


def event_meta(
    *, caller: CallerContext | None = None, org_path: str = "", actor_account_id: str = ""
) -> common_pb2.EventMeta:
    """EventMeta with actor, correlation id and org path (id and time are stamped by the outbox)."""
    meta = common_pb2.EventMeta(org_path=org_path, actor_account_id=actor_account_id)
    if caller is not None:
        meta.actor_account_id = caller.account_id
        meta.correlation_id = caller.request_id
    return meta

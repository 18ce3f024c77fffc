"""Subjects of aid's events and their builders (published through the outbox)."""

from __future__ import annotations

from datetime import datetime

from zizhu_common.rpc import CallerContext
from zizhu_contracts.aid.v1 import events_pb2
from zizhu_contracts.common.v1 import common_pb2

from aid_service.domain.enums import Level
from aid_service.domain.periods import Period
from aid_service.domain.projects import Project
from aid_service.domain.records import AidRecord
from aid_service.protomap import period_msg, project_msg

PROJECT_CREATED = "aid.project.created"
PROJECT_UPDATED = "aid.project.updated"
PERIOD_OPENED = "aid.period.opened"
PERIOD_CLOSED = "aid.period.closed"
RECORD_SUBMITTED = "aid.record.submitted"
RECORD_APPROVED = "aid.record.approved"
RECORD_RETURNED = "aid.record.returned"
RECORD_REVOKED = "aid.record.revoked"
AUDIT_RECORDED = "aid.audit.recorded"

ORG_SUBJECTS = [
    "identity.org.created",
    "identity.org.updated",
    "identity.org.moved",
    "identity.org.retired",
]


def meta(caller: CallerContext | None, org_path: str) -> common_pb2.EventMeta:
    """EventMeta with actor, correlation id and the org path the fact belongs to."""
    m = common_pb2.EventMeta(org_path=org_path)
    if caller is not None:
        if not caller.account_id.startswith("system:"):
            m.actor_account_id = caller.account_id
        m.correlation_id = caller.request_id
    return m


def project_created(caller: CallerContext, p: Project) -> events_pb2.ProjectCreated:
    """aid.project.created."""
    return events_pb2.ProjectCreated(
        meta=meta(caller, p.owner_org_path), project_code=p.project_code, project=project_msg(p)
    )


def project_updated(
    caller: CallerContext, p: Project, changed: list[str]
) -> events_pb2.ProjectUpdated:
    """aid.project.updated."""
    return events_pb2.ProjectUpdated(
        meta=meta(caller, p.owner_org_path),
        project_code=p.project_code,
        project=project_msg(p),
        changed_fields=changed,
    )


def period_opened(caller: CallerContext, p: Period) -> events_pb2.PeriodOpened:
    """aid.period.opened."""
    return events_pb2.PeriodOpened(
        meta=meta(caller, caller.org_path),
        period=period_msg(p.period),
        starts_on=p.starts_on.isoformat(),
        ends_on=p.ends_on.isoformat(),
        deadline_on=p.deadline_on.isoformat(),
    )


def period_closed(caller: CallerContext, p: Period) -> events_pb2.PeriodClosed:
    """aid.period.closed."""
    return events_pb2.PeriodClosed(meta=meta(caller, caller.org_path), period=period_msg(p.period))


def _common(r: AidRecord) -> dict:
    return {
        "record_id": r.record_id,
        "student_id": r.student_id,
        "student_name": r.student_name,
        "id_number_blind_index": r.id_number_blind_index,
        "school_org_code": r.school_org_code,
        "school_org_path": r.school_org_path,
        "project_code": r.project_code,
        "project_category": int(r.category),
        "period": period_msg(r.period),
        "amount_fen": r.amount_fen,
        "stage": int(r.stage),
    }


def record_submitted(
    caller: CallerContext, r: AidRecord, at: datetime
) -> events_pb2.RecordSubmitted:
    """aid.record.submitted."""
    e = events_pb2.RecordSubmitted(meta=meta(caller, r.school_org_path), **_common(r))
    e.submitted_at.FromDatetime(at)
    return e


def record_approved(
    caller: CallerContext, r: AidRecord, at: datetime, level: Level
) -> events_pb2.RecordApproved:
    """aid.record.approved."""
    e = events_pb2.RecordApproved(
        meta=meta(caller, r.school_org_path), approved_level=int(level), **_common(r)
    )
    e.approved_at.FromDatetime(at)
    return e


def record_returned(
    caller: CallerContext, r: AidRecord, at: datetime, level: Level, reason: str
) -> events_pb2.RecordReturned:
    """aid.record.returned."""
    e = events_pb2.RecordReturned(
        meta=meta(caller, r.school_org_path),
        returned_level=int(level),
        returned_by_org_code=caller.org_code,
        reason=reason,
        **_common(r),
    )
    e.returned_at.FromDatetime(at)
    return e


def record_revoked(
    caller: CallerContext, r: AidRecord, at: datetime, reason: str
) -> events_pb2.RecordRevoked:
    """aid.record.revoked."""
    e = events_pb2.RecordRevoked(meta=meta(caller, r.school_org_path), reason=reason, **_common(r))
    e.revoked_at.FromDatetime(at)
    return e


def action_audited(
    caller: CallerContext,
    *,
    action: str,
    object_type: str = "",
    object_id: str = "",
    detail: str = "",
    sensitive_read: bool = False,
    org_path: str = "",
) -> common_pb2.ActionAudited:
    """aid.audit.recorded: an action kept in identity's audit log."""
    roles = {
        "operator": common_pb2.ROLE_OPERATOR,
        "auditor": common_pb2.ROLE_AUDITOR,
        "admin": common_pb2.ROLE_ADMIN,
        "viewer": common_pb2.ROLE_VIEWER,
        "audit_admin": common_pb2.ROLE_AUDIT_ADMIN,
    }
    m = meta(caller, org_path or caller.org_path)
    m.actor_account_id = caller.account_id
    return common_pb2.ActionAudited(
        meta=m,
        action=action,
        object_type=object_type,
        object_id=object_id,
        outcome=common_pb2.AUDIT_OUTCOME_SUCCEEDED,
        status_code="OK",
        actor_org_code=caller.org_code,
        actor_org_path=caller.org_path,
        actor_roles=[roles[r] for r in sorted(caller.roles) if r in roles],
        sensitive_read=sensitive_read,
        detail=detail,
    )

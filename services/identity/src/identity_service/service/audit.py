"""The audit log (审计日志): appended by identity's own use cases and by audit events of the
gateway and the other services, chained with SM3, queried by audit admins in their subtree."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC

from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.consumer import Event
from zizhu_common.errors import InvalidArgument, NotFound, PermissionDenied
from zizhu_common.outbox import new_event_id
from zizhu_common.rpc import CallerContext
from zizhu_contracts.common.v1 import common_pb2

from identity_service.domain.accounts import Role
from identity_service.domain.audit import ChainReport, chain_hash, purge_cutoff, verify_chain
from identity_service.domain.orgs import is_inside
from identity_service.repository import (
    AuditColumns,
    AuditFilter,
    AuditRecord,
    chain_row,
)
from identity_service.service.context import Deps, next_page_token, page_window

log = logging.getLogger(__name__)

OUTCOME_SUCCEEDED = common_pb2.AUDIT_OUTCOME_SUCCEEDED
OUTCOME_DENIED = common_pb2.AUDIT_OUTCOME_DENIED
OUTCOME_FAILED = common_pb2.AUDIT_OUTCOME_FAILED


def role_enums(names: Sequence[str]) -> list[int]:
    """Proto Role values of role names (names the contract has no value for are left out)."""
    values = []
    for name in names:
        key = f"ROLE_{name.upper()}"
        if key in common_pb2.Role.keys():
            values.append(common_pb2.Role.Value(key))
    return values


@dataclass(frozen=True)
class Actor:
    """Who did an audited thing (an authenticated caller, or a login attempt)."""

    account_id: str = ""
    org_code: str = ""
    org_path: str = ""
    roles: tuple[str, ...] = ()
    request_id: str = ""
    client_ip: str = ""
    user_agent: str = ""

    @classmethod
    def of(cls, caller: CallerContext, *, client_ip: str = "", user_agent: str = "") -> Actor:
        """The actor behind a caller context."""
        return cls(
            account_id=caller.account_id,
            org_code=caller.org_code,
            org_path=caller.org_path,
            roles=tuple(sorted(caller.roles)),
            request_id=caller.request_id,
            client_ip=client_ip,
            user_agent=user_agent,
        )


def columns_of(payload: bytes) -> AuditColumns:
    """The indexed columns derived from a serialized ActionAudited."""
    action = common_pb2.ActionAudited.FromString(payload)
    meta = action.meta
    return AuditColumns(
        event_id=meta.event_id,
        occurred_at=meta.occurred_at.ToDatetime(tzinfo=UTC),
        actor_account_id=meta.actor_account_id[:64],
        actor_org_code=action.actor_org_code[:10],
        org_path=(meta.org_path or action.actor_org_path)[:255],
        action=action.action[:200],
        object_type=action.object_type[:64],
        object_id=action.object_id[:128],
        outcome=int(action.outcome),
        sensitive_read=bool(action.sensitive_read),
        correlation_id=meta.correlation_id[:64],
    )


class AuditService:
    """Append, query, verify and purge the audit log."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def build(
        self,
        actor: Actor,
        *,
        action: str,
        outcome: int,
        status_code: str = "OK",
        org_path: str = "",
        object_type: str = "",
        object_id: str = "",
        detail: str = "",
        sensitive_read: bool = False,
    ) -> common_pb2.ActionAudited:
        """An ActionAudited for one of identity's own actions."""
        msg = common_pb2.ActionAudited(
            action=action,
            object_type=object_type,
            object_id=object_id,
            outcome=outcome,  # type: ignore[arg-type]
            status_code=status_code,
            actor_org_code=actor.org_code,
            actor_org_path=actor.org_path,
            actor_roles=role_enums(actor.roles),  # type: ignore[arg-type]
            client_ip=actor.client_ip[:64],
            user_agent=actor.user_agent[:300],
            sensitive_read=sensitive_read,
            detail=detail[:500],
        )
        msg.meta.event_id = new_event_id()
        msg.meta.occurred_at.FromDatetime(self.deps.now())
        msg.meta.producer = "identity"
        msg.meta.correlation_id = actor.request_id
        msg.meta.actor_account_id = actor.account_id
        msg.meta.org_path = org_path or actor.org_path
        return msg

    async def append(
        self, session: AsyncSession, actions: Sequence[common_pb2.ActionAudited]
    ) -> int:
        """Chain and store entries (duplicates by event id are skipped); returns how many."""
        payloads: list[bytes] = []
        seen: set[str] = set()
        for action in actions:
            if not action.meta.event_id or action.meta.event_id in seen:
                continue
            seen.add(action.meta.event_id)
            payloads.append(action.SerializeToString(deterministic=True))
        if not payloads:
            return 0
        head = await self.deps.audit.head_for_update(session)
        known = await self.deps.audit.known_event_ids(session, sorted(seen))
        now = self.deps.now()
        rows = []
        seq, prev = head.last_seq, head.last_hash
        for payload in payloads:
            cols = columns_of(payload)
            if cols.event_id in known:
                continue
            seq += 1
            digest = chain_hash(prev, payload, seq, now)
            rows.append((seq, now, payload, prev, digest, cols))
            prev = digest
        if rows:
            head = type(head)(seq, prev, head.purged_through_seq, head.purged_through_hash)
            await self.deps.audit.append(session, rows, head)
        return len(rows)

    async def record(self, session: AsyncSession, actor: Actor, **fields: object) -> None:
        """Append one of identity's own actions inside the caller's transaction."""
        await self.append(session, [self.build(actor, **fields)])  # type: ignore[arg-type]

    async def record_alone(self, actor: Actor, **fields: object) -> None:
        """Append one action in its own transaction (refusals whose use case rolled back)."""
        try:
            async with self.deps.db.write() as session:
                await self.record(session, actor, **fields)
        except Exception:  # an audit failure must not hide the refusal being reported
            log.exception("could not record audit entry %s", fields.get("action"))

    async def apply_events(self, session: AsyncSession, events: list[Event]) -> None:
        """Consumer handler: store ActionAudited events from the gateway and other services."""
        actions = []
        for event in events:
            try:
                action = common_pb2.ActionAudited.FromString(event.data)
            except Exception:
                log.warning(
                    "skipping undecodable audit event %s on %s", event.event_id, event.subject
                )
                continue
            if not action.meta.event_id:
                action.meta.event_id = event.event_id
            actions.append(action)
        await self.append(session, actions)

    # --- reading -------------------------------------------------------------------------------

    async def query(
        self,
        caller: CallerContext,
        *,
        org_code: str,
        flt: AuditFilter,
        page_size: int,
        page_token: str,
    ) -> tuple[list[AuditRecord], int, str]:
        """Entries inside the caller's subtree (audit admins only), newest first."""
        _require_audit_admin(caller)
        scope = caller.org_path
        if org_code:
            async with self.deps.db.read() as session:
                org = await self.deps.orgs.get(session, org_code)
            if org is None or not is_inside(org.org_path, caller.org_path):
                raise NotFound("机构不存在", code="ORG_NOT_FOUND", field="org_code")
            scope = org.org_path
        flt = AuditFilter(**{**flt.__dict__, "scope_path": scope})
        offset, limit = page_window(page_size, page_token, flt)
        async with self.deps.db.read() as session:
            records, total = await self.deps.audit.query(session, flt, offset=offset, limit=limit)
        return records, total, next_page_token(offset, limit, total, flt)

    async def verify(
        self, caller: CallerContext | None, *, from_seq: int, to_seq: int
    ) -> ChainReport:
        """Recompute the chain over a range (audit admins, or system jobs)."""
        if caller is not None and "system" not in caller.roles:
            _require_audit_admin(caller)
        if from_seq < 0 or to_seq < 0 or (to_seq and from_seq > to_seq):
            raise InvalidArgument("校验范围无效", code="RANGE_INVALID", field="from_seq")
        async with self.deps.db.read() as session:
            head = await self.deps.audit.head(session)
            start = max(from_seq or 1, head.purged_through_seq + 1)
            end = min(to_seq or head.last_seq, head.last_seq)
            if start == head.purged_through_seq + 1:
                anchor = head.purged_through_hash
            else:
                anchor = await self.deps.audit.hash_of(session, start - 1) or ""
            checked, anchor_seq, cursor = 0, start - 1, start
            while cursor <= end:
                batch = await self.deps.audit.chain_rows(session, from_seq=cursor, to_seq=end)
                if not batch:
                    break
                bad = [r.seq for r in batch if columns_of(r.payload) != r.columns]
                report = verify_chain(
                    [chain_row(r) for r in batch],
                    anchor_seq=anchor_seq,
                    anchor_hash=anchor,
                    consistent=bad,
                )
                if not report.intact:
                    return ChainReport(
                        False,
                        checked + report.checked_count,
                        report.last_seq,
                        report.first_broken_seq,
                        report.message,
                    )
                checked += report.checked_count
                anchor_seq, anchor, cursor = batch[-1].seq, batch[-1].hash, batch[-1].seq + 1
        report = verify_chain(
            [],
            anchor_seq=anchor_seq,
            anchor_hash=anchor,
            head_seq=end if end == head.last_seq else None,
            head_hash=head.last_hash if end == head.last_seq else None,
        )
        if not report.intact:
            return ChainReport(False, checked, anchor_seq, report.first_broken_seq, report.message)
        return ChainReport(True, checked, anchor_seq, 0, f"审计链完整，共校验{checked}条记录")

    async def purge(self) -> int:
        """Delete entries older than the retention (never under 180 days); returns how many."""
        now = self.deps.now()
        cutoff = purge_cutoff(now, self.deps.settings.audit_retention_days)
        async with self.deps.db.write() as session:
            count = await self.deps.audit.purge_through(session, cutoff=cutoff, now=now)
        if count:
            log.info("purged %d audit entries recorded before %s", count, cutoff.isoformat())
        return count


def _require_audit_admin(caller: CallerContext) -> None:
    if Role.AUDIT_ADMIN.value not in caller.roles:
        raise PermissionDenied("只有审计管理员可以查看审计日志", code="ROLE_REQUIRED")

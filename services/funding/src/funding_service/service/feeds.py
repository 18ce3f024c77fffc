"""Consumers of other services' events: identity's org tree into `org_node`, aid's projects into
`project_ref`, and aid's record approvals and revocations into execution totals.

Each handler runs inside the consumer's transaction that also records the processed event ids,
so an event is applied exactly once; approvals and revocations of one record are ordered by
their own timestamps, so a late redelivery of an older fact changes nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from google.protobuf.message import DecodeError
from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.consumer import Event
from zizhu_contracts.aid.v1 import aid_pb2
from zizhu_contracts.aid.v1 import events_pb2 as aid_events
from zizhu_contracts.identity.v1 import events_pb2 as identity_events
from zizhu_contracts.identity.v1 import identity_pb2

from funding_service.domain.model import Level, OrgNode, Period, ProjectRef, Term
from funding_service.domain.rules import ancestor_paths, path_codes
from funding_service.protomap import PROTO_TO_LEVEL
from funding_service.repository import RecordState
from funding_service.repository.execution import PeriodKey
from funding_service.service.context import Deps
from funding_service.service.ledger import Deltas, write

log = logging.getLogger(__name__)


def _org(msg: identity_pb2.Org) -> OrgNode:
    return OrgNode(
        code=msg.org_code,
        name=msg.name,
        level=PROTO_TO_LEVEL.get(msg.level, Level.SCHOOL),
        parent_code=msg.parent_code or None,
        path=msg.org_path,
        active=msg.status != identity_pb2.ORG_STATUS_RETIRED,
    )


def _parent_path(path: str) -> str:
    codes = path_codes(path)
    return "/" + "/".join(codes[:-1]) + "/" if len(codes) > 1 else ""


class FeedService:
    """Applies identity and aid events to funding's read copies and execution totals."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def apply_identity_events(self, session: AsyncSession, events: Sequence[Event]) -> None:
        """identity.org.* → the org copy (moves carry the subtree's totals to the new parents)."""
        now = self.deps.now()
        for ev in events:
            try:
                if ev.subject in ("identity.org.created", "identity.org.updated"):
                    cls = (
                        identity_events.OrgCreated
                        if ev.subject.endswith("created")
                        else identity_events.OrgUpdated
                    )
                    msg = cls.FromString(ev.data)
                    if msg.org.org_code and msg.org.org_path:
                        await self.deps.orgs.upsert(session, _org(msg.org), msg.org.version, now)
                elif ev.subject == "identity.org.moved":
                    moved = identity_events.OrgMoved.FromString(ev.data)
                    await self._move(session, moved)
                elif ev.subject == "identity.org.retired":
                    retired = identity_events.OrgRetired.FromString(ev.data)
                    await self.deps.orgs.set_active(session, retired.org_code, False, now)
            except DecodeError:
                log.warning("undecodable %s event %s skipped", ev.subject, ev.event_id)

    async def _move(self, session: AsyncSession, msg: identity_events.OrgMoved) -> None:
        deps = self.deps
        node = await deps.orgs.get(session, msg.org_code)
        if node is None or node.path != msg.old_path or not msg.new_path:
            return  # unknown, or already where the event puts it
        old_parent, new_parent = _parent_path(msg.old_path), _parent_path(msg.new_path)
        deltas = Deltas()
        moved_cols = (
            "subtree_contributed_fen",
            "school_funds_fen",
            "executed_fen",
            "executed_count",
        )
        for row in await deps.ledger.subtree_rows(session, msg.old_path):
            cols = {c: getattr(row, c) for c in moved_cols if getattr(row, c)}
            if cols and old_parent:
                deltas.shift(old_parent, row.project_code, row.fiscal_year, cols, -1)
            if cols and new_parent:
                deltas.shift(new_parent, row.project_code, row.fiscal_year, cols, +1)
        for row in await deps.ledger.balance_rows_at(session, msg.old_path):
            if row.subtree_contributed_fen:
                amount = row.subtree_contributed_fen
                if old_parent:
                    deltas.shift_balance(
                        old_parent, row.project_code, row.fiscal_year, row.source, -amount
                    )
                if new_parent:
                    deltas.shift_balance(
                        new_parent, row.project_code, row.fiscal_year, row.source, amount
                    )
        periods: dict[PeriodKey, tuple[str, int, int]] = {}
        for row in await deps.execution.period_rows_of(session, msg.org_code):
            for parent, sign in ((old_parent, -1), (new_parent, +1)):
                for p in ancestor_paths(parent) if parent else []:
                    key = (path_codes(p)[-1], row.project_code, row.school_year, row.term)
                    fy, amount, count = periods.get(key, (row.fiscal_year, 0, 0))
                    periods[key] = (
                        fy,
                        amount + sign * row.executed_fen,
                        count + sign * row.record_count,
                    )
        await deps.orgs.rewrite_paths(session, msg.old_path, msg.new_path)
        await deps.orgs.set_parent(session, msg.org_code, msg.new_parent_code)
        await write(deps, session, deltas, None)
        await deps.execution.add_periods(session, periods)

    async def apply_aid_events(self, session: AsyncSession, events: Sequence[Event]) -> None:
        """aid.project.* → the project copy; aid.record.approved / revoked → execution."""
        now = self.deps.now()
        records: list[tuple[bool, aid_events.RecordApproved | aid_events.RecordRevoked]] = []
        for ev in events:
            try:
                if ev.subject in ("aid.project.created", "aid.project.updated"):
                    cls = (
                        aid_events.ProjectCreated
                        if ev.subject.endswith("created")
                        else aid_events.ProjectUpdated
                    )
                    project = cls.FromString(ev.data).project
                    if project.project_code:
                        await self.deps.projects.upsert(session, _project(project), now)
                elif ev.subject == "aid.record.approved":
                    records.append((True, aid_events.RecordApproved.FromString(ev.data)))
                elif ev.subject == "aid.record.revoked":
                    records.append((False, aid_events.RecordRevoked.FromString(ev.data)))
            except DecodeError:
                log.warning("undecodable %s event %s skipped", ev.subject, ev.event_id)
        if records:
            await self.apply_records(session, records)

    async def apply_records(
        self,
        session: AsyncSession,
        records: Sequence[tuple[bool, aid_events.RecordApproved | aid_events.RecordRevoked]],
    ) -> None:
        """Apply approvals (True) and revocations (False) in order, then write the totals."""
        deps = self.deps
        states = await deps.execution.records(session, [m.record_id for _, m in records])
        schools = {m.school_org_code for _, m in records} | {
            s.school_org_code for s in states.values()
        }
        known = await deps.orgs.get_many(session, schools)
        event_paths = {m.school_org_code: m.school_org_path for _, m in records}

        def school_path(code: str) -> str:
            node = known.get(code)
            return node.path if node else event_paths.get(code, "")

        # Per school × project × period first; each key is then spread to the ancestors once.
        by_school: dict[tuple[str, str, str, int], list[int]] = defaultdict(lambda: [0, 0])
        dirty: dict[str, RecordState] = {}

        def count(state: RecordState, sign: int) -> None:
            key = (state.school_org_code, state.project_code, state.school_year, state.term)
            entry = by_school[key]
            entry[0] += sign * state.amount_fen
            entry[1] += sign

        for approved, msg in records:
            if not msg.record_id or not _valid_period(msg):
                log.warning(
                    "aid record event without record or valid period skipped: %s", msg.record_id
                )
                continue
            at = _when(msg, approved) or deps.now()
            current = states.get(msg.record_id)
            if current is not None and current.changed_at > at:
                continue  # an older fact delivered late
            if approved:
                if current is not None and current.approved:
                    count(current, -1)
                new = RecordState(
                    msg.record_id,
                    msg.school_org_code,
                    msg.project_code,
                    msg.period.school_year,
                    int(msg.period.term),
                    max(int(msg.amount_fen), 0),
                    True,
                    at,
                )
                count(new, +1)
            elif current is None:
                new = RecordState(
                    msg.record_id,
                    msg.school_org_code,
                    msg.project_code,
                    msg.period.school_year,
                    int(msg.period.term),
                    max(int(msg.amount_fen), 0),
                    False,
                    at,
                )
            else:
                if current.approved:
                    count(current, -1)
                new = replace(current, approved=False, changed_at=at)
            states[msg.record_id] = dirty[msg.record_id] = new

        deltas = Deltas()
        periods: dict[PeriodKey, tuple[str, int, int]] = {}
        for (school, project, school_year, term), (amount, n) in by_school.items():
            path = school_path(school)
            if not path or (amount == 0 and n == 0):
                continue
            fy = Period(school_year, Term(term)).fiscal_year
            deltas.execution(path, project, fy, amount, n)
            for p in ancestor_paths(path):
                key = (path_codes(p)[-1], project, school_year, term)
                _, a, c = periods.get(key, (fy, 0, 0))
                periods[key] = (fy, a + amount, c + n)
        await deps.execution.save_records(session, list(dirty.values()))
        await deps.execution.add_periods(session, periods)
        await write(deps, session, deltas, None)


def _project(p: aid_pb2.Project) -> ProjectRef:
    return ProjectRef(
        code=p.project_code,
        name=p.name,
        owner_org_code=p.owner_org_code,
        owner_org_path=p.owner_org_path or "/",
        owner_level=PROTO_TO_LEVEL.get(p.owner_level),
        category=int(p.category),
        stage=int(p.stage),
        active=p.status != aid_pb2.PROJECT_STATUS_DISABLED,
    )


def _valid_period(msg: aid_events.RecordApproved | aid_events.RecordRevoked) -> bool:
    sy = msg.period.school_year
    return (
        len(sy) == 9
        and sy[4] == "-"
        and sy[:4].isdigit()
        and sy[5:].isdigit()
        and msg.period.term in (Term.AUTUMN, Term.SPRING)
    )


def _when(
    msg: aid_events.RecordApproved | aid_events.RecordRevoked, approved: bool
) -> datetime | None:
    ts = msg.approved_at if approved else msg.revoked_at  # type: ignore[union-attr]
    if ts.seconds or ts.nanos:
        return ts.ToDatetime(tzinfo=UTC)
    if msg.meta.HasField("occurred_at"):
        return msg.meta.occurred_at.ToDatetime(tzinfo=UTC)
    return None


__all__ = ["FeedService"]

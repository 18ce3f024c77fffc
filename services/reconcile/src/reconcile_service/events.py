"""Events: the subjects reconcile publishes, and the consumers that keep its read copy.

Inputs (durable consumers from the start of each stream, so the copy can be rebuilt by replay):
identity.org.*, roster.student.*, roster.membership.added|issued|verified|ended,
roster.recognition.recorded, aid.project.*, aid.period.*, aid.record.approved|revoked,
funding.allocation.*. A roster.membership.issued event (one school's share of a central issue
batch) is applied as its entries' roster.membership.added would be.
Each batch is folded per key in stream order and written with one statement per kind.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.consumer import Event
from zizhu_common.rpc import CallerContext
from zizhu_contracts.aid.v1 import events_pb2 as aid_events
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.funding.v1 import events_pb2 as funding_events
from zizhu_contracts.identity.v1 import events_pb2 as identity_events
from zizhu_contracts.roster.v1 import events_pb2 as roster_events

from reconcile_service.repository import readcopy as rc
from reconcile_service.repository.readcopy import event_time

log = logging.getLogger(__name__)

# --- published ---------------------------------------------------------------------------------
RUN_COMPLETED = "reconcile.run.completed"
RUN_FAILED = "reconcile.run.failed"
FINDING_RAISED = "reconcile.finding.raised"
FINDING_RESOLVED = "reconcile.finding.resolved"
AUDIT_RECORDED = "reconcile.audit.recorded"

# --- consumed ----------------------------------------------------------------------------------
ORG_CREATED = "identity.org.created"
ORG_UPDATED = "identity.org.updated"
ORG_MOVED = "identity.org.moved"
ORG_RETIRED = "identity.org.retired"
STUDENT_REGISTERED = "roster.student.registered"
STUDENT_UPDATED = "roster.student.updated"
ENROLLMENT_CHANGED = "roster.student.enrollment_changed"
MEMBERSHIP_ADDED = "roster.membership.added"
MEMBERSHIPS_ISSUED = "roster.membership.issued"
MEMBERSHIP_VERIFIED = "roster.membership.verified"
MEMBERSHIP_ENDED = "roster.membership.ended"
RECOGNITION_RECORDED = "roster.recognition.recorded"
PROJECT_CREATED = "aid.project.created"
PROJECT_UPDATED = "aid.project.updated"
PERIOD_OPENED = "aid.period.opened"
PERIOD_CLOSED = "aid.period.closed"
RECORD_APPROVED = "aid.record.approved"
RECORD_REVOKED = "aid.record.revoked"
ALLOCATION_MADE = "funding.allocation.made"
ALLOCATION_REVERSED = "funding.allocation.reversed"


@dataclass(frozen=True)
class Source:
    """One durable consumer: the producer's stream, its durable name and subjects."""

    producer: str
    durable: str
    subjects: tuple[str, ...]


# Durable names carry a version: a new name replays its stream from the start.
SOURCES: tuple[Source, ...] = (
    Source("identity", "reconcile-identity-v1", ("identity.org.>",)),
    Source(
        "roster",
        "reconcile-roster-v1",
        ("roster.student.>", "roster.membership.>", "roster.recognition.>"),
    ),
    Source("aid", "reconcile-aid-v1", ("aid.project.>", "aid.period.>", "aid.record.>")),
    Source("funding", "reconcile-funding-v1", ("funding.allocation.>",)),
)
CONSUMERS = tuple(s.durable for s in SOURCES)


def event_meta(caller: CallerContext | None = None, *, org_path: str = "") -> common_pb2.EventMeta:
    """EventMeta with actor, correlation id and org path (id and time are stamped by the outbox)."""
    meta = common_pb2.EventMeta(org_path=org_path)
    if caller is not None:
        meta.actor_account_id = "" if caller.account_id.startswith("system:") else caller.account_id
        meta.correlation_id = caller.request_id
    return meta


def _period(p: common_pb2.AidPeriod) -> tuple[str, int]:
    return (p.school_year, int(p.term))


# --- identity -------------------------------------------------------------------------------------


async def apply_identity(session: AsyncSession, events: list[Event]) -> None:
    """Org tree: created/updated upsert the node, moved rewrites paths, retired marks it."""
    orgs: dict[str, dict] = {}
    for ev in events:
        if ev.subject in (ORG_CREATED, ORG_UPDATED):
            cls = (
                identity_events.OrgCreated
                if ev.subject == ORG_CREATED
                else identity_events.OrgUpdated
            )
            m = cls.FromString(ev.data)
            o = m.org
            orgs[o.org_code or m.org_code] = {
                "org_code": o.org_code or m.org_code,
                "name": o.name,
                "level": int(o.level),
                "parent_code": o.parent_code,
                "org_path": o.org_path,
                "stages": "," + ",".join(str(int(s)) for s in o.stages) + "," if o.stages else "",
                "status": int(o.status) or 1,
                "event_at": event_time(m.meta.occurred_at),
            }
        elif ev.subject == ORG_MOVED:
            await rc.upsert_orgs(session, list(orgs.values()))
            orgs.clear()
            moved = identity_events.OrgMoved.FromString(ev.data)
            await rc.move_subtree(session, moved.old_path, moved.new_path)
        elif ev.subject == ORG_RETIRED:
            await rc.upsert_orgs(session, list(orgs.values()))
            orgs.clear()
            await rc.retire_orgs(session, [identity_events.OrgRetired.FromString(ev.data).org_code])
    await rc.upsert_orgs(session, list(orgs.values()))


# --- roster -----------------------------------------------------------------------------------------


def _enrollment_row(key: int, e: Any, at: datetime | None) -> dict:
    return {
        "student_key": key,
        "school_org_code": e.school_org_code,
        "stage": int(e.stage),
        "school_org_path": e.school_org_path,
        "school_name": e.school_name,
        "grade": e.grade,
        "class_name": e.class_name,
        "status": int(e.status),
        "enrolled_on": e.enrolled_on,
        "left_on": e.left_on,
        "boarder": bool(e.boarder),
        "event_at": at,
    }


async def apply_roster(session: AsyncSession, events: list[Event]) -> None:
    """Students, enrolments, memberships and recognitions.

    A MembershipsIssued is expanded into its entries, each applied as a MembershipAdded at the
    outer event's time: the entries carry no meta of their own, and (subject, message, time)
    triples spare copying the meta into each of up to thousands of entries per event."""
    decoded: list[tuple[str, Any, datetime | None]] = []
    ids: dict[str, str] = {}
    for ev in events:
        cls = _ROSTER_TYPES.get(ev.subject)
        if cls is None:
            continue
        m = cls.FromString(ev.data)
        at = event_time(m.meta.occurred_at)
        if ev.subject == MEMBERSHIPS_ISSUED:
            for entry in m.memberships:
                decoded.append((MEMBERSHIP_ADDED, entry, at))
                sid = entry.student_id
                blind = entry.id_number_blind_index
                if sid and (blind or sid not in ids):
                    ids[sid] = blind
            continue
        decoded.append((ev.subject, m, at))
        blind = getattr(m, "id_number_blind_index", "")
        if m.student_id and (blind or m.student_id not in ids):
            ids[m.student_id] = blind
    keys = await rc.student_keys(session, ids)
    people: dict[str, dict] = {}
    enrollments: dict[tuple, dict] = {}
    moved: list[dict] = []
    added: dict[str, dict] = {}
    verified: dict[str, dict] = {}
    ended: dict[str, dict] = {}
    recognitions: dict[tuple, dict] = {}
    for subject, m, at in decoded:
        key = keys[m.student_id]
        if subject in (STUDENT_REGISTERED, STUDENT_UPDATED):
            people[m.student_id] = {
                "student_id": m.student_id,
                "id_number_blind_index": m.id_number_blind_index,
                "name": m.name,
                "id_number_masked": m.id_number_masked,
                "gender": int(m.gender),
                "birth_date": m.birth_date,
                "event_at": at,
            }
        if subject in (STUDENT_REGISTERED, ENROLLMENT_CHANGED) and m.HasField("enrollment"):
            row = _enrollment_row(key, m.enrollment, at)
            enrollments[(key, row["school_org_code"], row["stage"])] = row
            prev = getattr(m, "previous", None)
            if (
                subject == ENROLLMENT_CHANGED
                and prev is not None
                and m.HasField("previous")
                and (prev.school_org_code, int(prev.stage))
                != (row["school_org_code"], row["stage"])
            ):
                moved.append(
                    {
                        "student_key": key,
                        "school_org_code": prev.school_org_code,
                        "stage": int(prev.stage),
                        "left_on": row["enrolled_on"] or (at.date().isoformat() if at else ""),
                        "event_at": at,
                    }
                )
        elif subject == MEMBERSHIP_ADDED:
            added[m.membership_id] = {
                "membership_id": m.membership_id,
                "student_key": key,
                "school_org_code": m.school_org_code,
                "school_org_path": m.school_org_path,
                "stage": int(m.stage),
                "special_group": int(m.group),
                "source": int(m.source),
                "batch_id": m.batch_id,
                "valid_from": m.valid_from,
                "valid_to": m.valid_to,
                "verification": int(m.verification_status),
                "added_at": at,
            }
        elif subject == MEMBERSHIP_VERIFIED:
            verified[m.membership_id] = {
                "membership_id": m.membership_id,
                "student_key": key,
                "special_group": int(m.group),
                "verification": int(m.verification_status),
                "verified_at": event_time(m.verified_at) or at,
            }
        elif subject == MEMBERSHIP_ENDED:
            ended[m.membership_id] = {
                "membership_id": m.membership_id,
                "student_key": key,
                "special_group": int(m.group),
                "source": int(m.source),
                "ended_on": m.ended_on or (at.date().isoformat() if at else "0001-01-01"),
            }
        elif subject == RECOGNITION_RECORDED:
            row = {
                "student_key": key,
                "school_year": m.school_year,
                "term": int(m.term) or 1,
                "level": int(m.level),
                "event_at": at,
            }
            recognitions[(key, row["school_year"], row["term"])] = row
    paths = await rc.current_paths(
        session, [r["school_org_code"] for r in [*enrollments.values(), *added.values()]]
    )
    rc.use_current_paths(enrollments.values(), paths, "school_org_code", "school_org_path")
    rc.use_current_paths(added.values(), paths, "school_org_code", "school_org_path")
    await rc.upsert_people(session, list(people.values()))
    await rc.close_moved_enrollments(session, moved)
    await rc.upsert_enrollments(session, list(enrollments.values()))
    await rc.add_memberships(session, list(added.values()))
    await rc.verify_memberships(session, list(verified.values()))
    await rc.end_memberships(session, list(ended.values()))
    await rc.upsert_recognitions(session, list(recognitions.values()))
    await rc.mark_dirty(
        session,
        [r["student_key"] for r in [*enrollments.values(), *moved, *added.values(),
                                    *verified.values(), *ended.values()]],
    )  # fmt: skip


_ROSTER_TYPES = {
    STUDENT_REGISTERED: roster_events.StudentRegistered,
    STUDENT_UPDATED: roster_events.StudentUpdated,
    ENROLLMENT_CHANGED: roster_events.StudentEnrollmentChanged,
    MEMBERSHIP_ADDED: roster_events.MembershipAdded,
    MEMBERSHIPS_ISSUED: roster_events.MembershipsIssued,
    MEMBERSHIP_VERIFIED: roster_events.MembershipVerified,
    MEMBERSHIP_ENDED: roster_events.MembershipEnded,
    RECOGNITION_RECORDED: roster_events.RecognitionRecorded,
}


# --- aid ----------------------------------------------------------------------------------------


async def apply_aid(session: AsyncSession, events: list[Event]) -> None:
    """Projects (category, tiers, exclusions), periods, and approved/revoked records."""
    projects: dict[str, dict] = {}
    tiers: dict[str, list[int]] = {}
    exclusions: dict[str, list[tuple[str, int]]] = {}
    opened: dict[tuple, dict] = {}
    closed: dict[tuple, dict] = {}
    approved: list[aid_events.RecordApproved] = []
    revoked: list[aid_events.RecordRevoked] = []
    for ev in events:
        if ev.subject in (PROJECT_CREATED, PROJECT_UPDATED):
            cls = (
                aid_events.ProjectCreated
                if ev.subject == PROJECT_CREATED
                else aid_events.ProjectUpdated
            )
            m = cls.FromString(ev.data)
            p = m.project
            code = p.project_code or m.project_code
            projects[code] = {
                "project_code": code,
                "name": p.name,
                "category": int(p.category),
                "stage": int(p.stage),
                "owner_org_path": p.owner_org_path,
                "allow_custom_amount": bool(p.allow_custom_amount),
                "min_amount_fen": p.min_amount_fen,
                "max_amount_fen": p.max_amount_fen,
                "requires_recognition": bool(p.requires_recognition),
                "min_hardship_level": int(p.min_hardship_level),
                "annual": bool(p.annual),
                "status": int(p.status) or 1,
                "event_at": event_time(m.meta.occurred_at),
            }
            tiers[code] = [tier.amount_fen for tier in p.tiers]
            exclusions[code] = [(x.project_code, int(x.scope) or 1) for x in p.exclusions]
        elif ev.subject == PERIOD_OPENED:
            m = aid_events.PeriodOpened.FromString(ev.data)
            key = _period(m.period)
            closed.pop(key, None)
            opened[key] = {
                "school_year": key[0],
                "term": key[1],
                "status": 1,
                "starts_on": m.starts_on,
                "ends_on": m.ends_on,
                "deadline_on": m.deadline_on,
                "event_at": event_time(m.meta.occurred_at),
            }
        elif ev.subject == PERIOD_CLOSED:
            m = aid_events.PeriodClosed.FromString(ev.data)
            key = _period(m.period)
            closed[key] = {
                "school_year": key[0],
                "term": key[1],
                "status": 2,
                "event_at": event_time(m.meta.occurred_at),
            }
        elif ev.subject == RECORD_APPROVED:
            approved.append(aid_events.RecordApproved.FromString(ev.data))
        elif ev.subject == RECORD_REVOKED:
            revoked.append(aid_events.RecordRevoked.FromString(ev.data))
    await rc.upsert_projects(session, list(projects.values()), tiers, exclusions)
    await rc.upsert_periods(session, list(opened.values()))
    await rc.close_periods(session, list(closed.values()))
    if approved or revoked:
        await _apply_records(session, approved, revoked)


async def _apply_records(
    session: AsyncSession,
    approved: list[aid_events.RecordApproved],
    revoked: list[aid_events.RecordRevoked],
) -> None:
    every = [*approved, *revoked]
    ids: dict[str, str] = {}
    for m in every:
        ids[m.student_id] = m.id_number_blind_index or ids.get(m.student_id, "")
    keys = await rc.student_keys(session, ids)
    periods = await rc.period_keys(session, [_period(m.period) for m in every])
    unknown = sorted({m.project_code for m in every if not m.project_category})
    categories = await rc.project_categories(session, unknown)
    paths = await rc.current_paths(session, [m.school_org_code for m in every])
    known_path = paths.get
    category_of = categories.get
    # Approvals as tuples in the order of funds.RECORD_COLUMNS, built in one pass; the org
    # copy's path wins over the event's (as use_current_paths does for dict rows).
    approved_rows: dict[str, tuple] = {}
    for m in approved:
        p = m.period
        code = m.school_org_code
        approved_rows[m.record_id] = (
            m.record_id,
            keys[m.student_id],
            periods[(p.school_year, int(p.term))],
            m.project_code,
            int(m.project_category) or category_of(m.project_code, 0),
            code,
            known_path(code) or m.school_org_path,
            int(m.stage),
            m.amount_fen,
            m.id_number_blind_index,
            rc.APPROVED,
            event_time(m.approved_at),
            None,
            m.student_name.strip()[:100],
        )
    revoked_rows = {
        m.record_id: {
            "record_id": m.record_id,
            "student_key": keys[m.student_id],
            "period_key": periods[_period(m.period)],
            "project_code": m.project_code,
            "category": int(m.project_category) or category_of(m.project_code, 0),
            "school_org_code": m.school_org_code,
            "school_org_path": known_path(m.school_org_code) or m.school_org_path,
            "stage": int(m.stage),
            "amount_fen": m.amount_fen,
            "id_number_blind_index": m.id_number_blind_index,
            "status": rc.REVOKED,
            "approved_at": None,
            "revoked_at": event_time(m.revoked_at),
            "student_name": m.student_name.strip()[:100],
        }
        for m in revoked
    }
    await rc.apply_records(session, list(approved_rows.values()), list(revoked_rows.values()))


# --- funding ---------------------------------------------------------------------------------------


async def apply_funding(session: AsyncSession, events: list[Event]) -> None:
    """Allocation lines (funds recorded per project × fiscal year × receiving org)."""
    made: list[dict] = []
    reversed_: list[dict] = []
    for ev in events:
        if ev.subject == ALLOCATION_MADE:
            m = funding_events.AllocationMade.FromString(ev.data)
            made.append(
                {
                    "allocation_id": m.allocation_id,
                    "project_code": m.project_code,
                    "fiscal_year": m.fiscal_year,
                    "to_org_code": m.to_org_code,
                    "to_org_path": m.to_org_path,
                    "amount_fen": m.amount_fen,
                    "reversed": False,
                }
            )
        elif ev.subject == ALLOCATION_REVERSED:
            r = funding_events.AllocationReversed.FromString(ev.data)
            reversed_.append(
                {
                    "allocation_id": r.allocation_id,
                    "project_code": r.project_code,
                    "fiscal_year": r.fiscal_year,
                    "to_org_code": r.to_org_code,
                    "to_org_path": r.to_org_path,
                    "amount_fen": r.amount_fen,
                }
            )
    paths = await rc.current_paths(session, [r["to_org_code"] for r in [*made, *reversed_]])
    rc.use_current_paths([*made, *reversed_], paths, "to_org_code", "to_org_path")
    await rc.add_allocations(session, made)
    await rc.reverse_allocations(session, reversed_)


HANDLERS: dict[str, Callable[[AsyncSession, list[Event]], Awaitable[None]]] = {
    "identity": apply_identity,
    "roster": apply_roster,
    "aid": apply_aid,
    "funding": apply_funding,
}

"""Subjects of the roster's events, the builders of hot-path events, bulk outbox writes, and the
consumer of identity's org events (the org read copy)."""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.consumer import Event
from zizhu_common.outbox import Outbox
from zizhu_common.rpc import CallerContext
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.identity.v1 import events_pb2 as identity_events
from zizhu_contracts.roster.v1 import roster_pb2

from roster_service import tables as t
from roster_service.repository.orgs import OrgRepository
from roster_service.repository.sql import bulk_insert

log = logging.getLogger(__name__)

STUDENT_REGISTERED = "roster.student.registered"
STUDENT_UPDATED = "roster.student.updated"
STUDENT_ENROLLMENT_CHANGED = "roster.student.enrollment_changed"
MEMBERSHIP_ADDED = "roster.membership.added"
MEMBERSHIP_VERIFIED = "roster.membership.verified"
MEMBERSHIP_ENDED = "roster.membership.ended"
BATCH_COMMITTED = "roster.membership.batch_committed"
RECOGNITION_RECORDED = "roster.recognition.recorded"
AUDIT_RECORDED = "roster.audit.recorded"

IDENTITY_ORG_SUBJECTS = [
    "identity.org.created",
    "identity.org.updated",
    "identity.org.moved",
    "identity.org.retired",
]
_LEVELS = {1: "national", 2: "province", 3: "city", 4: "county", 5: "school"}


def meta(caller: CallerContext | None, org_path: str) -> common_pb2.EventMeta:
    """EventMeta with actor, correlation id and org path (id and time are stamped later)."""
    m = common_pb2.EventMeta(org_path=org_path)
    if caller is not None:
        if not caller.account_id.startswith("system:"):
            m.actor_account_id = caller.account_id
        m.correlation_id = caller.request_id
    return m


async def add_events(
    session: AsyncSession, outbox: Outbox, events: list[tuple[str, Message]]
) -> None:
    """Record events in the outbox inside the session's transaction: the first through
    Outbox.add_many (so the relay wakes after the commit), the rest in one bulk insert (COPY on
    PostgreSQL). Every event gets its id, the same occurred_at (the commit's) and the producer."""
    if not events:
        return
    await outbox.add_many(session, events[:1])
    if len(events) == 1:
        return
    now = datetime.now(UTC)
    occurred = Timestamp()
    occurred.FromDatetime(now)
    rows = []
    for subject, message in events[1:]:
        m = message.meta  # type: ignore[attr-defined]
        if not m.event_id:
            m.event_id = time_ordered_id()
        if not m.HasField("occurred_at"):
            m.occurred_at.CopyFrom(occurred)
        if not m.producer:
            m.producer = outbox.producer
        rows.append(
            {
                "event_id": m.event_id,
                "subject": subject,
                "event_type": message.DESCRIPTOR.full_name,
                "payload": message.SerializeToString(),
                "created_at": now,
                "attempts": 0,
            }
        )
    await bulk_insert(session, t.outbox_event, rows)


_seq = int.from_bytes(os.urandom(2), "big")


def time_ordered_id() -> str:
    """A UUIDv7-shaped event id (ms timestamp first): bulk inserts append to the outbox's unique
    index instead of scattering over it as random ids do."""
    global _seq
    _seq = (_seq + 1) & 0xFFFF
    return f"{int(time.time() * 1000):012x}7{_seq:04x}{os.urandom(8).hex()[:15]}"


def enrollment_message(e: dict, school_name: str) -> roster_pb2.Enrollment:
    """The contract's Enrollment from an enrollment row (as dict)."""
    return roster_pb2.Enrollment(
        school_org_code=e["school_org_code"],
        school_name=school_name,
        school_org_path=e["school_org_path"],
        stage=e["stage"],
        student_number=e["student_number"],
        grade=e["grade"],
        class_name=e["class_name"],
        major_name=e["major_name"],
        status=e["status"],
        enrolled_on=e["enrolled_on"],
        left_on=e["left_on"],
        boarder=e["boarder"],
        status_date=e["status_date"],
    )


class OrgCopyConsumer:
    """Keeps the org read copy from identity.org.* events."""

    def __init__(self, orgs: OrgRepository) -> None:
        self.orgs = orgs

    async def handle(self, session: AsyncSession, events: list[Event]) -> None:
        """Apply a batch of org events in order."""
        now = datetime.now(UTC)
        for ev in sorted(events, key=lambda e: e.stream_seq):
            kind = ev.subject.rsplit(".", 1)[-1]
            if kind in ("created", "updated"):
                cls = (
                    identity_events.OrgCreated if kind == "created" else identity_events.OrgUpdated
                )
                msg = cls.FromString(ev.data)
                await self.apply_org(session, msg.org, now)
            elif kind == "moved":
                moved = identity_events.OrgMoved.FromString(ev.data)
                if moved.old_path and moved.new_path and moved.old_path != moved.new_path:
                    await self.orgs.move_subtree(session, moved.old_path, moved.new_path)
            elif kind == "retired":
                retired = identity_events.OrgRetired.FromString(ev.data)
                await self.orgs.set_status(session, retired.org_code, "retired", now)
            else:
                log.debug("ignoring %s", ev.subject)

    async def apply_org(self, session: AsyncSession, org: object, now: datetime) -> None:
        """Upsert one org from identity's Org message."""
        await self.orgs.upsert(
            session,
            code=org.org_code,  # type: ignore[attr-defined]
            name=org.name,  # type: ignore[attr-defined]
            level=_LEVELS.get(org.level, "school"),  # type: ignore[attr-defined]
            parent_code=org.parent_code,  # type: ignore[attr-defined]
            org_path=org.org_path,  # type: ignore[attr-defined]
            stages=list(org.stages),  # type: ignore[attr-defined]
            status="retired" if org.status == 2 else "active",  # type: ignore[attr-defined]
            version=org.version,  # type: ignore[attr-defined]
            now=now,
        )

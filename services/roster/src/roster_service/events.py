"""Subjects of the roster's events, the builders of hot-path events, bulk outbox writes, and the
consumer of identity's org events (the org read copy)."""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.consumer import Event
from zizhu_common.outbox import Outbox
from zizhu_common.rpc import CallerContext
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.identity.v1 import events_pb2 as identity_events
from zizhu_contracts.roster.v1 import events_pb2, roster_pb2

from roster_service import tables as t
from roster_service.event_parts import _field, _varint
from roster_service.repository.orgs import OrgRepository
from roster_service.repository.sql import bulk_insert_tuples

log = logging.getLogger(__name__)

STUDENT_REGISTERED = "roster.student.registered"
STUDENT_UPDATED = "roster.student.updated"
STUDENT_ENROLLMENT_CHANGED = "roster.student.enrollment_changed"
MEMBERSHIP_ADDED = "roster.membership.added"
MEMBERSHIPS_ISSUED = "roster.membership.issued"
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
    await bulk_insert_tuples(
        session, t.outbox_event, OUTBOX_COLUMNS, outbox_rows(outbox, events[1:])
    )


def outbox_rows(
    outbox: Outbox, events: list[tuple[str, Message]], *, created_at: Any = None
) -> list[tuple[Any, ...]]:
    """Outbox rows (OUTBOX_COLUMNS order) of events stamped with a time-ordered id, one
    occurred_at and the producer (fields already set are kept); created_at is now unless given
    (as the driver value of a bound bulk write)."""
    if not events:
        return []
    now = datetime.now(UTC)
    created = now if created_at is None else created_at
    occurred = Timestamp()
    occurred.FromDatetime(now)
    producer = outbox.producer
    rows = []
    for (subject, message), new_id in zip(events, time_ordered_ids(len(events)), strict=True):
        m = message.meta  # type: ignore[attr-defined]
        if not m.event_id:
            m.event_id = new_id
        if not m.HasField("occurred_at"):
            m.occurred_at.CopyFrom(occurred)
        if not m.producer:
            m.producer = producer
        rows.append(
            (
                m.event_id,
                subject,
                message.DESCRIPTOR.full_name,
                message.SerializeToString(),
                created,
                0,
            )
        )
    return rows


OUTBOX_COLUMNS = ("event_id", "subject", "event_type", "payload", "created_at", "attempts")
_seq = int.from_bytes(os.urandom(2), "big")


def time_ordered_id() -> str:
    """A UUIDv7-shaped event id (ms timestamp first): bulk inserts append to the outbox's unique
    index instead of scattering over it as random ids do."""
    return time_ordered_ids(1)[0]


def time_ordered_ids(n: int) -> list[str]:
    """n time-ordered ids (one clock read and one draw of random bytes for all of them)."""
    global _seq
    head = f"{int(time.time() * 1000):012x}7"
    noise = os.urandom(8 * n).hex()
    out = []
    for i in range(0, 16 * n, 16):
        _seq = (_seq + 1) & 0xFFFF
        out.append(f"{head}{_seq:04x}{noise[i : i + 15]}")
    return out


# -- StudentRegistered from pre-serialised parts -------------------------------------------------
#
# A 学籍 file registers up to millions of students, one event each. Protobuf's encoding is a
# sequence of fields in field-number order, so the payload is assembled from byte strings: the
# person and enrolment fields that depend only on the row (serialised where the row is validated,
# in worker processes for large files), the school's fields (once per school) and the event meta
# (once per org path and chunk), with only the ids written per row. The result is byte-for-byte
# what StudentRegistered(...).SerializeToString() gives (the tests compare them).

REGISTERED_TYPE = events_pb2.StudentRegistered.DESCRIPTOR.full_name


class PrebuiltEvents:
    """Outbox rows of many events of one transaction from their messages serialised without
    meta (field 1 of every event): one occurred_at and producer, the caller's meta per org path,
    time-ordered event ids; created_at is now unless given (as the driver value of a bound bulk
    write). Byte-for-byte what stamping each message and serialising it gives."""

    def __init__(self, caller: CallerContext | None, producer: str, created_at: Any) -> None:
        self.caller = caller
        self.producer = producer
        now = datetime.now(UTC)
        self.created_at = now if created_at is None else created_at
        self.occurred = Timestamp()
        self.occurred.FromDatetime(now)
        self._meta: dict[str, tuple[bytes, bytes]] = {}

    def meta_head(self, org_path: str) -> tuple[bytes, bytes]:
        """The meta field's bytes before and after the event id (EventMeta fields 2–6 follow
        it) for an org path and an event id of the usual length."""
        parts = self._meta.get(org_path)
        if parts is None:
            m = meta(self.caller, org_path)
            m.occurred_at.CopyFrom(self.occurred)
            m.producer = self.producer
            rest = m.SerializeToString()
            size = 2 + _ID_LEN + len(rest)
            parts = self._meta[org_path] = (
                b"\x0a" + _varint(size) + b"\x0a" + _varint(_ID_LEN),
                rest,
            )
        return parts

    def rows(
        self, subject: str, event_type: str, items: list[tuple[str, bytes]]
    ) -> list[tuple[Any, ...]]:
        """Outbox rows (OUTBOX_COLUMNS order) of (org path, message without meta) items."""
        created = self.created_at
        out = []
        append = out.append
        head_of = self.meta_head
        for (path, body), event_id in zip(items, time_ordered_ids(len(items)), strict=True):
            head, rest = head_of(path)
            payload = b"".join((head, event_id.encode(), rest, body))
            append((event_id, subject, event_type, payload, created, 0))
        return out


class RegisteredEvents(PrebuiltEvents):
    """StudentRegistered outbox rows from pre-serialised parts."""

    def rows_of(self, items: list[tuple[str, str, bytes, bytes, bytes]]) -> list[tuple[Any, ...]]:
        """Outbox rows of (student id, org path, person part, school part, enrolment part)."""
        bodies = []
        append = bodies.append
        for sid, path, person, school, enrolment in items:
            size = len(school) + len(enrolment)
            append(
                (
                    path,
                    b"".join(
                        (
                            _field(b"\x12", sid.encode()),
                            person,
                            b"\x42",
                            bytes((size,)) if size < 0x80 else _varint(size),
                            school,
                            enrolment,
                        )
                    ),
                )
            )
        return self.rows(STUDENT_REGISTERED, REGISTERED_TYPE, bodies)


_ID_LEN = len(time_ordered_id())


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

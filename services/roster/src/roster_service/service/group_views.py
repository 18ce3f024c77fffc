"""Special groups: the views the use cases answer, event builders and small helpers."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from typing import Any

from zizhu_common.errors import (
    InvalidArgument,
    NotFound,
)
from zizhu_common.rpc import CallerContext
from zizhu_contracts.roster.v1 import events_pb2

from roster_service.domain.common import (
    SpecialGroup,
    Term,
    school_year_range,
    term_range,
)
from roster_service.domain.groups import (
    MembershipStatus,
    Source,
    Verification,
)
from roster_service.event_parts import _field, _varint
from roster_service.events import (
    meta,
)
from roster_service.repository.sql import ints

# Issued rows per membership insert of a batch's matching, in whole schools (a page's returned
# rows should fit in the socket's buffers while the previous page's events are built).
MEMBERSHIP_PAGE = 5_000
# Entries per MembershipsIssued event: about 150 bytes each, far below NATS's 1 MB message limit.
ISSUED_PER_EVENT = 2_000


@dataclass(slots=True)
class BatchView:
    """An issue batch as shown."""

    batch_id: str
    issuing_org_code: str
    issuing_org_path: str
    title: str
    source_system: str
    groups: list[int]
    mode: int
    as_of_date: str
    status: int
    row_count: int
    matched_count: int
    not_found_count: int
    not_enrolled_count: int
    invalid_count: int
    memberships_added: int
    memberships_ended: int
    error_message: str
    created_by: str
    created_at: datetime | None
    committed_at: datetime | None
    school_year: str
    previous_batch_id: str
    added_count: int
    removed_count: int
    changed_count: int
    ambiguous_count: int
    chunk_count: int


@dataclass(slots=True)
class IssuedRowView:
    """One issued row as shown."""

    issued_row_id: str
    batch_id: str
    row_number: int
    group: int
    action: int
    name: str
    id_type: int
    id_number_masked: str
    household_region_code: str
    match_status: int
    match_note: str
    student_id: str
    school_org_code: str
    school_name: str
    school_org_path: str
    stage: int
    membership_id: str
    verification_status: int


@dataclass(slots=True)
class MembershipView:
    """One membership as shown."""

    membership_id: str
    student_id: str
    student_name: str
    id_number_masked: str
    school_org_code: str
    school_name: str
    school_org_path: str
    stage: int
    group: int
    source: int
    batch_id: str
    issued_row_id: str
    valid_from: str
    valid_to: str
    status: int
    verification_status: int
    verification_note: str
    verified_by: str
    verified_at: datetime | None
    evidence_note: str
    end_reason: str
    ended_at: datetime | None
    created_by: str
    created_at: datetime | None
    version: int
    school_year: str


@dataclass(slots=True)
class ChangeRowView:
    """One change of a batch against the previous one."""

    kind: int
    group: int
    name: str
    id_number_masked: str
    issued_row_id: str
    previous_issued_row_id: str
    changed_fields: list[str]
    student_id: str
    school_org_code: str


@dataclass(slots=True)
class OrgRefView:
    """An org reference."""

    org_code: str
    name: str
    level: int
    org_path: str


@dataclass(slots=True)
class ProgressRow:
    """Verification progress of one org."""

    kind: int
    org: OrgRefView
    issued_count: int = 0
    pending_count: int = 0
    confirmed_count: int = 0
    rejected_count: int = 0
    self_collected_count: int = 0
    ended_count: int = 0


@dataclass(slots=True)
class PeriodMemberView:
    """A special-group student enrolled in a period."""

    student_id: str
    id_number_blind_index: str
    name: str
    id_number_masked: str
    school_org_code: str
    school_org_path: str
    stage: int
    grade: str
    class_name: str
    groups: list[Any] = field(default_factory=list)


LEVEL_NUM = {"national": 1, "province": 2, "city": 3, "county": 4, "school": 5}


def batch_view(row: Any, received: tuple[int, int] | None = None) -> BatchView:
    """A batch row for display; `received` (chunks, rows) for a batch still receiving, whose
    row counts them only once it is committed."""
    chunk_count, row_count = received if received is not None else (row.chunk_count, row.row_count)
    return BatchView(
        batch_id=row.batch_id,
        issuing_org_code=row.issuing_org_code,
        issuing_org_path=row.issuing_org_path,
        title=row.title,
        source_system=row.source_system,
        groups=ints(row.groups),
        mode=row.mode,
        as_of_date=row.as_of_date,
        status=row.status,
        row_count=row_count,
        matched_count=row.matched_count,
        not_found_count=row.not_found_count,
        not_enrolled_count=row.not_enrolled_count,
        invalid_count=row.invalid_count,
        memberships_added=row.memberships_added,
        memberships_ended=row.memberships_ended,
        error_message=row.error_message,
        created_by=row.created_by,
        created_at=row.created_at,
        committed_at=row.committed_at,
        school_year=row.school_year,
        previous_batch_id=row.previous_batch_id,
        added_count=row.added_count,
        removed_count=row.removed_count,
        changed_count=row.changed_count,
        ambiguous_count=row.ambiguous_count,
        chunk_count=chunk_count,
    )


def membership_view(row: Any, school_name: str = "") -> MembershipView:
    """A membership row (joined with its student) for display."""
    return MembershipView(
        membership_id=str(row.id),
        student_id=row.student_id,
        student_name=getattr(row, "student_name", ""),
        id_number_masked=getattr(row, "id_number_masked", ""),
        school_org_code=row.school_org_code,
        school_name=school_name,
        school_org_path=row.school_org_path,
        stage=row.stage,
        group=row.special_group,
        source=row.source,
        batch_id=row.batch_id or "",
        issued_row_id=str(row.issued_row_id or ""),
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        status=row.status,
        verification_status=row.verification_status,
        verification_note=row.verification_note,
        verified_by=row.verified_by,
        verified_at=row.verified_at,
        evidence_note=row.evidence_note,
        end_reason=row.end_reason,
        ended_at=row.ended_at,
        created_by=row.created_by,
        created_at=row.created_at,
        version=row.version,
        school_year=row.school_year,
    )


def added_event(row: Any, bi: str, caller: CallerContext | None) -> events_pb2.MembershipAdded:
    return events_pb2.MembershipAdded(
        meta=meta(caller, row.school_org_path),
        membership_id=str(row.id),
        student_id=row.student_id,
        id_number_blind_index=bi or "",
        school_org_code=row.school_org_code,
        school_org_path=row.school_org_path,
        stage=row.stage,
        group=row.special_group,
        source=row.source,
        batch_id=row.batch_id or "",
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        verification_status=row.verification_status,
        school_year=row.school_year,
    )


ADDED_TYPE = events_pb2.MembershipAdded.DESCRIPTOR.full_name


class AddedBodies:
    """MembershipAdded bodies (without meta) of many memberships: fields 2–4 (membership id,
    student id, blind index) per row, fields 5–14 serialised once per distinct combination
    (school, stage, group, source, batch, validity, verification, school year) — a batch has
    a few thousand of them for a million memberships."""

    def __init__(self) -> None:
        self._tails: dict[tuple[Any, ...], bytes] = {}

    def body(self, row: Any, bi: str) -> bytes:
        """The body of one membership (NewMembership or a row with the same fields)."""
        key = (
            row.school_org_code, row.school_org_path, row.stage, row.special_group, row.source,
            row.batch_id, row.valid_from, row.valid_to, row.verification_status, row.school_year,
        )  # fmt: skip
        tail = self._tails.get(key)
        if tail is None:
            tail = self._tails[key] = events_pb2.MembershipAdded(
                school_org_code=row.school_org_code,
                school_org_path=row.school_org_path,
                stage=row.stage,
                group=row.special_group,
                source=row.source,
                batch_id=row.batch_id or "",
                valid_from=row.valid_from,
                valid_to=row.valid_to,
                verification_status=row.verification_status,
                school_year=row.school_year,
            ).SerializeToString()
        head = events_pb2.MembershipAdded(
            membership_id=str(row.id), student_id=row.student_id, id_number_blind_index=bi or ""
        ).SerializeToString()
        return head + tail


ISSUED_TYPE = events_pb2.MembershipsIssued.DESCRIPTOR.full_name


def issued_events(
    page: Sequence[tuple[Any, str]], bodies: AddedBodies, per_event: int = ISSUED_PER_EVENT
) -> list[tuple[str, bytes]]:
    """MembershipsIssued bodies (without meta) of new memberships of one batch, sorted by school
    path — (NewMembership, blind index) pairs: one event per school, in parts of at most
    `per_event` entries, each with its school's path (the event's org path). The same bytes as
    serialising the message (fields in number order, empty ones left out)."""
    out: list[tuple[str, bytes]] = []
    for (code, path, batch_id), group in groupby(
        page, key=lambda p: (p[0].school_org_code, p[0].school_org_path, p[0].batch_id)
    ):
        entries = [bodies.body(r, bi) for r, bi in group]
        head = b"".join(
            _field(tag, value.encode())
            for tag, value in ((b"\x12", batch_id or ""), (b"\x1a", code), (b"\x22", path))
            if value
        )
        for part, start in enumerate(range(0, len(entries), per_event), 1):
            members = b"".join(
                b"\x32" + _varint(len(e)) + e for e in entries[start : start + per_event]
            )
            out.append((path, b"".join((head, b"\x28", _varint(part), members))))
    return out


def ended_event(row: Any, caller: CallerContext | None) -> events_pb2.MembershipEnded:
    return events_pb2.MembershipEnded(
        meta=meta(caller, row.school_org_path),
        membership_id=str(row.id),
        student_id=row.student_id,
        school_org_code=row.school_org_code,
        group=row.special_group,
        source=row.source,
        ended_on=row.ended_on,
        reason=row.end_reason,
        batch_id=row.last_batch_id or "",
        school_org_path=row.school_org_path,
        school_year=row.school_year,
    )


def membership_pk(value: str, field_name: str = "membership_id") -> int:
    if not value.isdigit() or len(value) > 18:
        raise NotFound("特殊群体记录不存在", code="MEMBERSHIP_NOT_FOUND", field=field_name)
    return int(value)


def check_group(value: int, field_name: str) -> int:
    if value not in SpecialGroup.__members__.values():
        raise InvalidArgument("特殊群体类别应为13类之一", code="GROUP_UNKNOWN", field=field_name)
    return int(value)


class Steps:
    """Durations of the steps of a long operation, for its log line."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.done: list[str] = []

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.done.append(f"{name} {now - self.last:.1f}s")
        self.last = now

    def __str__(self) -> str:
        return ", ".join(self.done)


def period_range(school_year: str, term: int) -> tuple[Any, Any]:
    if term in (Term.AUTUMN, Term.SPRING):
        return term_range(school_year, Term(term))
    return school_year_range(school_year)


def child_code(path: str, root_path: str) -> str:
    rest = path[len(root_path) :]
    return rest.split("/", 1)[0] if rest else ""


def add_counts(target: ProgressRow, source: int, status: int, verification: int, n: int) -> None:
    if status != MembershipStatus.ACTIVE:
        target.ended_count += n
        return
    if source == Source.SELF_COLLECTED:
        target.self_collected_count += n
        return
    target.issued_count += n
    if verification == Verification.CONFIRMED:
        target.confirmed_count += n
    elif verification == Verification.REJECTED:
        target.rejected_count += n
    else:
        target.pending_count += n

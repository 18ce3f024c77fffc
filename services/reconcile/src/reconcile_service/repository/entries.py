"""Unfunded entries (未资助名单) and the reasons reported on them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from reconcile_service import tables as t
from reconcile_service.domain.groups import mask_of
from reconcile_service.repository.sql import aware, chunks, upsert

E, S = t.unfunded_entry, t.student


@dataclass
class EntryFilter:
    """Filters of the unfunded list; scope_path is already inside the caller's subtree."""

    period_key: int
    scope_path: str
    statuses: tuple[int, ...] = (1,)
    groups: tuple[int, ...] = ()
    source: int = 0
    reason_state: int = 0
    reason_codes: tuple[str, ...] = ()
    stage: int = 0
    student_name: str = ""
    id_number_blind_index: str = ""


@dataclass
class AuthorityReason:
    """A reason an authority level filled on an entry."""

    org_level: int
    org_code: str
    org_name: str
    reason_code: str
    note: str
    reported_by: str
    reported_at: datetime | None


@dataclass
class EntryRow:
    """One entry as read, with the student's display data."""

    entry_key: int
    period_key: int
    student_key: int
    student_id: str
    student_name: str
    id_number_masked: str
    school_org_code: str
    school_org_path: str
    school_name: str
    stage: int
    grade: str
    class_name: str
    groups_mask: int
    issued_mask: int
    self_mask: int
    status: int
    first_found_at: datetime | None
    reopened_at: datetime | None
    closed_at: datetime | None
    last_run_id: str
    reason_code: str | None
    reason_note: str
    reason_by: str
    reason_org_code: str
    reason_at: datetime | None
    reason_carried_over: bool
    authority_reasons: list[AuthorityReason] = field(default_factory=list)


_COLUMNS = (
    E.c.entry_key,
    E.c.period_key,
    E.c.student_key,
    S.c.student_id,
    S.c.name.label("student_name"),
    S.c.id_number_masked,
    E.c.school_org_code,
    E.c.school_org_path,
    E.c.school_name,
    E.c.stage,
    E.c.grade,
    E.c.class_name,
    E.c.groups_mask,
    E.c.issued_mask,
    E.c.self_mask,
    E.c.status,
    E.c.first_found_at,
    E.c.reopened_at,
    E.c.closed_at,
    E.c.last_run_id,
    E.c.reason_code,
    E.c.reason_note,
    E.c.reason_by,
    E.c.reason_org_code,
    E.c.reason_at,
    E.c.reason_carried_over,
)


def _row(r: Any) -> EntryRow:
    values = dict(r._mapping)
    for key in ("first_found_at", "reopened_at", "closed_at", "reason_at"):
        values[key] = aware(values[key])
    values["reason_carried_over"] = bool(values["reason_carried_over"])
    return EntryRow(**values)


def _conditions(f: EntryFilter) -> list[Any]:
    cond: list[Any] = [E.c.period_key == f.period_key]
    if f.scope_path != "/":
        cond.append(E.c.school_org_path.startswith(f.scope_path, autoescape=True))
    if f.statuses:
        cond.append(E.c.status.in_(f.statuses))
    source_col = {1: E.c.issued_mask, 2: E.c.self_mask}.get(f.source, E.c.groups_mask)
    if f.groups:
        cond.append(source_col.op("&")(mask_of(f.groups)) != 0)
    elif f.source:
        cond.append(source_col != 0)
    if f.reason_state == 1:
        cond.append(E.c.reason_code.isnot(None))
    elif f.reason_state == 2:
        cond.append(E.c.reason_code.is_(None))
    if f.reason_codes:
        cond.append(E.c.reason_code.in_(f.reason_codes))
    if f.stage:
        cond.append(E.c.stage == f.stage)
    if f.student_name:
        cond.append(S.c.name.startswith(f.student_name, autoescape=True))
    if f.id_number_blind_index:
        cond.append(S.c.id_number_blind_index == f.id_number_blind_index)
    return cond


async def list_entries(
    session: AsyncSession, f: EntryFilter, *, after: tuple[str, int] | None, limit: int
) -> tuple[list[EntryRow], int]:
    """A page of entries ordered by school path then key (keyset), and the total."""
    cond = _conditions(f)
    base = select(*_COLUMNS).select_from(E.join(S, S.c.student_key == E.c.student_key))
    page_cond = list(cond)
    if after is not None:
        page_cond.append(
            or_(
                E.c.school_org_path > after[0],
                and_(E.c.school_org_path == after[0], E.c.entry_key > after[1]),
            )
        )
    rows = await session.execute(
        base.where(*page_cond).order_by(E.c.school_org_path, E.c.entry_key).limit(limit)
    )
    entries = [_row(r) for r in rows]
    total = (
        await session.execute(
            select(func.count())
            .select_from(E.join(S, S.c.student_key == E.c.student_key))
            .where(*cond)
        )
    ).scalar_one()
    await attach_authority_reasons(session, entries)
    return entries, int(total)


async def get_entries(session: AsyncSession, keys: Sequence[int]) -> dict[int, EntryRow]:
    """Entries by key with their authority reasons (missing keys are absent)."""
    found: dict[int, EntryRow] = {}
    for part in chunks(list(keys), 1000):
        rows = await session.execute(
            select(*_COLUMNS)
            .select_from(E.join(S, S.c.student_key == E.c.student_key))
            .where(E.c.entry_key.in_(part))
        )
        for r in rows:
            found[r.entry_key] = _row(r)
    await attach_authority_reasons(session, list(found.values()))
    return found


async def attach_authority_reasons(session: AsyncSession, entries: list[EntryRow]) -> None:
    """Fill each entry's authority reasons (bottom-up: county first)."""
    by_key = {e.entry_key: e for e in entries}
    if not by_key:
        return
    A = t.entry_authority_reason
    for part in chunks(list(by_key), 1000):
        rows = await session.execute(
            select(A).where(A.c.entry_key.in_(part)).order_by(A.c.entry_key, A.c.org_level.desc())
        )
        for r in rows:
            by_key[r.entry_key].authority_reasons.append(
                AuthorityReason(
                    r.org_level,
                    r.org_code,
                    r.org_name,
                    r.reason_code,
                    r.note,
                    r.reported_by,
                    aware(r.reported_at),
                )
            )


async def set_school_reason(
    session: AsyncSession,
    keys: Sequence[int],
    *,
    code: str,
    note: str,
    actor: str,
    org_code: str,
    now: datetime,
) -> None:
    """Record the school's reason on entries (replacing an earlier one, carried over or not)."""
    for part in chunks(list(keys), 1000):
        await session.execute(
            update(E)
            .where(E.c.entry_key.in_(part))
            .values(
                reason_code=code,
                reason_note=note,
                reason_by=actor,
                reason_org_code=org_code,
                reason_at=now,
                reason_carried_over=False,
            )
        )


async def set_authority_reason(
    session: AsyncSession,
    keys: Sequence[int],
    *,
    level: int,
    org_code: str,
    org_name: str,
    code: str,
    note: str,
    actor: str,
    now: datetime,
) -> None:
    """Record (or replace) one authority level's reason on entries."""
    A = t.entry_authority_reason
    rows = [
        {
            "entry_key": k,
            "org_level": level,
            "org_code": org_code,
            "org_name": org_name,
            "reason_code": code,
            "note": note,
            "reported_by": actor,
            "reported_at": now,
        }
        for k in keys
    ]
    stmt = upsert(session, A)
    stmt = stmt.on_conflict_do_update(
        index_elements=["entry_key", "org_level"],
        set_={
            c: stmt.excluded[c]
            for c in ("org_code", "org_name", "reason_code", "note", "reported_by", "reported_at")
        },
    )
    for part in chunks(rows, 1000):
        await session.execute(stmt, list(part))


async def delete_authority_reasons(session: AsyncSession, keys: Sequence[int], level: int) -> None:
    """Remove one level's reasons from entries."""
    A = t.entry_authority_reason
    await session.execute(delete(A).where(A.c.entry_key.in_(keys), A.c.org_level == level))

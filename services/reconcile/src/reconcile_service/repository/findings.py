"""Findings (疑似问题) and their audited history."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from reconcile_service import tables as t
from reconcile_service.domain.rules import LIVE, OPEN, Hit, status_after_run
from reconcile_service.repository.sql import aware, chunks

F, A, S = t.finding, t.finding_action, t.student


@dataclass
class FindingRow:
    """One finding as read."""

    finding_key: int
    rule_code: str
    severity: int
    status: int
    period_key: int
    org_code: str
    org_path: str
    student_key: int | None
    student_id: str
    student_name: str
    id_number_masked: str
    org_name: str
    project_code: str
    record_ids: list[str]
    summary: str
    facts: dict[str, str]
    run_id: str
    found_at: datetime | None
    last_seen_at: datetime | None
    resolution_note: str
    resolved_by: str
    resolved_at: datetime | None


@dataclass
class ActionRow:
    """One step of a finding's history."""

    from_status: int
    to_status: int
    note: str
    actor: str
    actor_org_code: str
    at: datetime | None
    run_id: str


@dataclass
class FindingFilter:
    """Filters of the findings list (scope already checked)."""

    scope_path: str
    period_key: int | None = None
    rule_codes: tuple[str, ...] = ()
    severity: int = 0
    statuses: tuple[int, ...] = LIVE
    project_code: str = ""
    student_id: str = ""
    record_id: str = ""


@dataclass
class RunOutcome:
    """What applying a run's hits did."""

    raised: list[FindingRow] = field(default_factory=list)
    cleared: list[FindingRow] = field(default_factory=list)
    reopened: int = 0


_COLS = (
    F.c.finding_key,
    F.c.rule_code,
    F.c.severity,
    F.c.status,
    F.c.period_key,
    F.c.org_code,
    F.c.org_path,
    F.c.student_key,
    F.c.student_id,
    func.coalesce(S.c.name, "").label("student_name"),
    func.coalesce(S.c.id_number_masked, "").label("id_number_masked"),
    func.coalesce(t.org.c.name, "").label("org_name"),
    F.c.project_code,
    F.c.record_ids,
    F.c.summary,
    F.c.facts,
    F.c.run_id,
    F.c.found_at,
    F.c.last_seen_at,
    F.c.resolution_note,
    F.c.resolved_by,
    F.c.resolved_at,
)
_FROM = F.outerjoin(S, S.c.student_key == F.c.student_key).outerjoin(
    t.org, t.org.c.org_code == F.c.org_code
)


def _row(r: Any) -> FindingRow:
    v = dict(r._mapping)
    v["record_ids"] = json.loads(v["record_ids"] or "[]")
    v["facts"] = json.loads(v["facts"] or "{}")
    for k in ("found_at", "last_seen_at", "resolved_at"):
        v[k] = aware(v[k])
    return FindingRow(**v)


async def apply_hits(
    session: AsyncSession,
    hits: Sequence[Hit],
    *,
    period_key_of: dict[str, int],
    period_keys: Sequence[int],
    scope_path: str,
    run_id: str,
    now: datetime,
) -> RunOutcome:
    """Raise new findings, keep found ones alive (reopening fixed/cleared ones), clear live ones
    of the run's periods and scope that were not found again. DISMISSED stays dismissed."""
    outcome = RunOutcome()
    by_fp = {h.fingerprint: h for h in hits}
    existing: dict[str, tuple[int, int]] = {}
    for part in chunks(list(by_fp), 1000):
        rows = await session.execute(
            select(F.c.fingerprint, F.c.finding_key, F.c.status).where(F.c.fingerprint.in_(part))
        )
        existing.update({fp: (key, status) for fp, key, status in rows.all()})
    new = [h for fp, h in by_fp.items() if fp not in existing]
    for part in chunks(new, 1000):
        rows = [
            {
                "fingerprint": h.fingerprint,
                "rule_code": h.rule_code,
                "severity": h.severity,
                "status": OPEN,
                "period_key": period_key_of[h.fingerprint],
                "org_code": h.org_code,
                "org_path": h.org_path,
                "student_key": h.student_key,
                "student_id": h.student_id,
                "project_code": h.project_code,
                "record_ids": json.dumps(h.record_ids),
                "summary": h.summary,
                "facts": json.dumps(h.facts, ensure_ascii=False),
                "run_id": run_id,
                "found_at": now,
                "last_seen_at": now,
                "resolution_note": "",
                "resolved_by": "",
            }
            for h in part
        ]
        await session.execute(insert(F), rows)
    new_keys = await _keys(session, [h.fingerprint for h in new])
    await _log(
        session, [(k, 0, OPEN, "") for k in new_keys.values()], "system:reconcile", run_id, now
    )

    seen = [(fp, key, status) for fp, (key, status) in existing.items()]
    reopen = [key for _, key, status in seen if status_after_run(status, True) == OPEN]
    for part in chunks([key for _, key, _ in seen], 1000):
        await session.execute(
            update(F).where(F.c.finding_key.in_(part)).values(last_seen_at=now, run_id=run_id)
        )
    for part in chunks(reopen, 1000):
        await session.execute(
            update(F)
            .where(F.c.finding_key.in_(part))
            .values(status=OPEN, resolved_at=None, resolved_by="", resolution_note="")
        )
    await _log(
        session,
        [(k, s, OPEN, "再次比对仍发现该问题") for _, k, s in seen if k in set(reopen)],
        "system:reconcile",
        run_id,
        now,
    )
    outcome.reopened = len(reopen)

    cond = [F.c.status.in_(LIVE), F.c.period_key.in_(list(period_keys))]
    if scope_path != "/":
        cond.append(F.c.org_path.startswith(scope_path, autoescape=True))
    live = await session.execute(select(F.c.finding_key, F.c.fingerprint, F.c.status).where(*cond))
    clear = [(key, status) for key, fp, status in live.all() if fp not in by_fp]
    for part in chunks([k for k, _ in clear], 1000):
        await session.execute(
            update(F)
            .where(F.c.finding_key.in_(part))
            .values(status=5, resolved_at=now, resolved_by="system:reconcile")
        )
    await _log(
        session, [(k, s, 5, "比对未再发现") for k, s in clear], "system:reconcile", run_id, now
    )
    outcome.raised = list((await get_findings(session, list(new_keys.values()))).values())
    outcome.cleared = list((await get_findings(session, [k for k, _ in clear])).values())
    return outcome


async def _keys(session: AsyncSession, fps: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in chunks(fps, 1000):
        rows = await session.execute(
            select(F.c.fingerprint, F.c.finding_key).where(F.c.fingerprint.in_(part))
        )
        out.update(dict(rows.all()))
    return out


async def _log(
    session: AsyncSession,
    steps: list[tuple[int, int, int, str]],
    actor: str,
    run_id: str,
    now: datetime,
    actor_org_code: str = "",
) -> None:
    rows = [
        {
            "finding_key": key,
            "from_status": old,
            "to_status": new,
            "note": note,
            "actor": actor,
            "actor_org_code": actor_org_code,
            "run_id": run_id,
            "at": now,
        }
        for key, old, new, note in steps
    ]
    for part in chunks(rows, 1000):
        await session.execute(insert(A), list(part))


async def get_findings(session: AsyncSession, keys: Sequence[int]) -> dict[int, FindingRow]:
    """Findings by key."""
    out: dict[int, FindingRow] = {}
    for part in chunks(list(keys), 1000):
        rows = await session.execute(
            select(*_COLS).select_from(_FROM).where(F.c.finding_key.in_(part))
        )
        out.update({r.finding_key: _row(r) for r in rows})
    return out


async def list_findings(
    session: AsyncSession, f: FindingFilter, *, after: tuple[str, int] | None, limit: int
) -> tuple[list[FindingRow], int]:
    """A page of findings ordered by org path then key, and the total."""
    cond: list[Any] = []
    if f.scope_path != "/":
        cond.append(F.c.org_path.startswith(f.scope_path, autoescape=True))
    if f.period_key:
        cond.append(F.c.period_key == f.period_key)
    if f.rule_codes:
        cond.append(F.c.rule_code.in_(f.rule_codes))
    if f.severity:
        cond.append(F.c.severity == f.severity)
    if f.statuses:
        cond.append(F.c.status.in_(f.statuses))
    if f.project_code:
        cond.append(F.c.project_code == f.project_code)
    if f.student_id:
        cond.append(F.c.student_id == f.student_id)
    if f.record_id:
        cond.append(F.c.record_ids.contains(f'"{f.record_id}"', autoescape=True))
    page = list(cond)
    if after is not None:
        page.append(
            or_(F.c.org_path > after[0], and_(F.c.org_path == after[0], F.c.finding_key > after[1]))
        )
    rows = await session.execute(
        select(*_COLS)
        .select_from(_FROM)
        .where(*page)
        .order_by(F.c.org_path, F.c.finding_key)
        .limit(limit)
    )
    total = (await session.execute(select(func.count()).select_from(F).where(*cond))).scalar_one()
    return [_row(r) for r in rows], int(total)


async def resolve(
    session: AsyncSession,
    rows: Sequence[FindingRow],
    *,
    status: int,
    note: str,
    actor: str,
    actor_org_code: str,
    now: datetime,
) -> None:
    """Set a resolution on findings and log it."""
    keys = [r.finding_key for r in rows]
    for part in chunks(keys, 1000):
        await session.execute(
            update(F)
            .where(F.c.finding_key.in_(part))
            .values(status=status, resolution_note=note, resolved_by=actor, resolved_at=now)
        )
    await _log(
        session,
        [(r.finding_key, r.status, status, note) for r in rows],
        actor,
        "",
        now,
        actor_org_code,
    )


async def actions(session: AsyncSession, key: int) -> list[ActionRow]:
    """A finding's history, oldest first."""
    rows = await session.execute(
        select(A).where(A.c.finding_key == key).order_by(A.c.at, A.c.action_key)
    )
    return [
        ActionRow(
            r.from_status, r.to_status, r.note, r.actor, r.actor_org_code, aware(r.at), r.run_id
        )
        for r in rows
    ]

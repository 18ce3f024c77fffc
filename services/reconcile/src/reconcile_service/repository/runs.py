"""Comparison runs, periods and orgs as the run and the views need them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from reconcile_service import tables as t
from reconcile_service.domain.periods import Period, PeriodDates
from reconcile_service.repository.sql import aware, upsert

R = t.comparison_run
RUNNING, SUCCEEDED, FAILED = 1, 2, 3


@dataclass
class RunRow:
    """One comparison run."""

    run_id: str
    trigger: int
    periods: list[Period]
    org_code: str
    org_path: str
    include_verification: bool
    status: int
    triggered_by: str
    schedule_slot: str | None
    started_at: datetime
    finished_at: datetime | None = None
    duration_ms: int = 0
    students_checked: int = 0
    students_funded: int = 0
    unfunded_opened: int = 0
    unfunded_closed: int = 0
    unfunded_reopened: int = 0
    unfunded_open: int = 0
    findings_raised: int = 0
    findings_cleared: int = 0
    period_counts: list[dict[str, Any]] = field(default_factory=list)
    error_message: str = ""


def _run(r: Any) -> RunRow:
    v = dict(r._mapping)
    v["periods"] = [Period(y, term) for y, term in json.loads(v["periods"])]
    v["period_counts"] = json.loads(v["period_counts"] or "[]")
    v["started_at"] = aware(v["started_at"])
    v["finished_at"] = aware(v["finished_at"])
    v["include_verification"] = bool(v["include_verification"])
    return RunRow(**v)


async def insert_run(session: AsyncSession, run: RunRow) -> None:
    """Record a run as it starts."""
    await session.execute(
        insert(R).values(
            run_id=run.run_id,
            trigger=run.trigger,
            periods=json.dumps([[p.school_year, p.term] for p in run.periods]),
            org_code=run.org_code,
            org_path=run.org_path,
            include_verification=run.include_verification,
            status=run.status,
            triggered_by=run.triggered_by,
            schedule_slot=run.schedule_slot,
            started_at=run.started_at,
        )
    )


async def finish_run(session: AsyncSession, run: RunRow) -> None:
    """Store a run's outcome and counts."""
    await session.execute(
        update(R)
        .where(R.c.run_id == run.run_id)
        .values(
            periods=json.dumps([[p.school_year, p.term] for p in run.periods]),
            status=run.status,
            finished_at=run.finished_at,
            duration_ms=run.duration_ms,
            students_checked=run.students_checked,
            students_funded=run.students_funded,
            unfunded_opened=run.unfunded_opened,
            unfunded_closed=run.unfunded_closed,
            unfunded_reopened=run.unfunded_reopened,
            unfunded_open=run.unfunded_open,
            findings_raised=run.findings_raised,
            findings_cleared=run.findings_cleared,
            period_counts=json.dumps(run.period_counts, ensure_ascii=False),
            error_message=run.error_message[:2000],
        )
    )


async def get_run(session: AsyncSession, run_id: str) -> RunRow | None:
    """One run."""
    row = (await session.execute(select(R).where(R.c.run_id == run_id))).first()
    return _run(row) if row else None


async def running(session: AsyncSession) -> list[RunRow]:
    """Runs recorded as running."""
    rows = await session.execute(select(R).where(R.c.status == RUNNING).order_by(R.c.started_at))
    return [_run(r) for r in rows]


async def fail_interrupted(
    session: AsyncSession, *, now: datetime, except_run: str = "", only: str = ""
) -> int:
    """Mark runs left RUNNING by a killed process as FAILED (nothing of them was kept): every
    other one (the caller holds the run lock), or only the one named."""
    cond = [R.c.status == RUNNING, R.c.run_id != except_run]
    if only:
        cond.append(R.c.run_id == only)
    result = await session.execute(
        update(R)
        .where(*cond)
        .values(status=FAILED, finished_at=now, error_message="比对进程中断，结果未保存")
    )
    return result.rowcount or 0


async def slot_succeeded(session: AsyncSession, slot: str) -> bool:
    """True when a scheduled run of that 02:00 slot completed."""
    row = await session.execute(
        select(func.count()).where(R.c.schedule_slot == slot, R.c.status == SUCCEEDED)
    )
    return row.scalar_one() > 0


async def list_runs(
    session: AsyncSession,
    *,
    scope_path: str,
    statuses: Sequence[int],
    trigger: int,
    period: Period | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> tuple[list[RunRow], int]:
    """Runs whose scope lies in the caller's subtree or contains it, newest first."""
    cond: list[Any] = []
    if scope_path != "/":
        cond.append(
            or_(
                R.c.org_path.startswith(scope_path, autoescape=True),
                func.substr(scope_path, 1, func.length(R.c.org_path)) == R.c.org_path,
            )
        )
    if statuses:
        cond.append(R.c.status.in_(statuses))
    if trigger:
        cond.append(R.c.trigger == trigger)
    if period is not None:
        cond.append(R.c.periods.contains(json.dumps([period.school_year, period.term])))
    page = list(cond)
    if after is not None:
        page.append(
            or_(R.c.started_at < after[0], and_(R.c.started_at == after[0], R.c.run_id < after[1]))
        )
    rows = await session.execute(
        select(R).where(*page).order_by(R.c.started_at.desc(), R.c.run_id.desc()).limit(limit)
    )
    total = (await session.execute(select(func.count()).select_from(R).where(*cond))).scalar_one()
    return [_run(r) for r in rows], int(total)


async def last_success(session: AsyncSession, *, period: Period, path: str) -> RunRow | None:
    """The latest successful run that covered the period and a scope containing path."""
    rows = await session.execute(
        select(R)
        .where(
            R.c.status == SUCCEEDED,
            R.c.periods.contains(json.dumps([period.school_year, period.term])),
            func.substr(path, 1, func.length(R.c.org_path)) == R.c.org_path,
        )
        .order_by(R.c.finished_at.desc())
        .limit(1)
    )
    row = rows.first()
    return _run(row) if row else None


async def recent_successes(
    session: AsyncSession, *, period: Period, limit: int = 50
) -> list[RunRow]:
    """The latest successful runs that covered the period, newest first."""
    rows = await session.execute(
        select(R)
        .where(
            R.c.status == SUCCEEDED,
            R.c.periods.contains(json.dumps([period.school_year, period.term])),
        )
        .order_by(R.c.finished_at.desc())
        .limit(limit)
    )
    return [_run(r) for r in rows]


# --- incremental baseline ----------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """What the last run over the whole tree left for a period."""

    as_of: str
    starts_on: str
    ends_on: str
    run_id: str
    candidates: int


async def baseline(session: AsyncSession, period_key: int) -> Baseline | None:
    """The period's baseline with its candidate count, or None."""
    S = t.period_state
    row = (await session.execute(select(S).where(S.c.period_key == period_key))).first()
    if row is None:
        return None
    # candidate is unlogged: a crash empties it, and then there is no baseline to start from.
    kept = (
        await session.execute(
            select(t.candidate.c.student_key).where(t.candidate.c.period_key == period_key).limit(1)
        )
    ).first()
    count = 0
    if kept is not None:
        # Its size from the all-groups statistics rows (one per candidate), not a count(*).
        P = t.population_stat
        count = (
            await session.execute(
                select(func.coalesce(func.sum(P.c.students), 0)).where(
                    P.c.period_key == period_key, P.c.special_group == 0
                )
            )
        ).scalar_one()
        count = max(int(count), 1)
    return Baseline(row.as_of, row.starts_on, row.ends_on, row.run_id, int(count))


async def save_baseline(
    session: AsyncSession, *, period_key: int, as_of: str, starts_on: str, ends_on: str, run_id: str
) -> None:
    """Record the baseline a run over the whole tree leaves."""
    S = t.period_state
    values = {"as_of": as_of, "starts_on": starts_on, "ends_on": ends_on, "run_id": run_id}
    stmt = upsert(session, S).values(period_key=period_key, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["period_key"], set_=values))


# --- periods ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeriodRow:
    """A period of the read copy with its key, status and dates."""

    key: int
    dates: PeriodDates
    status: int

    @property
    def period(self) -> Period:
        """The school year and term."""
        return self.dates.period


def _period(r: Any) -> PeriodRow:
    p = Period(r.school_year, r.term)
    return PeriodRow(
        r.period_key,
        PeriodDates.of(p, starts_on=r.starts_on, ends_on=r.ends_on, deadline_on=r.deadline_on),
        r.status,
    )


async def open_periods(session: AsyncSession) -> list[PeriodRow]:
    """Periods aid has opened and not closed, oldest first."""
    P = t.period
    rows = await session.execute(
        select(P).where(P.c.status == 1).order_by(P.c.school_year, P.c.term)
    )
    return [_period(r) for r in rows]


async def find_period(session: AsyncSession, period: Period) -> PeriodRow | None:
    """A known period."""
    P = t.period
    row = (
        await session.execute(
            select(P).where(P.c.school_year == period.school_year, P.c.term == period.term)
        )
    ).first()
    return _period(row) if row else None


async def periods_by_key(session: AsyncSession, keys: Sequence[int]) -> dict[int, PeriodRow]:
    """Periods by key."""
    P = t.period
    if not keys:
        return {}
    rows = await session.execute(select(P).where(P.c.period_key.in_(list(set(keys)))))
    return {r.period_key: _period(r) for r in rows}


async def latest_open_period(session: AsyncSession) -> PeriodRow | None:
    """The most recent open period (default of the views)."""
    periods = await open_periods(session)
    return periods[-1] if periods else None


# --- orgs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrgRow:
    """An org of the read copy."""

    org_code: str
    name: str
    level: int
    parent_code: str
    org_path: str
    stages: str
    status: int


async def get_org(session: AsyncSession, code: str) -> OrgRow | None:
    """One org by code."""
    OT = t.org
    row = (await session.execute(select(OT).where(OT.c.org_code == code))).first()
    return _org(row) if row else None


def _org(r: Any) -> OrgRow:
    return OrgRow(r.org_code, r.name, r.level, r.parent_code, r.org_path, r.stages, r.status)


async def get_orgs(session: AsyncSession, codes: Sequence[str]) -> dict[str, OrgRow]:
    """Orgs by code (unknown codes absent)."""
    OT = t.org
    if not codes:
        return {}
    rows = await session.execute(select(OT).where(OT.c.org_code.in_(list(set(codes)))))
    return {r.org_code: _org(r) for r in rows}


async def children(session: AsyncSession, code: str) -> list[OrgRow]:
    """Active direct children of an org, by code."""
    OT = t.org
    rows = await session.execute(
        select(OT).where(OT.c.parent_code == code, OT.c.status != 2).order_by(OT.c.org_code)
    )
    return [_org(r) for r in rows]

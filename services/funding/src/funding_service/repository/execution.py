"""The approved-aid read copy: one row per record (for idempotent, order-safe application of
approvals and revocations) and execution totals per org × project × period."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from funding_service import tables as t
from funding_service.repository.sql import chunks, one_of, upsert_add, utc

PeriodKey = tuple[str, str, str, int]  # org, project, school year, term


@dataclass
class RecordState:
    """What funding knows of one aid record."""

    record_id: str
    school_org_code: str
    project_code: str
    school_year: str
    term: int
    amount_fen: int
    approved: bool
    changed_at: datetime


class ExecutionRepository:
    """`execution_record` and `execution_period`."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    async def records(self, session: AsyncSession, ids: Iterable[str]) -> dict[str, RecordState]:
        """Known records by id."""
        e = t.execution_record.c
        out: dict[str, RecordState] = {}
        for chunk in chunks(sorted(set(ids)), 5000):
            rows = await session.execute(
                select(t.execution_record).where(one_of(e.record_id, chunk, self.dialect))
            )
            for r in rows:
                out[r.record_id] = RecordState(
                    r.record_id,
                    r.school_org_code,
                    r.project_code,
                    r.school_year,
                    r.term,
                    r.amount_fen,
                    bool(r.approved),
                    utc(r.changed_at),  # type: ignore[arg-type]
                )
        return out

    async def save_records(self, session: AsyncSession, states: Sequence[RecordState]) -> None:
        """Store the new state of records."""
        await upsert_add(
            session,
            self.dialect,
            t.execution_record,
            [
                {
                    "record_id": s.record_id,
                    "school_org_code": s.school_org_code,
                    "project_code": s.project_code,
                    "school_year": s.school_year,
                    "term": s.term,
                    "amount_fen": s.amount_fen,
                    "approved": s.approved,
                    "changed_at": s.changed_at,
                }
                for s in states
            ],
            keys=["record_id"],
            replace=[
                "school_org_code",
                "project_code",
                "school_year",
                "term",
                "amount_fen",
                "approved",
                "changed_at",
            ],
        )

    async def add_periods(
        self, session: AsyncSession, deltas: Mapping[PeriodKey, tuple[str, int, int]]
    ) -> None:
        """Add (fiscal year, amount, count) deltas to period totals."""
        await upsert_add(
            session,
            self.dialect,
            t.execution_period,
            [
                {
                    "org_code": org,
                    "project_code": project,
                    "school_year": year,
                    "term": term,
                    "fiscal_year": fy,
                    "executed_fen": amount,
                    "record_count": count,
                }
                for (org, project, year, term), (fy, amount, count) in deltas.items()
            ],
            keys=["org_code", "project_code", "school_year", "term"],
            add=["executed_fen", "record_count"],
        )

    async def period_rows_of(self, session: AsyncSession, org_code: str) -> list[Any]:
        """Every period total of one org (its subtree), for moving a subtree."""
        p = t.execution_period.c
        return list(await session.execute(select(t.execution_period).where(p.org_code == org_code)))

    async def period_page(
        self,
        session: AsyncSession,
        *,
        root_code: str,
        child_codes: Sequence[str],
        project_code: str,
        fiscal_year: str,
        school_year: str,
        term: int,
        offset: int,
        limit: int,
    ) -> tuple[int, list[Any]]:
        """Period totals of the root and its children (root first, then by code), and a count."""
        p = t.execution_period.c
        is_root = (p.org_code == root_code).label("is_root")
        cond: list[Any] = [or_(p.org_code == root_code, p.org_code.in_(list(child_codes) or [""]))]
        if project_code:
            cond.append(p.project_code == project_code)
        if fiscal_year:
            cond.append(p.fiscal_year == fiscal_year)
        if school_year:
            cond.append(p.school_year == school_year)
        if term:
            cond.append(p.term == term)
        total = (
            await session.execute(select(func.count()).select_from(t.execution_period).where(*cond))
        ).scalar_one()
        rows = await session.execute(
            select(t.execution_period, is_root)
            .where(*cond)
            .order_by(is_root.desc(), p.org_code, p.project_code, p.school_year, p.term)
            .offset(offset)
            .limit(limit)
        )
        return int(total), list(rows)

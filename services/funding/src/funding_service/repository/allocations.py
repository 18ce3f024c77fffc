"""The allocation ledger: inserts, reversals, lookups and filtered lists within a subtree."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from funding_service import tables as t
from funding_service.domain.model import (
    Allocation,
    AllocationKind,
    AllocationStatus,
    FundSource,
    Level,
    OrgNode,
)
from funding_service.repository.sql import in_subtree, utc


@dataclass(frozen=True)
class AllocationFilter:
    """What a list or export of allocations asks for; scope_path is already the caller's
    subtree intersected with the requested root."""

    scope_path: str
    project_code: str = ""
    fiscal_year: str = ""
    from_org_code: str = ""
    to_org_code: str = ""
    sources: tuple[int, ...] = ()
    document_number: str = ""
    include_reversed: bool = False


class AllocationRepository:
    """Reads and writes `allocation` rows."""

    def _row(self, a: Allocation) -> dict[str, Any]:
        return {
            "allocation_id": a.allocation_id,
            "document_id": a.document_id,
            "kind": a.kind.value,
            "project_code": a.project_code,
            "fiscal_year": a.fiscal_year,
            "from_org_code": a.from_org.code,
            "from_org_path": a.from_org.path,
            "to_org_code": a.to_org.code,
            "to_org_path": a.to_org.path,
            "source": int(a.source),
            "amount_fen": a.amount_fen,
            "document_number": a.document_number,
            "document_date": a.document_date,
            "allocated_on": a.allocated_on,
            "note": a.note,
            "status": a.status.value,
            "reversal_reason": a.reversal_reason,
            "reversed_by": a.reversed_by,
            "reversed_at": a.reversed_at,
            "entered_by": a.entered_by,
            "entered_at": a.entered_at,
        }

    def _allocation(
        self, row: Any, orgs: Mapping[str, OrgNode], names: Mapping[str, str]
    ) -> Allocation:
        def node(code: str, path: str) -> OrgNode:
            found = orgs.get(code)
            if found is not None:
                return found
            return OrgNode(code, code, Level.SCHOOL, None, path)

        return Allocation(
            allocation_id=row.allocation_id,
            document_id=row.document_id,
            kind=AllocationKind(row.kind),
            project_code=row.project_code,
            fiscal_year=row.fiscal_year,
            from_org=node(row.from_org_code, row.from_org_path),
            to_org=node(row.to_org_code, row.to_org_path),
            source=FundSource(row.source),
            amount_fen=row.amount_fen,
            document_number=row.document_number,
            document_date=row.document_date,
            allocated_on=row.allocated_on,
            note=row.note,
            status=AllocationStatus(row.status),
            entered_by=row.entered_by,
            entered_at=utc(row.entered_at),  # type: ignore[arg-type]
            project_name=names.get(row.project_code, ""),
            reversal_reason=row.reversal_reason,
            reversed_by=row.reversed_by,
            reversed_at=utc(row.reversed_at),
        )

    async def insert_many(self, session: AsyncSession, allocations: Sequence[Allocation]) -> None:
        """Append lines to the ledger."""
        await session.execute(insert(t.allocation), [self._row(a) for a in allocations])

    async def get_row(
        self, session: AsyncSession, allocation_id: str, *, lock: bool = False
    ) -> Any:
        """The stored row of one allocation (locked for update when asked)."""
        stmt = select(t.allocation).where(t.allocation.c.allocation_id == allocation_id)
        if lock:
            stmt = stmt.with_for_update()
        return (await session.execute(stmt)).first()

    def to_domain(
        self, rows: Sequence[Any], orgs: Mapping[str, OrgNode], names: Mapping[str, str]
    ) -> list[Allocation]:
        """Domain allocations from stored rows, with the given org and project lookups."""
        return [self._allocation(r, orgs, names) for r in rows]

    async def duplicates(
        self,
        session: AsyncSession,
        *,
        document_number: str,
        project_code: str,
        fiscal_year: str,
        from_org_code: str,
    ) -> set[tuple[str, int]]:
        """(to_org_code, source) pairs already entered, active, under the same document."""
        rows = await session.execute(
            select(t.allocation.c.to_org_code, t.allocation.c.source).where(
                t.allocation.c.document_number == document_number,
                t.allocation.c.project_code == project_code,
                t.allocation.c.fiscal_year == fiscal_year,
                t.allocation.c.from_org_code == from_org_code,
                t.allocation.c.status == AllocationStatus.ACTIVE.value,
            )
        )
        return {(r.to_org_code, r.source) for r in rows}

    async def mark_reversed(
        self, session: AsyncSession, allocation_id: str, *, reason: str, by: str, at: datetime
    ) -> None:
        """Mark an allocation reversed (冲销); amounts and parties never change."""
        await session.execute(
            update(t.allocation)
            .where(t.allocation.c.allocation_id == allocation_id)
            .values(
                status=AllocationStatus.REVERSED.value,
                reversal_reason=reason,
                reversed_by=by,
                reversed_at=at,
            )
        )

    def _where(self, f: AllocationFilter) -> list[Any]:
        a = t.allocation.c
        cond: list[Any] = [
            or_(in_subtree(a.from_org_path, f.scope_path), in_subtree(a.to_org_path, f.scope_path))
        ]
        if f.project_code:
            cond.append(a.project_code == f.project_code)
        if f.fiscal_year:
            cond.append(a.fiscal_year == f.fiscal_year)
        if f.from_org_code:
            cond.append(a.from_org_code == f.from_org_code)
        if f.to_org_code:
            cond.append(a.to_org_code == f.to_org_code)
        if f.sources:
            cond.append(a.source.in_(f.sources))
        if f.document_number:
            cond.append(a.document_number == f.document_number)
        if not f.include_reversed:
            cond.append(a.status == AllocationStatus.ACTIVE.value)
        return cond

    async def count_and_total(self, session: AsyncSession, f: AllocationFilter) -> tuple[int, int]:
        """(matching rows, sum of amount over the matching ACTIVE rows)."""
        a = t.allocation.c
        active = a.status == AllocationStatus.ACTIVE.value
        row = (
            await session.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(a.amount_fen).filter(active), 0),
                ).where(and_(*self._where(f)))
            )
        ).one()
        return int(row[0]), int(row[1] or 0)

    async def page(
        self, session: AsyncSession, f: AllocationFilter, *, offset: int, limit: int
    ) -> list[Any]:
        """Matching rows, newest first."""
        rows = await session.execute(
            select(t.allocation)
            .where(and_(*self._where(f)))
            .order_by(t.allocation.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return list(rows)

"""Balances and rollups: per-source balances (locked by allocations), per-project rollups of
funds and execution with the overspent flag, and the rows a summary reads."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from funding_service import tables as t
from funding_service.domain.model import Balance, Figures, FundSource
from funding_service.repository.sql import chunks, in_subtree, upsert_add, utc

BalanceKey = tuple[str, str, str, int]  # org, project, fiscal year, source
RollupKey = tuple[str, str, str]  # org, project, fiscal year

BALANCE_COLUMNS = (
    "received_fen",
    "contributed_fen",
    "allocated_down_fen",
    "subtree_contributed_fen",
)
ROLLUP_COLUMNS = (
    "received_fen",
    "contributed_fen",
    "allocated_down_fen",
    "subtree_contributed_fen",
    "school_funds_fen",
    "executed_fen",
    "executed_count",
)


@dataclass(frozen=True)
class FlagChange:
    """An org × project × year whose overspent flag just changed."""

    org_code: str
    org_path: str
    project_code: str
    fiscal_year: str
    funds_fen: int
    executed_fen: int
    overspent: bool


class LedgerRepository:
    """`fund_balance` and `fund_rollup`."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    async def lock_balances(
        self, session: AsyncSession, keys: Mapping[BalanceKey, str]
    ) -> dict[BalanceKey, Balance]:
        """The balances of keys (key → org path), created at zero when missing and locked for
        the rest of the transaction (in key order, so that writers never deadlock)."""
        if not keys:
            return {}
        await upsert_add(
            session,
            self.dialect,
            t.fund_balance,
            [
                {
                    "org_code": k[0],
                    "project_code": k[1],
                    "fiscal_year": k[2],
                    "source": k[3],
                    "org_path": p,
                }
                for k, p in keys.items()
            ],
            keys=["org_code", "project_code", "fiscal_year", "source"],
        )
        b = t.fund_balance.c
        out: dict[BalanceKey, Balance] = {}
        ordered = sorted(keys)
        for chunk in chunks(ordered, 500):
            stmt = (
                select(
                    b.org_code,
                    b.project_code,
                    b.fiscal_year,
                    b.source,
                    *(b[c] for c in BALANCE_COLUMNS[:3]),
                )
                .where(tuple_(b.org_code, b.project_code, b.fiscal_year, b.source).in_(list(chunk)))
                .order_by(b.org_code, b.project_code, b.fiscal_year, b.source)
            )
            if self.dialect == "postgresql":
                stmt = stmt.with_for_update()
            for r in await session.execute(stmt):
                out[(r.org_code, r.project_code, r.fiscal_year, r.source)] = Balance(
                    r.received_fen, r.contributed_fen, r.allocated_down_fen
                )
        return out

    async def add_balances(
        self,
        session: AsyncSession,
        deltas: Mapping[BalanceKey, dict[str, int]],
        paths: Mapping[str, str],
    ) -> None:
        """Add per-source deltas (paths: org code → path, for rows created here)."""
        rows = []
        for (org, project, year, source), cols in deltas.items():
            row: dict[str, Any] = {
                "org_code": org,
                "project_code": project,
                "fiscal_year": year,
                "source": source,
                "org_path": paths[org],
            }
            row.update({c: cols.get(c, 0) for c in BALANCE_COLUMNS})
            rows.append(row)
        await upsert_add(
            session,
            self.dialect,
            t.fund_balance,
            rows,
            keys=["org_code", "project_code", "fiscal_year", "source"],
            add=BALANCE_COLUMNS,
        )

    async def add_rollups(
        self,
        session: AsyncSession,
        deltas: Mapping[RollupKey, dict[str, int]],
        paths: Mapping[str, str],
        now: datetime,
    ) -> list[FlagChange]:
        """Add deltas to rollups and re-evaluate their overspent flags; returns the flags that
        changed."""
        rows = []
        for (org, project, year), cols in deltas.items():
            row: dict[str, Any] = {
                "org_code": org,
                "project_code": project,
                "fiscal_year": year,
                "org_path": paths[org],
                "overspent": False,
            }
            row.update({c: cols.get(c, 0) for c in ROLLUP_COLUMNS})
            rows.append(row)
        returned = await upsert_add(
            session,
            self.dialect,
            t.fund_rollup,
            rows,
            keys=["org_code", "project_code", "fiscal_year"],
            add=ROLLUP_COLUMNS,
            returning=(
                "org_code",
                "project_code",
                "fiscal_year",
                "org_path",
                "received_fen",
                "subtree_contributed_fen",
                "executed_fen",
                "overspent",
            ),
        )
        changes = []
        for r in returned:
            funds = r.received_fen + r.subtree_contributed_fen
            flag = r.executed_fen > funds
            if flag != bool(r.overspent):
                changes.append(
                    FlagChange(
                        r.org_code,
                        r.org_path,
                        r.project_code,
                        r.fiscal_year,
                        funds,
                        r.executed_fen,
                        flag,
                    )
                )
        if changes:
            ru = t.fund_rollup.c
            await session.execute(
                update(t.fund_rollup)
                .where(
                    and_(
                        ru.org_code == bindparam("k_org"),
                        ru.project_code == bindparam("k_project"),
                        ru.fiscal_year == bindparam("k_year"),
                    )
                )
                .values(overspent=bindparam("v_flag"), overspent_since=bindparam("v_since")),
                [
                    {
                        "k_org": c.org_code,
                        "k_project": c.project_code,
                        "k_year": c.fiscal_year,
                        "v_flag": c.overspent,
                        "v_since": now if c.overspent else None,
                    }
                    for c in changes
                ],
            )
        return changes

    async def rollups(
        self,
        session: AsyncSession,
        org_codes: Sequence[str],
        *,
        fiscal_year: str,
        project_code: str | None,
    ) -> dict[str, dict[str, Figures]]:
        """Rollup figures by org code and project for the year."""
        r = t.fund_rollup.c
        out: dict[str, dict[str, Figures]] = {}
        for chunk in chunks(sorted(set(org_codes)), 1000):
            stmt = select(t.fund_rollup).where(r.org_code.in_(chunk), r.fiscal_year == fiscal_year)
            if project_code:
                stmt = stmt.where(r.project_code == project_code)
            for row in await session.execute(stmt):
                out.setdefault(row.org_code, {})[row.project_code] = Figures(
                    received_fen=row.received_fen,
                    own_contribution_fen=row.contributed_fen,
                    allocated_down_fen=row.allocated_down_fen,
                    subtree_contributed_fen=row.subtree_contributed_fen,
                    school_funds_fen=row.school_funds_fen,
                    executed_fen=row.executed_fen,
                    executed_count=row.executed_count,
                )
        return out

    async def balances_by_source(
        self,
        session: AsyncSession,
        org_codes: Sequence[str],
        *,
        fiscal_year: str,
        project_code: str | None,
    ) -> dict[str, dict[FundSource, tuple[int, int]]]:
        """(received, subtree contributed) by org code and source, summed over projects."""
        b = t.fund_balance.c
        out: dict[str, dict[FundSource, tuple[int, int]]] = {}
        for chunk in chunks(sorted(set(org_codes)), 1000):
            stmt = select(b.org_code, b.source, b.received_fen, b.subtree_contributed_fen).where(
                b.org_code.in_(chunk), b.fiscal_year == fiscal_year
            )
            if project_code:
                stmt = stmt.where(b.project_code == project_code)
            for row in await session.execute(stmt):
                per = out.setdefault(row.org_code, {})
                rec, sub = per.get(FundSource(row.source), (0, 0))
                per[FundSource(row.source)] = (
                    rec + row.received_fen,
                    sub + row.subtree_contributed_fen,
                )
        return out

    async def executed_by_path(
        self,
        session: AsyncSession,
        paths: Iterable[str],
        *,
        fiscal_year: str,
        project_code: str,
    ) -> dict[str, int]:
        """Executed amount of the given org paths for one project and year."""
        r = t.fund_rollup.c
        out: dict[str, int] = {}
        for chunk in chunks(sorted(set(paths)), 1000):
            rows = await session.execute(
                select(r.org_path, r.executed_fen).where(
                    r.org_path.in_(chunk),
                    r.fiscal_year == fiscal_year,
                    r.project_code == project_code,
                )
            )
            out.update({row.org_path: row.executed_fen for row in rows})
        return out

    async def subtree_rows(self, session: AsyncSession, path: str) -> list[Any]:
        """Every rollup row of an org (its subtree's totals), for moving a subtree."""
        r = t.fund_rollup.c
        return list(await session.execute(select(t.fund_rollup).where(r.org_path == path)))

    async def balance_rows_at(self, session: AsyncSession, path: str) -> list[Any]:
        """Every balance row of an org, for moving a subtree."""
        b = t.fund_balance.c
        return list(await session.execute(select(t.fund_balance).where(b.org_path == path)))

    async def overspent_page(
        self,
        session: AsyncSession,
        *,
        scope_path: str,
        fiscal_year: str,
        project_code: str,
        levels: Sequence[str],
        offset: int,
        limit: int,
    ) -> tuple[int, list[Any]]:
        """Overspent rollups inside scope (with the org's name and level), and their count."""
        r = t.fund_rollup.c
        o = t.org_node.c
        cond = [r.overspent.is_(True), in_subtree(r.org_path, scope_path)]
        if fiscal_year:
            cond.append(r.fiscal_year == fiscal_year)
        if project_code:
            cond.append(r.project_code == project_code)
        if levels:
            cond.append(o.level.in_(list(levels)))
        base = t.fund_rollup.outerjoin(t.org_node, o.org_code == r.org_code)
        total = (
            await session.execute(select(func.count()).select_from(base).where(*cond))
        ).scalar_one()
        rows = await session.execute(
            select(
                r.org_code,
                r.org_path,
                r.project_code,
                r.fiscal_year,
                r.received_fen,
                r.subtree_contributed_fen,
                r.executed_fen,
                r.overspent_since,
                o.name,
                o.level,
            )
            .select_from(base)
            .where(*cond)
            .order_by(r.fiscal_year, r.org_path, r.project_code)
            .offset(offset)
            .limit(limit)
        )
        return int(total), [
            dict(row._mapping, overspent_since=utc(row.overspent_since)) for row in rows
        ]

"""How ledger lines and approved aid move balances and rollups.

A transfer F→C of m from source S: F passed down m, C received m (and if C is a school, the
school funds of C and each ancestor grow by m). A contribution at F: F contributed m, and the
subtree contributions of F and each ancestor grow by m (school funds too when F is a school).
Execution of a school adds to the school and each ancestor. Every rollup written is re-checked
for overspending and a flag change publishes funding.execution.overspent / .covered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.rpc import CallerContext

from funding_service.domain.model import Allocation, AllocationKind, Level
from funding_service.domain.rules import ancestor_paths, path_codes
from funding_service.events import flag_changed
from funding_service.repository.ledger import BalanceKey, FlagChange, RollupKey
from funding_service.service.context import Deps


class Deltas:
    """Accumulated changes to balances and rollups, written in one go."""

    def __init__(self) -> None:
        self.balances: dict[BalanceKey, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.rollups: dict[RollupKey, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.paths: dict[str, str] = {}

    def _balance(self, org: str, project: str, year: str, source: int, column: str, v: int) -> None:
        self.balances[(org, project, year, source)][column] += v

    def _rollup(self, org: str, project: str, year: str, column: str, v: int) -> None:
        self.rollups[(org, project, year)][column] += v

    def _ancestors(self, path: str) -> list[str]:
        out = []
        for p in ancestor_paths(path):
            code = path_codes(p)[-1]
            self.paths.setdefault(code, p)
            out.append(code)
        return out

    def allocation(self, a: Allocation, sign: int) -> None:
        """Add (sign=1) or take back (sign=-1) one ledger line."""
        m = sign * a.amount_fen
        p, y, s = a.project_code, a.fiscal_year, int(a.source)
        self.paths[a.from_org.code] = a.from_org.path
        self.paths[a.to_org.code] = a.to_org.path
        if a.kind is AllocationKind.TRANSFER:
            self._balance(a.from_org.code, p, y, s, "allocated_down_fen", m)
            self._balance(a.to_org.code, p, y, s, "received_fen", m)
            self._rollup(a.from_org.code, p, y, "allocated_down_fen", m)
            self._rollup(a.to_org.code, p, y, "received_fen", m)
            if a.to_org.level is Level.SCHOOL:
                for code in self._ancestors(a.to_org.path):
                    self._rollup(code, p, y, "school_funds_fen", m)
            return
        self._balance(a.from_org.code, p, y, s, "contributed_fen", m)
        self._rollup(a.from_org.code, p, y, "contributed_fen", m)
        for code in self._ancestors(a.from_org.path):
            self._balance(code, p, y, s, "subtree_contributed_fen", m)
            self._rollup(code, p, y, "subtree_contributed_fen", m)
            if a.from_org.level is Level.SCHOOL:
                self._rollup(code, p, y, "school_funds_fen", m)

    def execution(
        self, school_path: str, project: str, fiscal_year: str, amount: int, count: int
    ) -> None:
        """Approved aid of a school (negative for revocations)."""
        for code in self._ancestors(school_path):
            self._rollup(code, project, fiscal_year, "executed_fen", amount)
            self._rollup(code, project, fiscal_year, "executed_count", count)

    def shift(self, path: str, project: str, year: str, columns: dict[str, int], sign: int) -> None:
        """Add (or remove) a moved subtree's totals at the ancestors on path."""
        for code in self._ancestors(path):
            for column, v in columns.items():
                self._rollup(code, project, year, column, sign * v)

    def shift_balance(self, path: str, project: str, year: str, source: int, v: int) -> None:
        """Add (or remove) a moved subtree's contributions at the ancestors on path."""
        for code in self._ancestors(path):
            self._balance(code, project, year, source, "subtree_contributed_fen", v)

    def touched_balances(self) -> dict[BalanceKey, str]:
        """Balance keys with the org path of each."""
        return {k: self.paths[k[0]] for k in self.balances}


async def write(
    deps: Deps, session: AsyncSession, deltas: Deltas, caller: CallerContext | None
) -> list[FlagChange]:
    """Write the deltas, and publish an event for every overspent flag that changed."""
    await deps.ledger.add_balances(session, deltas.balances, deltas.paths)
    changes = await deps.ledger.add_rollups(session, deltas.rollups, deltas.paths, deps.now())
    await publish_flags(deps, session, changes, caller)
    return changes


async def publish_flags(
    deps: Deps, session: AsyncSession, changes: Iterable[FlagChange], caller: CallerContext | None
) -> None:
    """Outbox events for flag changes (with each org's level from the org copy)."""
    changes = list(changes)
    if not changes:
        return
    orgs = await deps.orgs.get_many(session, [c.org_code for c in changes])
    events = []
    for c in changes:
        node = orgs.get(c.org_code)
        events.append(flag_changed(c, node.level if node else None, caller))
    await deps.outbox.add_many(session, events)  # type: ignore[arg-type]

"""What every verification rule query shares: the period and scope looked at, and running a
query as mappings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from reconcile_service.domain.periods import Period
from reconcile_service.repository.comparison import scope_pattern

APPROVED = 5
STAGE_NAMES = {1: "学前教育", 2: "义务教育", 3: "普通高中", 4: "中职", 5: "本专科", 6: "研究生"}
LEVEL_NAMES = {1: "特别困难", 2: "困难", 3: "一般困难", 4: "不困难"}


@dataclass(frozen=True)
class RuleScope:
    """What a verification pass looks at."""

    period: Period
    period_key: int
    starts_on: date
    as_of: date
    scope_path: str

    @property
    def params(self) -> dict[str, Any]:
        """Bind parameters shared by the rule queries."""
        return {
            "period_key": self.period_key,
            "school_year": self.period.school_year,
            "term": self.period.term,
            "starts_on": self.starts_on.isoformat(),
            "as_of": self.as_of.isoformat(),
            "scope": scope_pattern(self.scope_path),
        }

    def where_scope(self, column: str) -> str:
        """The scope filter on a path column (nothing for the whole tree)."""
        return f"AND {column} LIKE :scope ESCAPE '!'" if self.scope_path != "/" else ""

    def contains(self, path: str) -> bool:
        """True when path lies in the scope."""
        return path.startswith(self.scope_path)


async def rows_of(session: AsyncSession, sql: str, params: dict[str, Any]) -> list[Any]:
    return list((await session.execute(text(sql), params)).mappings().all())

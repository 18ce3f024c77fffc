"""Aggregations for the authority views: figures per child of a root (a child region, or a
school directly under the root), computed in the database so only child rows come back."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from reconcile_service.domain.groups import GROUPS, bit
from reconcile_service.repository.comparison import scope_pattern
from reconcile_service.repository.sql import dialect

ROOT = ""  # the child key of rows at the root itself (schools whose path is the root's)


def _child_expr(session: AsyncSession, column: str) -> str:
    """SQL of the root's child code on the way to column's path (:cut = len(root path) + 1)."""
    if dialect(session) == "postgresql":
        return f"split_part(substr({column}, :cut), '/', 1)"
    rest = f"substr({column}, :cut)"
    return f"substr({rest}, 1, instr({rest}, '/') - 1)"


def _params(root_path: str, **extra: Any) -> dict[str, Any]:
    return {"scope": scope_pattern(root_path), "cut": len(root_path) + 1, **extra}


def _scope(root_path: str, column: str) -> str:
    return f"AND {column} LIKE :scope ESCAPE '!'" if root_path != "/" else ""


@dataclass
class Cell:
    """Figures of one group (0 = all groups) in one row."""

    students: int = 0
    issued: int = 0
    self_collected: int = 0
    funded: int = 0
    unfunded: int = 0
    reported: int = 0


@dataclass
class ChildFigures:
    """Everything an authority row shows for one child (or ROOT)."""

    cells: dict[int, Cell] = field(default_factory=lambda: defaultdict(Cell))
    reasons: dict[str, int] = field(default_factory=lambda: defaultdict(int))


async def unfunded_figures(
    session: AsyncSession, *, period_key: int, root_path: str, stage: int, source: int
) -> dict[str, ChildFigures]:
    """Population (last run) and open entries under root, per child code."""
    out: dict[str, ChildFigures] = defaultdict(ChildFigures)
    child = _child_expr(session, "school_org_path")
    stage_cond = "AND stage = :stage" if stage else ""
    source_cond = {1: "AND source_mask IN (1, 3)", 2: "AND source_mask IN (2, 3)"}.get(source, "")
    params = _params(root_path, period_key=period_key, stage=stage)
    rows = await session.execute(
        text(f"""
        SELECT {child} AS child, special_group, source_mask,
               SUM(students) AS students, SUM(funded) AS funded
        FROM population_stat
        WHERE period_key = :period_key {_scope(root_path, "school_org_path")}
              {stage_cond} {source_cond}
        GROUP BY 1, 2, 3
        """),
        params,
    )
    for r in rows.mappings():
        cell = out[r["child"] or ROOT].cells[r["special_group"]]
        cell.students += int(r["students"])
        cell.funded += int(r["funded"])
        if r["source_mask"] & 1:
            cell.issued += int(r["students"])
        if r["source_mask"] & 2:
            cell.self_collected += int(r["students"])

    mask_col = {1: "issued_mask", 2: "self_mask"}.get(source, "groups_mask")
    per_group = ",\n".join(
        f"SUM(CASE WHEN ({mask_col} & {bit(g)}) <> 0 THEN 1 ELSE 0 END) AS u{g}, "
        f"SUM(CASE WHEN ({mask_col} & {bit(g)}) <> 0 AND reason_code IS NOT NULL "
        f"THEN 1 ELSE 0 END) AS r{g}"
        for g in GROUPS
    )
    entry_stage = "AND stage = :stage" if stage else ""
    rows = await session.execute(
        text(f"""
        SELECT {child} AS child, COUNT(*) AS u0,
               SUM(CASE WHEN reason_code IS NOT NULL THEN 1 ELSE 0 END) AS r0,
               {per_group}
        FROM unfunded_entry
        WHERE period_key = :period_key AND status = 1 AND {mask_col} <> 0
              {_scope(root_path, "school_org_path")} {entry_stage}
        GROUP BY 1
        """),
        params,
    )
    for r in rows.mappings():
        fig = out[r["child"] or ROOT]
        for g in (0, *GROUPS):
            fig.cells[g].unfunded += int(r[f"u{g}"] or 0)
            fig.cells[g].reported += int(r[f"r{g}"] or 0)
    rows = await session.execute(
        text(f"""
        SELECT {child} AS child, reason_code, COUNT(*) AS n
        FROM unfunded_entry
        WHERE period_key = :period_key AND status = 1 AND reason_code IS NOT NULL
              AND {mask_col} <> 0 {_scope(root_path, "school_org_path")} {entry_stage}
        GROUP BY 1, 2
        """),
        params,
    )
    for r in rows.mappings():
        out[r["child"] or ROOT].reasons[r["reason_code"]] += int(r["n"])
    return out


async def authority_reason_counts(
    session: AsyncSession, *, period_key: int, root_path: str, org_codes: list[str]
) -> dict[str, dict[str, int]]:
    """Per authority org code: its reasons on open entries under root, by reason code."""
    if not org_codes:
        return {}
    placeholders = ", ".join(f":o{i}" for i in range(len(org_codes)))
    rows = await session.execute(
        text(f"""
        SELECT a.org_code, a.reason_code, COUNT(*) AS n
        FROM entry_authority_reason a JOIN unfunded_entry u ON u.entry_key = a.entry_key
        WHERE u.period_key = :period_key AND u.status = 1
              {_scope(root_path, "u.school_org_path")} AND a.org_code IN ({placeholders})
        GROUP BY 1, 2
        """),
        _params(root_path, period_key=period_key, **{f"o{i}": c for i, c in enumerate(org_codes)}),
    )
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for code, reason, n in rows.all():
        out[code][reason] = int(n)
    return out


async def finding_figures(
    session: AsyncSession, *, period_key: int | None, root_path: str
) -> dict[str, dict[tuple[str, int], dict[int, int]]]:
    """Per child code: (rule, severity) → status → count of findings under root."""
    child = _child_expr(session, "org_path")
    period_cond = "AND period_key = :period_key" if period_key else ""
    rows = await session.execute(
        text(f"""
        SELECT {child} AS child, rule_code, severity, status, COUNT(*) AS n
        FROM finding
        WHERE 1 = 1 {period_cond} {_scope(root_path, "org_path")}
        GROUP BY 1, 2, 3, 4
        """),
        _params(root_path, period_key=period_key),
    )
    out: dict[str, dict[tuple[str, int], dict[int, int]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(int))
    )
    for r in rows.mappings():
        out[r["child"] or ROOT][(r["rule_code"], r["severity"])][r["status"]] += int(r["n"])
    return out

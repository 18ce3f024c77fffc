"""Statistics by region × project × period (records and amounts by status).

An authority's view is its total, its directly-run schools (one subtotal, or one row each), then
one row per child region — the layout of the real system's statistics pages (DOMAIN.md §10).
Figures are summed per school in SQL and rolled up to regions here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from zizhu_common.rpc import CallerContext

from aid_service.domain.enums import Category, Level, RecordStatus, Stage
from aid_service.domain.orgs import OrgNode, child_segment
from aid_service.domain.periods import AidPeriod
from aid_service.service.context import Deps, scope_org


class Dim(IntEnum):
    """What a statistics row is broken down by (aid.v1.StatsDimension)."""

    ORG = 1
    PROJECT = 2
    STAGE = 3
    CATEGORY = 4


class RowKind(IntEnum):
    """common.v1.StatsRowKind."""

    TOTAL = 1
    DIRECT_SCHOOLS = 2
    CHILD_REGION = 3
    SCHOOL = 4


_SQL_DIM = {Dim.PROJECT: "project_code", Dim.STAGE: "stage", Dim.CATEGORY: "category"}
_PENDING = (RecordStatus.PENDING_SCHOOL_AUDIT, RecordStatus.PENDING_AUTHORITY_AUDIT)
_UNAPPROVED = (RecordStatus.DRAFT, RecordStatus.RETURNED, *_PENDING)


@dataclass
class StatsRow:
    """One row of figures."""

    kind: RowKind
    org: OrgNode | None
    project_code: str = ""
    project_name: str = ""
    stage: Stage | None = None
    category: Category | None = None
    record_count: int = 0
    approved_student_count: int = 0
    by_status: dict[RecordStatus, int] = field(default_factory=dict)
    approved_amount_fen: int = 0
    unapproved_amount_fen: int = 0

    def count(self, *statuses: RecordStatus) -> int:
        """Records in any of the statuses."""
        return sum(self.by_status.get(s, 0) for s in statuses)


class StatsService:
    """Aggregates over records in the caller's subtree."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def stats(
        self,
        caller: CallerContext,
        *,
        period: AidPeriod,
        org_code: str,
        project_code: str,
        categories: Sequence[int],
        stage: int,
        group_by: Sequence[int],
        expand_direct_schools: bool,
    ) -> list[StatsRow]:
        """Rows: TOTAL (per dims), then with ORG the direct schools and each child region."""
        dims = [Dim(d) for d in dict.fromkeys(group_by) if d]
        sql_dims = [_SQL_DIM[d] for d in dims if d in _SQL_DIM]
        by_org = Dim.ORG in dims
        async with self.deps.db.read() as session:
            root = await scope_org(self.deps, session, caller, org_code, field="org_code")
            if root is None:
                root = await self.deps.orgs.get(session, caller.org_code) or OrgNode(
                    caller.org_code, "", Level.from_name(caller.level), None, caller.org_path
                )
            totals, approved = await self.deps.records.stats(
                session,
                period=period,
                scope_path=root.org_path,
                project_code=project_code,
                categories=[Category(c) for c in categories if c],
                stage=Stage(stage) if stage else None,
                dims=sql_dims,
            )
            children = (
                await self.deps.orgs.children(session, root.org_code)
                if by_org and root.level is not Level.SCHOOL
                else []
            )
            codes = {r[0] for r in totals} | {c for c in children_codes(root, totals)}
            orgs = await self.deps.orgs.get_many(session, list(codes))
            projects = await self.deps.projects.get_many(
                session,
                list({r[2 + sql_dims.index("project_code")] for r in totals})
                if "project_code" in sql_dims
                else [],
            )
        rows: dict[tuple, StatsRow] = {}

        def bucket(school_code: str, school_path: str) -> list[tuple[RowKind, str]]:
            out = [(RowKind.TOTAL, root.org_code)]
            if not by_org or root.level is Level.SCHOOL:
                return out
            child = child_segment(root.org_path, school_path)
            if child is None:
                return out
            if child == school_code:
                out.append((RowKind.SCHOOL, school_code) if expand_direct_schools
                           else (RowKind.DIRECT_SCHOOLS, root.org_code))  # fmt: skip
            else:
                out.append((RowKind.CHILD_REGION, child))
            return out

        def row_for(kind: RowKind, code: str, dim_values: tuple) -> StatsRow:
            key = (kind, code, dim_values)
            row = rows.get(key)
            if row is None:
                org = root if kind in (RowKind.TOTAL, RowKind.DIRECT_SCHOOLS) else orgs.get(code)
                row = StatsRow(kind, org or OrgNode(code, "", Level.SCHOOL, None, ""))
                for name, value in zip(sql_dims, dim_values, strict=True):
                    if name == "project_code":
                        row.project_code = value
                        p = projects.get(value)
                        row.project_name = p.name if p else ""
                    elif name == "stage":
                        row.stage = Stage(value)
                    else:
                        row.category = Category(value)
                rows[key] = row
            return row

        width = len(sql_dims)
        for rec in totals:
            school_code, school_path = rec[0], rec[1]
            dim_values = tuple(rec[2 : 2 + width])
            status, count, amount = (
                RecordStatus(rec[2 + width]),
                int(rec[3 + width]),
                int(rec[4 + width]),
            )
            for kind, code in bucket(school_code, school_path):
                row = row_for(kind, code, dim_values)
                row.record_count += count
                row.by_status[status] = row.by_status.get(status, 0) + count
                if status is RecordStatus.APPROVED:
                    row.approved_amount_fen += amount
                elif status in _UNAPPROVED:
                    row.unapproved_amount_fen += amount
        for rec in approved:
            dim_values = tuple(rec[2 : 2 + width])
            for kind, code in bucket(rec[0], rec[1]):
                row_for(kind, code, dim_values).approved_student_count += int(rec[2 + width])
        if not sql_dims:
            row_for(RowKind.TOTAL, root.org_code, ())
            if by_org and root.level is not Level.SCHOOL:
                if not expand_direct_schools:
                    row_for(RowKind.DIRECT_SCHOOLS, root.org_code, ())
                for child in children:
                    if child.level is not Level.SCHOOL:
                        orgs.setdefault(child.org_code, child)
                        row_for(RowKind.CHILD_REGION, child.org_code, ())
        return sorted(
            rows.values(),
            key=lambda r: (
                int(r.kind) if r.kind is not RowKind.SCHOOL else 2,
                r.org.org_code if r.org else "",
                r.project_code,
                int(r.stage or 0),
                int(r.category or 0),
            ),
        )


def children_codes(root: OrgNode, totals: Sequence[tuple]) -> set[str]:
    """Codes right below root on the paths of the schools in the figures."""
    out = set()
    for rec in totals:
        child = child_segment(root.org_path, rec[1])
        if child:
            out.add(child)
    return out

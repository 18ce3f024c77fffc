"""Read side: the fund summary of an org (and its .xlsx), execution per project × period, and
the overspent orgs data verification reads (数据核查 R12). Every query starts from an org
inside the caller's subtree; rows come from pre-aggregated rollups, never from records."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from zizhu_common.errors import InvalidArgument
from zizhu_common.rpc import CallerContext

from funding_service import xlsx
from funding_service.domain.model import Figures, FundSource, Level, OrgNode, Period, ShareLine
from funding_service.domain.rules import check_fiscal_year, check_period, expected_split
from funding_service.domain.summary import SummaryRow, assemble, org_figures
from funding_service.service.context import Deps, next_page_token, org_in_scope, page_window


@dataclass
class Summary:
    """A computed summary."""

    root: OrgNode
    fiscal_year: str
    project_code: str
    rows: list[SummaryRow]
    as_of: datetime


@dataclass
class ExecutionRow:
    """Approved aid of an org's subtree for one project and period."""

    kind: str
    org: OrgNode
    project_code: str
    project_name: str
    period: Period
    fiscal_year: str
    executed_fen: int
    record_count: int


@dataclass
class OverspendingRow:
    """An org whose approved aid exceeds its subtree's funds."""

    org: OrgNode
    project_code: str
    project_name: str
    fiscal_year: str
    funds_fen: int
    executed_fen: int
    since: datetime | None


@dataclass
class Page:
    """A page of rows."""

    rows: list[Any] = field(default_factory=list)
    next_page_token: str = ""
    total: int = 0


class SummaryService:
    """Summaries, execution and overspending."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def _check_project(self, session: Any, project_code: str) -> str:
        project_code = (project_code or "").strip()
        if project_code and await self.deps.projects.get(session, project_code) is None:
            raise InvalidArgument(
                f"资助项目不存在：{project_code}", code="PROJECT_NOT_FOUND", field="project_code"
            )
        return project_code

    async def summary(
        self,
        caller: CallerContext,
        *,
        fiscal_year: str,
        project_code: str = "",
        org_code: str = "",
        by_source: bool = False,
        expand_direct_schools: bool = False,
    ) -> Summary:
        """Received, own contribution, passed down, executed, balance and rate of an org and of
        each of its children, for a fiscal year (one project or all)."""
        fiscal_year = check_fiscal_year(fiscal_year)
        deps = self.deps
        async with deps.db.read() as session:
            project_code = await self._check_project(session, project_code)
            root = await org_in_scope(deps, session, caller, org_code)
            children = await deps.orgs.children(session, root.code)
            nodes = [root, *children]
            codes = [n.code for n in nodes]
            per = await deps.ledger.rollups(
                session, codes, fiscal_year=fiscal_year, project_code=project_code or None
            )
            sources: dict[str, dict[FundSource, tuple[int, int]]] = {}
            expected: dict[str, dict[FundSource, int]] = {}
            if by_source:
                sources = await deps.ledger.balances_by_source(
                    session, codes, fiscal_year=fiscal_year, project_code=project_code or None
                )
                expected = await self._expected(session, root, nodes, fiscal_year, project_code)
        figures = {
            code: org_figures(per.get(code), sources.get(code), expected.get(code))
            for code in codes
            if code in per or code in sources
        }
        rows = assemble(root, children, figures, expand_direct_schools=expand_direct_schools)
        return Summary(root, fiscal_year, project_code, rows, deps.now())

    async def _expected(
        self,
        session: Any,
        root: OrgNode,
        nodes: list[OrgNode],
        fiscal_year: str,
        project_code: str,
    ) -> dict[str, dict[FundSource, int]]:
        """Per org, what each source should bear of its execution under the cost shares."""
        deps = self.deps
        shares = await deps.cost_shares.for_view(
            session,
            path=root.path,
            fiscal_year=fiscal_year,
            project_code=project_code or None,
            orgs=deps.orgs,
        )
        by_project: dict[str, dict[str, tuple[ShareLine, ...]]] = defaultdict(dict)
        for s in shares:
            by_project[s.project_code][s.region.path] = s.shares
        out: dict[str, dict[FundSource, int]] = defaultdict(dict)
        for project, regions in by_project.items():
            paths = {n.path for n in nodes} | {p for p in regions if p.startswith(root.path)}
            executed = await deps.ledger.executed_by_path(
                session, paths, fiscal_year=fiscal_year, project_code=project
            )
            for n in nodes:
                for source, amount in expected_split(n.path, executed, regions).items():
                    out[n.code][source] = out[n.code].get(source, 0) + amount
        return out

    async def export_summary(self, caller: CallerContext, **kwargs: Any) -> tuple[bytes, str]:
        """The summary as .xlsx, with its file name."""
        s = await self.summary(caller, **kwargs)
        project = f"_{s.project_code}" if s.project_code else ""
        title = f"资金执行{s.fiscal_year}"
        name = f"资金执行情况_{s.root.name}_{s.fiscal_year}{project}.xlsx"
        return xlsx.summary_workbook(s.rows, title=title), name

    async def execution(
        self,
        caller: CallerContext,
        *,
        org_code: str,
        project_code: str,
        fiscal_year: str,
        school_year: str,
        term: int,
        page_size: int,
        page_token: str,
    ) -> Page:
        """Approved aid per project × period of an org (TOTAL) and each of its children."""
        if fiscal_year:
            fiscal_year = check_fiscal_year(fiscal_year)
        if school_year or term:
            check_period(school_year, term)
        deps = self.deps
        async with deps.db.read() as session:
            project_code = await self._check_project(session, project_code)
            root = await org_in_scope(deps, session, caller, org_code)
            children = {c.code: c for c in await deps.orgs.children(session, root.code)}
            filters = (root.code, project_code, fiscal_year, school_year, term)
            offset, limit = page_window(page_size, page_token, filters)
            total, rows = await deps.execution.period_page(
                session,
                root_code=root.code,
                child_codes=sorted(children),
                project_code=project_code,
                fiscal_year=fiscal_year,
                school_year=school_year,
                term=term,
                offset=offset,
                limit=limit,
            )
            names = await deps.projects.names(session, {r.project_code for r in rows})
        out = []
        for r in rows:
            org = root if r.org_code == root.code else children[r.org_code]
            kind = (
                "total"
                if org is root
                else ("school" if org.level is Level.SCHOOL else "child_region")
            )
            out.append(
                ExecutionRow(
                    kind=kind,
                    org=org,
                    project_code=r.project_code,
                    project_name=names.get(r.project_code, ""),
                    period=Period(r.school_year, r.term),
                    fiscal_year=r.fiscal_year,
                    executed_fen=r.executed_fen,
                    record_count=r.record_count,
                )
            )
        return Page(out, next_page_token(offset, limit, total, filters), total)

    async def overspending(
        self,
        caller: CallerContext,
        *,
        org_code: str,
        fiscal_year: str,
        project_code: str,
        levels: list[str],
        page_size: int,
        page_token: str,
    ) -> Page:
        """Orgs of the subtree whose approved aid exceeds their funds (数据核查 R12)."""
        if fiscal_year:
            fiscal_year = check_fiscal_year(fiscal_year)
        deps = self.deps
        async with deps.db.read() as session:
            project_code = (project_code or "").strip()
            root = await org_in_scope(deps, session, caller, org_code)
            filters = (root.path, fiscal_year, project_code, tuple(levels))
            offset, limit = page_window(page_size, page_token, filters)
            total, rows = await deps.ledger.overspent_page(
                session,
                scope_path=root.path,
                fiscal_year=fiscal_year,
                project_code=project_code,
                levels=levels,
                offset=offset,
                limit=limit,
            )
            names = await deps.projects.names(session, {r["project_code"] for r in rows})
        out = []
        for r in rows:
            org = OrgNode(
                code=r["org_code"],
                name=r["name"] or r["org_code"],
                level=Level(r["level"]) if r["level"] else Level.SCHOOL,
                parent_code=None,
                path=r["org_path"],
            )
            out.append(
                OverspendingRow(
                    org=org,
                    project_code=r["project_code"],
                    project_name=names.get(r["project_code"], ""),
                    fiscal_year=r["fiscal_year"],
                    funds_fen=r["received_fen"] + r["subtree_contributed_fen"],
                    executed_fen=r["executed_fen"],
                    since=r["overspent_since"],
                )
            )
        return Page(out, next_page_token(offset, limit, total, filters), total)


__all__ = ["ExecutionRow", "Figures", "OverspendingRow", "Page", "Summary", "SummaryService"]

"""The authority view (特殊群体学生未资助情况查看): figures by child region × 13 groups, what each
subordinate reported, and each authority's own statement for the period."""

from __future__ import annotations

from dataclasses import dataclass, field

from zizhu_common.errors import FailedPrecondition, InvalidArgument, NotFound
from zizhu_common.rpc import CallerContext

from reconcile_service.domain.groups import GROUPS, is_group
from reconcile_service.domain.periods import Period
from reconcile_service.domain.reasons import ReasonCode, check_reason
from reconcile_service.domain.scope import LEVELS, SCHOOL
from reconcile_service.repository import records as record_repo
from reconcile_service.repository import runs as run_repo
from reconcile_service.repository import stats as stats_repo
from reconcile_service.repository.records import StatementRow
from reconcile_service.repository.runs import OrgRow, PeriodRow, RunRow
from reconcile_service.repository.stats import ROOT, Cell, ChildFigures
from reconcile_service.service.context import (
    AUTHORITIES,
    Deps,
    Scope,
    audit,
    require,
    resolve_scope,
)
from reconcile_service.service.unfunded import ALL_LEVELS, BUSINESS, view_period

TOTAL, DIRECT_SCHOOLS, CHILD_REGION, SCHOOL_ROW = 1, 2, 3, 4  # StatsRowKind


@dataclass
class StatsRow:
    """One row of the view."""

    kind: int
    org_code: str
    org_name: str
    org_level: int
    org_path: str
    cells: dict[int, Cell]
    reasons: dict[str, int]
    authority_reasons: dict[str, int] = field(default_factory=dict)
    statements: list[StatementRow] = field(default_factory=list)


@dataclass
class StatsView:
    """The rows with the period, dictionary and the run the figures reflect."""

    rows: list[StatsRow]
    period: PeriodRow | None
    as_of: RunRow | None
    reasons: dict[str, ReasonCode]
    scope: Scope


def _merge(target: ChildFigures, source: ChildFigures) -> None:
    for g, cell in source.cells.items():
        t = target.cells[g]
        t.students += cell.students
        t.issued += cell.issued
        t.self_collected += cell.self_collected
        t.funded += cell.funded
        t.unfunded += cell.unfunded
        t.reported += cell.reported
    for code, n in source.reasons.items():
        target.reasons[code] += n


def _cells(fig: ChildFigures) -> dict[int, Cell]:
    return {g: fig.cells.get(g, Cell()) for g in (0, *GROUPS)}


class StatsService:
    """Statistics, their export, and authority statements."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def view(
        self,
        caller: CallerContext,
        *,
        period: Period | None,
        org_code: str,
        stage: int,
        source: int,
        expand_direct_schools: bool,
    ) -> StatsView:
        """Total, directly-run schools (or each of them), then one row per child region."""
        require(caller, roles=BUSINESS, levels=ALL_LEVELS, action="查看未资助统计")
        async with self.deps.db.read() as session:
            scope = await resolve_scope(session, caller, org_code)
            period_row = await view_period(session, period)
            reasons, _ = await record_repo.dictionary(session)
            if period_row is None:
                return StatsView([], None, None, reasons, scope)
            figures = await stats_repo.unfunded_figures(
                session,
                period_key=period_row.key,
                root_path=scope.org_path,
                stage=stage,
                source=source,
            )
            kids = {o.org_code: o for o in await run_repo.children(session, scope.org_code)}
            unknown = [c for c in figures if c != ROOT and c not in kids]
            kids.update(await run_repo.get_orgs(session, unknown))
            for code in unknown:
                kids.setdefault(
                    code,
                    OrgRow(code, "", SCHOOL if len(code) == 10 else 0, scope.org_code,
                           f"{scope.org_path}{code}/", "", 1),
                )  # fmt: skip
            regions = [o for o in kids.values() if o.level != SCHOOL]
            authority_codes = [scope.org_code, *(o.org_code for o in regions)]
            auth_reasons = await stats_repo.authority_reason_counts(
                session,
                period_key=period_row.key,
                root_path=scope.org_path,
                org_codes=authority_codes,
            )
            statements = await record_repo.statements(
                session,
                period_key=period_row.key,
                root_path=scope.org_path,
                org_codes=authority_codes,
            )
            as_of = await run_repo.last_success(
                session, period=period_row.period, path=scope.org_path
            )
        by_org: dict[str, list[StatementRow]] = {}
        for s in statements:
            by_org.setdefault(s.org_code, []).append(s)
        total = ChildFigures()
        for fig in figures.values():
            _merge(total, fig)
        rows = [
            StatsRow(
                TOTAL, scope.org_code, scope.name, scope.level, scope.org_path, _cells(total),
                dict(total.reasons), auth_reasons.get(scope.org_code, {}),
                by_org.get(scope.org_code, []),
            )
        ]  # fmt: skip
        if scope.level == SCHOOL:
            return StatsView(rows, period_row, as_of, reasons, scope)
        schools = sorted((o for o in kids.values() if o.level == SCHOOL), key=lambda o: o.org_code)
        if schools:
            direct = ChildFigures()
            for o in schools:
                _merge(direct, figures.get(o.org_code, ChildFigures()))
            rows.append(
                StatsRow(
                    DIRECT_SCHOOLS, scope.org_code, f"{scope.name}直属学校", scope.level,
                    scope.org_path, _cells(direct), dict(direct.reasons),
                )
            )  # fmt: skip
            if expand_direct_schools or scope.level == LEVELS["county"]:
                for o in schools:
                    fig = figures.get(o.org_code, ChildFigures())
                    rows.append(
                        StatsRow(
                            SCHOOL_ROW, o.org_code, o.name, o.level, o.org_path, _cells(fig),
                            dict(fig.reasons),
                        )
                    )  # fmt: skip
        for o in sorted(regions, key=lambda o: o.org_code):
            fig = figures.get(o.org_code, ChildFigures())
            rows.append(
                StatsRow(
                    CHILD_REGION, o.org_code, o.name, o.level, o.org_path, _cells(fig),
                    dict(fig.reasons), auth_reasons.get(o.org_code, {}), by_org.get(o.org_code, []),
                )
            )  # fmt: skip
        return StatsView(rows, period_row, as_of, reasons, scope)

    async def file_statement(
        self,
        caller: CallerContext,
        *,
        period: Period | None,
        group: int,
        reason_code: str,
        note: str,
    ) -> tuple[StatementRow, dict]:
        """An authority files (or replaces) its own statement for a period (and group)."""
        require(caller, roles=("operator",), levels=AUTHORITIES, action="填报本级未资助原因")
        if period is None:
            raise InvalidArgument("请指定资助周期", code="PERIOD_REQUIRED", field="period")
        if group and not is_group(group):
            raise InvalidArgument("特殊群体类别无效", code="GROUP_INVALID", field="group")
        async with self.deps.db.write() as session:
            reasons, _ = await record_repo.dictionary(session)
            code, text = check_reason(reason_code, note, reasons)
            row = await run_repo.find_period(session, period)
            if row is None:
                raise NotFound(f"{period.label}不存在", code="PERIOD_NOT_FOUND", field="period")
            if row.dates.deadline_passed(self.deps.now()):
                raise FailedPrecondition(
                    f"{period.label}未资助原因填报已于{row.dates.deadline_on.isoformat()}截止",
                    code="REASON_DEADLINE_PASSED",
                    field="period",
                    details={"deadline_on": row.dates.deadline_on.isoformat()},
                )
            org = await run_repo.get_org(session, caller.org_code)
            statement = StatementRow(
                org_code=caller.org_code,
                org_path=caller.org_path,
                org_level=LEVELS.get(caller.level, 0),
                org_name=org.name if org else "",
                period_key=row.key,
                special_group=group,
                reason_code=code.code,
                note=text,
                reported_by=caller.account_id,
                reported_at=self.deps.now(),
            )
            await record_repo.save_statement(session, statement)
            await audit(
                self.deps,
                session,
                caller,
                action="FileAuthorityStatement",
                object_type="authority_statement",
                object_id=f"{caller.org_code}:{period.school_year}:{period.term}:{group}",
                detail=f"填报本级未资助原因情况 {code.code} {code.label}",
            )
        return statement, reasons

    async def list_statements(
        self, caller: CallerContext, *, period: Period | None, org_code: str, root_only: bool
    ) -> tuple[list[StatementRow], dict, PeriodRow | None]:
        """Statements of the root and (unless root_only) every authority below it."""
        require(caller, roles=BUSINESS, levels=ALL_LEVELS, action="查看未资助原因")
        async with self.deps.db.read() as session:
            scope = await resolve_scope(session, caller, org_code)
            row = await view_period(session, period)
            reasons, _ = await record_repo.dictionary(session)
            if row is None:
                return [], reasons, None
            found = await record_repo.statements(
                session,
                period_key=row.key,
                root_path=scope.org_path,
                org_codes=[scope.org_code] if root_only else None,
            )
        return found, reasons, row

"""Reconcile routes for unfunded statistics (by region × 13 groups, with .xlsx export) and authority
statements."""

from __future__ import annotations

from fastapi.responses import Response
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.reconcile.v1 import reconcile_pb2 as pb

from gateway.deps import CurrentUser, Reconcile
from gateway.policy import guard
from gateway.routes.reconcile.base import (
    ORG_IN_QUERY,
    XLSX_RESPONSE,
    RootOrg,
    SchoolYearQuery,
    TermQuery,
    router,
    xlsx_response,
)
from gateway.schemas.common import (
    StageName,
    stage_value,
)
from gateway.schemas.reconcile import (
    SourceName,
    StatementCreate,
    StatementList,
    StatementRead,
    StatsRead,
    group_value,
    period_pb,
    source_value,
    statement_read,
    stats_read,
    term_value,
)


def _stats_request(
    org_code: str | None,
    school_year: str | None,
    term: str | None,
    stage: str | None,
    source: str | None,
    expand: bool,
) -> pb.UnfundedStatsRequest:
    return pb.UnfundedStatsRequest(
        period=period_pb(school_year, term),
        org_code=org_code or "",
        stage=stage_value(stage) if stage else 0,  # type: ignore[arg-type]
        source=source_value(source) if source else 0,  # type: ignore[arg-type]
        expand_direct_schools=expand,
    )


@router.get(
    "/stats",
    response_model=StatsRead,
    summary="特殊群体学生未资助情况统计",
    **guard("unfunded.read", ORG_IN_QUERY),
)
async def unfunded_stats(
    caller: CurrentUser,
    reconcile: Reconcile,
    org_code: RootOrg = None,
    school_year: SchoolYearQuery = None,
    term: TermQuery = None,
    stage: StageName | None = None,
    source: SourceName | None = None,
    expand_direct_schools: bool = False,
) -> StatsRead:
    """Total, directly-run schools (each school at county level), then each child region ×
    13 groups: special-group students, funded, unfunded, reasons reported and pending, and what
    each subordinate authority reported."""
    resp = await reconcile.UnfundedStats(
        _stats_request(org_code, school_year, term, stage, source, expand_direct_schools),
        caller=caller,
    )
    stats = stats_read(resp)
    stats.rows = [
        r for r in stats.rows if not r.org.org_path or caller.keeps(r.org.org_path, "row")
    ]
    return stats


@router.get(
    "/stats/export",
    response_class=Response,
    responses=XLSX_RESPONSE,
    summary="导出未资助情况统计（.xlsx）",
    **guard("unfunded.export", ORG_IN_QUERY),
)
async def export_stats(
    caller: CurrentUser,
    reconcile: Reconcile,
    org_code: RootOrg = None,
    school_year: SchoolYearQuery = None,
    term: TermQuery = None,
    stage: StageName | None = None,
    source: SourceName | None = None,
    expand_direct_schools: bool = False,
) -> Response:
    """The statistics view as a workbook."""
    resp = await reconcile.ExportUnfundedStats(
        pb.ExportUnfundedStatsRequest(
            filter=_stats_request(org_code, school_year, term, stage, source, expand_direct_schools)
        ),
        caller=caller,
    )
    return xlsx_response(resp.file)


@router.post(
    "/statements",
    response_model=StatementRead,
    summary="填报本级未资助原因情况",
    **guard("unfunded.reason.authority", {"kind": "self"}),
)
async def file_statement(
    body: StatementCreate, caller: CurrentUser, reconcile: Reconcile
) -> StatementRead:
    """The caller's own authority's statement for a period (all groups, or one group); it
    replaces an earlier one and the parent level sees it in its statistics."""
    resp = await reconcile.FileAuthorityStatement(
        pb.FileAuthorityStatementRequest(
            period=common_pb2.AidPeriod(
                school_year=body.period.school_year, term=term_value(body.period.term)
            ),  # type: ignore[arg-type]
            group=group_value(body.group) if body.group else 0,  # type: ignore[arg-type]
            reason_code=body.reason_code,
            note=body.note,
        ),  # fmt: skip
        caller=caller,
    )
    return statement_read(resp.statement)


@router.get(
    "/statements",
    response_model=StatementList,
    summary="查看各级未资助原因情况",
    **guard("unfunded.read", ORG_IN_QUERY),
)
async def list_statements(
    caller: CurrentUser,
    reconcile: Reconcile,
    org_code: RootOrg = None,
    school_year: SchoolYearQuery = None,
    term: TermQuery = None,
    root_only: bool = False,
) -> StatementList:
    """Statements of the area's authority and every authority below it."""
    resp = await reconcile.ListAuthorityStatements(
        pb.ListAuthorityStatementsRequest(
            period=period_pb(school_year, term), org_code=org_code or "", root_only=root_only
        ),
        caller=caller,
    )
    return StatementList(
        items=[
            statement_read(s) for s in resp.statements if caller.keeps(s.org.org_path, "原因情况")
        ]
    )

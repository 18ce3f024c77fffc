"""Reconcile (特殊群体学生未资助情况, 数据核查): comparison runs, the unfunded list and its reasons
at every level, statistics by region × 13 groups with .xlsx exports, authority statements, the
reason dictionary, the retired 建档立卡 history, findings and quotas. Thin: parse → policy →
gRPC (deadline + caller) → schema; the service applies the scope rule again."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from zizhu_common.errors import NotFound
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.reconcile.v1 import reconcile_pb2 as pb

from gateway.deps import CurrentUser, Reconcile
from gateway.policy import governs, guard
from gateway.schemas.common import (
    IdTypeName,
    OrgCode,
    PageSize,
    PageToken,
    StageName,
    enum_value,
    page_request,
    stage_value,
    to_timestamp,
    ts,
)
from gateway.schemas.reconcile import (
    EntryStatusName,
    FindingBatchRead,
    FindingDetailRead,
    FindingPage,
    FindingResolveCreate,
    FindingStatsRead,
    FindingStatusName,
    GroupName,
    LegacyImportCreate,
    LegacyImportRead,
    LegacyReportPage,
    QuotaList,
    QuotaSet,
    ReasonDictionaryRead,
    ReasonDictionaryUpdate,
    ReasonReportCreate,
    ReasonStateName,
    RunCreate,
    RunPage,
    RunRead,
    RunStatusName,
    SeverityName,
    SourceName,
    StatementCreate,
    StatementList,
    StatementRead,
    StatsRead,
    TermName,
    TriggerName,
    UnfundedBatchRead,
    UnfundedPage,
    UnfundedRead,
    dictionary_read,
    finding_detail_read,
    finding_read,
    finding_stats_read,
    finding_status_value,
    group_value,
    legacy_import_read,
    legacy_read,
    period_pb,
    quota_read,
    run_read,
    run_status_value,
    severity_value,
    source_value,
    statement_read,
    stats_read,
    status_value,
    term_value,
    trigger_value,
    unfunded_read,
)

router = APIRouter(prefix="/reconcile", tags=["未资助与数据核查 reconcile"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSX_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {XLSX: {}}, "description": ".xlsx 文件"}
}
ORG_IN_QUERY = {"kind": "org", "in": "query", "name": "org_code"}
ORG_IN_BODY = {"kind": "org", "in": "body", "name": "org_code"}
RUN_IN_PATH = {"kind": "comparison_run", "in": "path", "name": "run_id"}
ENTRY_IN_PATH = {"kind": "unfunded_entry", "in": "path", "name": "entry_id"}
ENTRIES_IN_BODY = {"kind": "unfunded_entry", "in": "body", "name": "entry_ids"}
FINDING_IN_PATH = {"kind": "finding", "in": "path", "name": "finding_id"}
FINDINGS_IN_BODY = {"kind": "finding", "in": "body", "name": "finding_ids"}
DICTIONARY = {"kind": "global", "reason": "未资助原因字典为全国统一数据，无机构范围"}

RootOrg = Annotated[OrgCode | None, Query(description="范围根机构；默认本机构")]
SchoolYearQuery = Annotated[
    str | None,
    Query(pattern=r"^\d{4}-\d{4}$", description="学年，如 2024-2025；默认最近进行中周期"),
]
TermQuery = Annotated[TermName | None, Query(description="学期 autumn / spring")]
NumericId = Annotated[str, Path(pattern=r"^\d{1,18}$")]
RunId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_-]+$")]


def xlsx_response(file: common_pb2.FileContent) -> Response:
    """A downloadable workbook."""
    name = quote(file.file_name or "export.xlsx")
    return Response(
        content=file.content,
        media_type=file.content_type or XLSX,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"},
    )


# --- runs -------------------------------------------------------------------------------------


@router.post(
    "/runs",
    response_model=RunRead,
    status_code=202,
    summary="手动发起数据比对",
    **guard("comparison.run", ORG_IN_BODY),
)
async def start_run(body: RunCreate, caller: CurrentUser, reconcile: Reconcile) -> RunRead:
    """Compare now (the 02:00 job runs the same code): returns at once; poll the run. If a run
    covering the area is in progress, that run is returned (`already_running`)."""
    resp = await reconcile.RunComparison(
        pb.RunComparisonRequest(
            periods=[
                common_pb2.AidPeriod(school_year=p.school_year, term=term_value(p.term))  # type: ignore[arg-type]
                for p in body.periods
            ],
            org_code=body.org_code or "",
            include_verification=body.include_verification,
        ),
        caller=caller,
    )
    return run_read(resp.run, already_running=resp.already_running)


@router.get(
    "/runs",
    response_model=RunPage,
    summary="数据比对记录",
    **guard("comparison.read", ORG_IN_QUERY),
)
async def list_runs(
    caller: CurrentUser,
    reconcile: Reconcile,
    org_code: RootOrg = None,
    school_year: SchoolYearQuery = None,
    term: TermQuery = None,
    status: Annotated[list[RunStatusName] | None, Query()] = None,
    trigger: TriggerName | None = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> RunPage:
    """Runs covering the area (its own, and those of the levels above), newest first."""
    period = period_pb(school_year, term)
    resp = await reconcile.ListRuns(
        pb.ListRunsRequest(
            period=period,
            statuses=[run_status_value(s) for s in status or ()],  # type: ignore[misc]
            trigger=trigger_value(trigger) if trigger else 0,  # type: ignore[arg-type]
            page=page_request(page_size, page_token),
            org_code=org_code or "",
        ),
        caller=caller,
    )
    return RunPage(
        items=[run_read(r) for r in resp.runs if governs(caller, r.org_path, "数据比对")],
        next_page_token=resp.page.next_page_token,
        total=resp.page.total,
    )


@router.get(
    "/runs/{run_id}",
    response_model=RunRead,
    summary="查看数据比对",
    **guard("comparison.read", RUN_IN_PATH),
)
async def get_run(run_id: RunId, caller: CurrentUser, reconcile: Reconcile) -> RunRead:
    """One run with its periods, times and counts."""
    resp = await reconcile.GetRun(pb.GetRunRequest(run_id=run_id), caller=caller)
    # A run covers its root's subtree: the caller sees its own area's runs and those above it.
    if not governs(caller, resp.run.org_path, "数据比对"):
        raise NotFound("数据比对不存在或不在本辖区内", code="NOT_FOUND", field="run_id")
    return run_read(resp.run)


# --- the unfunded list ------------------------------------------------------------------------


def _list_request(
    org_code: str | None,
    school_year: str | None,
    term: str | None,
    status: list[str] | None,
    group: list[str] | None,
    source: str | None,
    reason_state: str | None,
    reason_code: list[str] | None,
    stage: str | None,
    student_name: str | None,
    id_number: str | None,
    page: common_pb2.PageRequest | None = None,
) -> pb.ListUnfundedRequest:
    return pb.ListUnfundedRequest(
        period=period_pb(school_year, term),
        org_code=org_code or "",
        statuses=[status_value(s) for s in status or ()],  # type: ignore[misc]
        groups=[group_value(g) for g in group or ()],  # type: ignore[misc]
        source=source_value(source) if source else 0,  # type: ignore[arg-type]
        reason_state=(
            enum_value(pb.ReasonState, reason_state, "REASON_STATE_") if reason_state else 0  # type: ignore[arg-type]
        ),
        reason_codes=reason_code or [],
        stage=stage_value(stage) if stage else 0,  # type: ignore[arg-type]
        student_name=student_name or "",
        id_number=id_number or "",
        page=page,
    )


@router.get(
    "/unfunded",
    response_model=UnfundedPage,
    summary="特殊群体学生未资助名单",
    **guard("unfunded.read", ORG_IN_QUERY),
)
async def list_unfunded(
    caller: CurrentUser,
    reconcile: Reconcile,
    org_code: RootOrg = None,
    school_year: SchoolYearQuery = None,
    term: TermQuery = None,
    status: Annotated[
        list[EntryStatusName] | None, Query(description="open / funded / not_eligible；默认 open")
    ] = None,
    group: Annotated[list[GroupName] | None, Query(description="属于任一群体")] = None,
    source: SourceName | None = None,
    reason_state: ReasonStateName | None = None,
    reason_code: Annotated[list[Annotated[str, Query(pattern=r"^\d{2}$")]] | None, Query()] = None,
    stage: StageName | None = None,
    student_name: Annotated[str | None, Query(max_length=50, description="姓名前缀")] = None,
    id_number: Annotated[
        str | None, Query(max_length=18, description="身份证件号码（精确）")
    ] = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> UnfundedPage:
    """Students of schools in the area with all 13 group flags and every level's reason."""
    resp = await reconcile.ListUnfunded(
        _list_request(
            org_code,
            school_year,
            term,
            status,
            group,
            source,
            reason_state,
            reason_code,
            stage,
            student_name,
            id_number,
            page_request(page_size, page_token),
        ),  # fmt: skip
        caller=caller,
    )
    return UnfundedPage(
        items=[
            unfunded_read(e) for e in resp.entries if caller.keeps(e.school_org_path, "未资助名单")
        ],
        next_page_token=resp.page.next_page_token,
        total=resp.page.total,
        as_of=ts(resp.as_of, resp.HasField("as_of")),
    )


@router.get(
    "/unfunded/export",
    response_class=Response,
    responses=XLSX_RESPONSE,
    summary="导出未资助名单（.xlsx）",
    **guard("unfunded.export", ORG_IN_QUERY),
)
async def export_unfunded(
    caller: CurrentUser,
    reconcile: Reconcile,
    org_code: RootOrg = None,
    school_year: SchoolYearQuery = None,
    term: TermQuery = None,
    group: Annotated[list[GroupName] | None, Query()] = None,
    source: SourceName | None = None,
    reason_state: ReasonStateName | None = None,
    stage: StageName | None = None,
) -> Response:
    """The list as filtered, every page (at most 200,000 rows)."""
    resp = await reconcile.ExportUnfunded(
        pb.ExportUnfundedRequest(
            filter=_list_request(
                org_code,
                school_year,
                term,
                None,
                group,
                source,
                reason_state,
                None,
                stage,
                None,
                None,
            )  # fmt: skip
        ),
        caller=caller,
        deadline_s=120,
    )
    return xlsx_response(resp.file)


@router.get(
    "/unfunded/{entry_id}",
    response_model=UnfundedRead,
    summary="查看未资助学生",
    **guard("unfunded.read", ENTRY_IN_PATH),
)
async def get_unfunded(
    entry_id: NumericId, caller: CurrentUser, reconcile: Reconcile
) -> UnfundedRead:
    """One entry with the school's reason and each authority level's reason."""
    resp = await reconcile.GetUnfunded(pb.GetUnfundedRequest(entry_id=entry_id), caller=caller)
    caller.ensure_in_scope(resp.entry.school_org_path, what="未资助名单记录")
    return unfunded_read(resp.entry)


@router.post(
    "/unfunded/reasons",
    response_model=UnfundedBatchRead,
    summary="学校填报未资助原因",
    **guard("unfunded.reason.school", ENTRIES_IN_BODY),
)
async def report_reason(
    body: ReasonReportCreate, caller: CurrentUser, reconcile: Reconcile
) -> UnfundedBatchRead:
    """One reason for open entries of the school's own students, until the period's deadline;
    “99 其他” needs a note. All or nothing."""
    resp = await reconcile.ReportReason(
        pb.ReportReasonRequest(
            entry_ids=body.entry_ids, reason_code=body.reason_code, note=body.note
        ),  # fmt: skip
        caller=caller,
    )
    return UnfundedBatchRead(items=[unfunded_read(e) for e in resp.entries])


@router.post(
    "/unfunded/authority-reasons",
    response_model=UnfundedBatchRead,
    summary="主管部门填报本级未资助原因（逐人）",
    **guard("unfunded.reason.authority", ENTRIES_IN_BODY),
)
async def report_authority_reason(
    body: ReasonReportCreate, caller: CurrentUser, reconcile: Reconcile
) -> UnfundedBatchRead:
    """The caller's level's reason on open entries of its area (its parent sees it)."""
    resp = await reconcile.ReportAuthorityReason(
        pb.ReportAuthorityReasonRequest(
            entry_ids=body.entry_ids, reason_code=body.reason_code, note=body.note
        ),  # fmt: skip
        caller=caller,
    )
    return UnfundedBatchRead(items=[unfunded_read(e) for e in resp.entries])


# --- statistics and statements ----------------------------------------------------------------


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


# --- reason dictionary and 建档立卡 history -----------------------------------------------------


@router.get(
    "/reason-codes",
    response_model=ReasonDictionaryRead,
    summary="未资助原因字典",
    **guard("reason_dictionary.read", DICTIONARY),
)
async def list_reason_codes(
    caller: CurrentUser, reconcile: Reconcile, include_disabled: bool = False
) -> ReasonDictionaryRead:
    """The reason codes in display order (停用的 with include_disabled)."""
    resp = await reconcile.ListReasonDictionary(
        pb.ListReasonDictionaryRequest(include_disabled=include_disabled), caller=caller
    )
    return dictionary_read(list(resp.reasons), resp.version)


@router.put(
    "/reason-codes",
    response_model=ReasonDictionaryRead,
    summary="维护未资助原因字典",
    **guard("reason_dictionary.manage", DICTIONARY),
)
async def update_reason_codes(
    body: ReasonDictionaryUpdate, caller: CurrentUser, reconcile: Reconcile
) -> ReasonDictionaryRead:
    """Add or replace codes (national level); codes are disabled, never deleted. With
    expected_version, a concurrent edit answers 409."""
    resp = await reconcile.UpdateReasonDictionary(
        pb.UpdateReasonDictionaryRequest(
            reasons=[
                pb.ReasonCode(
                    code=r.code,
                    label=r.label,
                    description=r.description,
                    requires_note=r.requires_note,
                    enabled=r.enabled,
                    sort_order=r.sort_order,
                )
                for r in body.reasons
            ],
            expected_version=body.expected_version,
        ),  # fmt: skip
        caller=caller,
    )
    return dictionary_read(list(resp.reasons), resp.version)


@router.get(
    "/legacy-reports",
    response_model=LegacyReportPage,
    summary="脱贫家庭学生（原建档立卡）未资助情况查看（历史）",
    **guard("legacy_report.read", ORG_IN_QUERY),
)
async def list_legacy_reports(
    caller: CurrentUser,
    reconcile: Reconcile,
    org_code: RootOrg = None,
    school_year: Annotated[str | None, Query(pattern=r"^\d{4}-\d{4}$")] = None,
    term: TermQuery = None,
    project_code: Annotated[str | None, Query(max_length=40)] = None,
    student_name: Annotated[str | None, Query(max_length=50)] = None,
    id_number: Annotated[str | None, Query(max_length=18)] = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> LegacyReportPage:
    """What schools reported in the retired report, read-only; autumn-2023 rows are marked as
    carried into the new module."""
    resp = await reconcile.ListLegacyReports(
        pb.ListLegacyReportsRequest(
            period=period_pb(school_year, term),
            org_code=org_code or "",
            project_code=project_code or "",
            student_name=student_name or "",
            id_number=id_number or "",
            page=page_request(page_size, page_token),
        ),  # fmt: skip
        caller=caller,
    )
    return LegacyReportPage(
        items=[legacy_read(r) for r in resp.reports if caller.keeps(r.school_org_path, "历史")],
        next_page_token=resp.page.next_page_token,
        total=resp.page.total,
    )


def _id_type(name: IdTypeName) -> int:
    return enum_value(common_pb2.IdType, name, "ID_TYPE_")


@router.post(
    "/legacy-reports/import",
    response_model=LegacyImportRead,
    summary="导入原建档立卡未资助原因历史",
    **guard("legacy_report.import", {"kind": "self"}),
)
async def import_legacy_reports(
    body: LegacyImportCreate, caller: CurrentUser, reconcile: Reconcile
) -> LegacyImportRead:
    """Load the old report's rows (schools of the caller's area only; all or nothing; dry run
    reports every refused row). Autumn-2023 reasons are carried into the unfunded module."""
    resp = await reconcile.ImportLegacyReports(
        pb.ImportLegacyReportsRequest(
            rows=[
                pb.LegacyReportRow(
                    period=common_pb2.AidPeriod(
                        school_year=r.period.school_year, term=term_value(r.period.term)
                    ),  # type: ignore[arg-type]
                    project_code=r.project_code,
                    project_name=r.project_name,
                    id_type=_id_type(r.id_type),  # type: ignore[arg-type]
                    id_number=r.id_number,
                    student_name=r.student_name,
                    school_org_code=r.school_org_code,
                    legacy_reason=r.legacy_reason,
                    reason_code=r.reason_code,
                    note=r.note,
                    reported_by=r.reported_by,
                    reported_at=to_timestamp(r.reported_at) if r.reported_at else None,
                )
                for r in body.rows
            ],
            dry_run=body.dry_run,
        ),  # fmt: skip
        caller=caller,
        deadline_s=60,
    )
    return legacy_import_read(resp)


# --- findings and quotas -----------------------------------------------------------------------


@router.get(
    "/findings",
    response_model=FindingPage,
    summary="数据核查疑似问题",
    **guard("finding.read", ORG_IN_QUERY),
)
async def list_findings(
    caller: CurrentUser,
    reconcile: Reconcile,
    org_code: RootOrg = None,
    school_year: Annotated[str | None, Query(pattern=r"^\d{4}-\d{4}$")] = None,
    term: TermQuery = None,
    rule_code: Annotated[list[Annotated[str, Query(pattern=r"^R\d{2}$")]] | None, Query()] = None,
    severity: SeverityName | None = None,
    status: Annotated[
        list[FindingStatusName] | None, Query(description="默认 open 与 confirmed")
    ] = None,
    project_code: Annotated[str | None, Query(max_length=40)] = None,
    student_id: Annotated[str | None, Query(max_length=64)] = None,
    record_id: Annotated[str | None, Query(max_length=64)] = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> FindingPage:
    """Findings of the area: rule, severity, school, student and the records involved."""
    resp = await reconcile.ListFindings(
        pb.ListFindingsRequest(
            period=period_pb(school_year, term),
            org_code=org_code or "",
            rule_codes=rule_code or [],
            severity=severity_value(severity) if severity else 0,  # type: ignore[arg-type]
            statuses=[finding_status_value(s) for s in status or ()],  # type: ignore[misc]
            project_code=project_code or "",
            student_id=student_id or "",
            record_id=record_id or "",
            page=page_request(page_size, page_token),
        ),  # fmt: skip
        caller=caller,
    )
    return FindingPage(
        items=[finding_read(f) for f in resp.findings if caller.keeps(f.org_path, "数据核查问题")],
        next_page_token=resp.page.next_page_token,
        total=resp.page.total,
    )


@router.get(
    "/findings/stats",
    response_model=FindingStatsRead,
    summary="数据核查问题统计",
    **guard("finding.read", ORG_IN_QUERY),
)
async def finding_stats(
    caller: CurrentUser,
    reconcile: Reconcile,
    org_code: RootOrg = None,
    school_year: Annotated[str | None, Query(pattern=r"^\d{4}-\d{4}$")] = None,
    term: TermQuery = None,
    expand_direct_schools: bool = False,
) -> FindingStatsRead:
    """Counts by rule and status: total, directly-run schools, each child region."""
    resp = await reconcile.FindingStats(
        pb.FindingStatsRequest(
            period=period_pb(school_year, term),
            org_code=org_code or "",
            expand_direct_schools=expand_direct_schools,
        ),  # fmt: skip
        caller=caller,
    )
    stats = finding_stats_read(resp)
    stats.rows = [
        r for r in stats.rows if not r.org.org_path or caller.keeps(r.org.org_path, "row")
    ]
    return stats


@router.get(
    "/findings/{finding_id}",
    response_model=FindingDetailRead,
    summary="查看数据核查问题",
    **guard("finding.read", FINDING_IN_PATH),
)
async def get_finding(
    finding_id: NumericId, caller: CurrentUser, reconcile: Reconcile
) -> FindingDetailRead:
    """One finding with its audited history."""
    resp = await reconcile.GetFinding(pb.GetFindingRequest(finding_id=finding_id), caller=caller)
    caller.ensure_in_scope(resp.finding.org_path, what="数据核查问题")
    return finding_detail_read(resp)


@router.post(
    "/findings/resolve",
    response_model=FindingBatchRead,
    summary="处理数据核查问题",
    **guard("finding.resolve", FINDINGS_IN_BODY),
)
async def resolve_findings(
    body: FindingResolveCreate, caller: CurrentUser, reconcile: Reconcile
) -> FindingBatchRead:
    """Confirm (确认问题), mark fixed (已整改) or dismiss (排除) with a note kept in the history."""
    resp = await reconcile.ResolveFinding(
        pb.ResolveFindingRequest(
            finding_ids=body.finding_ids,
            resolution=finding_status_value(body.resolution),  # type: ignore[arg-type]
            note=body.note,
        ),
        caller=caller,
    )
    return FindingBatchRead(items=[finding_read(f) for f in resp.findings])


@router.put(
    "/quotas",
    response_model=QuotaList,
    summary="设置资助名额",
    **guard("quota.manage", {"kind": "org", "in": "body", "name": "quotas"}),
)
async def set_quotas(body: QuotaSet, caller: CurrentUser, reconcile: Reconcile) -> QuotaList:
    """Places per project × school year for orgs of the caller's area (R09 checks them)."""
    resp = await reconcile.SetQuotas(
        pb.SetQuotasRequest(
            quotas=[
                pb.QuotaInput(
                    project_code=q.project_code,
                    school_year=q.school_year,
                    org_code=q.org_code,
                    places=q.places,
                )
                for q in body.quotas
            ]
        ),  # fmt: skip
        caller=caller,
    )
    return QuotaList(items=[quota_read(q) for q in resp.quotas])


@router.get(
    "/quotas",
    response_model=QuotaList,
    summary="查看资助名额",
    **guard("quota.read", ORG_IN_QUERY),
)
async def list_quotas(
    caller: CurrentUser,
    reconcile: Reconcile,
    org_code: RootOrg = None,
    school_year: Annotated[str | None, Query(pattern=r"^\d{4}-\d{4}$")] = None,
    project_code: Annotated[str | None, Query(max_length=40)] = None,
) -> QuotaList:
    """Quotas of orgs in the area."""
    resp = await reconcile.ListQuotas(
        pb.ListQuotasRequest(
            school_year=school_year or "", org_code=org_code or "", project_code=project_code or ""
        ),
        caller=caller,
    )
    return QuotaList(
        items=[quota_read(q) for q in resp.quotas if caller.keeps(q.org.org_path, "名额")]
    )

"""Reconcile routes for data-verification findings (数据核查) and quotas (名额)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from zizhu_contracts.reconcile.v1 import reconcile_pb2 as pb

from gateway.deps import CurrentUser, Reconcile
from gateway.policy import guard
from gateway.routes.reconcile.base import (
    FINDING_IN_PATH,
    FINDINGS_IN_BODY,
    ORG_IN_QUERY,
    NumericId,
    RootOrg,
    TermQuery,
    router,
)
from gateway.schemas.common import (
    PageSize,
    PageToken,
    page_request,
)
from gateway.schemas.reconcile import (
    FindingStatusName,
    SeverityName,
    finding_status_value,
    period_pb,
    severity_value,
)
from gateway.schemas.reconcile.findings import (
    FindingBatchRead,
    FindingDetailRead,
    FindingPage,
    FindingResolveCreate,
    FindingStatsRead,
    QuotaList,
    QuotaSet,
    finding_detail_read,
    finding_read,
    finding_stats_read,
    quota_read,
)


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

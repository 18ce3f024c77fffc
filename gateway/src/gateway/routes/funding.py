"""Fiscal funds (资金管理): allocations down the hierarchy and their reversal, cost shares, the
fund summary of an org with its execution, execution per period, overspent orgs, and .xlsx
exports. Allocations are always the caller's own org's (各级只录入本级的资金下达)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from zizhu_common.errors import NotFound
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.funding.v1 import funding_pb2
from zizhu_contracts.identity.v1 import identity_pb2

from gateway.deps import Caller, CurrentUser, Funding, Identity
from gateway.policy import governs, guard
from gateway.schemas.common import Level, OrgCode, PageSize, PageToken, level_value, page_request
from gateway.schemas.funding import (
    AllocationBatchRead,
    AllocationCreate,
    AllocationPage,
    AllocationRead,
    AllocationReverseCreate,
    CostShareCreate,
    CostSharePage,
    CostShareRead,
    ExecutionPage,
    FundSummaryRead,
    OverspendingPage,
    SourceName,
    TermName,
    allocation_read,
    cost_share_read,
    execution_row_read,
    fund_summary_read,
    overspending_row_read,
    source_value,
    term_value,
)

router = APIRouter(tags=["资金 funding"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSX_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {XLSX: {}}, "description": ".xlsx 文件"}
}
SHANGHAI = ZoneInfo("Asia/Shanghai")
ORG_IN_QUERY = {"kind": "org", "in": "query", "name": "org_code"}
ALLOCATION_IN_PATH = {"kind": "allocation", "in": "path", "name": "allocation_id"}
LINES_IN_BODY = {"kind": "org", "in": "body", "name": "lines[].to_org_code"}
AllocationId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z_-]+$")]
RootOrg = Annotated[OrgCode | None, Query(description="范围根机构；默认本机构")]
ProjectQuery = Annotated[str | None, Query(max_length=40, description="资助项目代码")]
YearQuery = Annotated[str | None, Query(pattern=r"^\d{4}$", description="财政年度，如 2024")]


def current_fiscal_year() -> str:
    """The calendar year in Asia/Shanghai."""
    return str(datetime.now(SHANGHAI).year)


def xlsx_response(file: common_pb2.FileContent) -> Response:
    """A downloadable workbook."""
    name = quote(file.file_name or "export.xlsx")
    return Response(
        content=file.content,
        media_type=file.content_type or XLSX,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"},
    )


def _allocation_filter(
    org_code: str | None,
    project_code: str | None,
    fiscal_year: str | None,
    from_org_code: str | None,
    to_org_code: str | None,
    sources: list[SourceName] | None,
    document_number: str | None,
    include_reversed: bool,
) -> funding_pb2.ListAllocationsRequest:
    return funding_pb2.ListAllocationsRequest(
        org_code=org_code or "",
        project_code=project_code or "",
        fiscal_year=fiscal_year or "",
        from_org_code=from_org_code or "",
        to_org_code=to_org_code or "",
        sources=[source_value(s) for s in sources or ()],  # type: ignore[misc]
        document_number=document_number or "",
        include_reversed=include_reversed,
    )


@router.post(
    "/funding/allocations",
    response_model=AllocationBatchRead,
    status_code=201,
    summary="录入资金下达（含本级安排）",
    **guard("allocation.enter", LINES_IN_BODY),
)
async def allocate_funds(
    body: AllocationCreate, caller: CurrentUser, funding: Funding, identity: Identity
) -> AllocationBatchRead:
    """Record a document of the caller's org: lines to its direct child regions or directly-run
    schools (下达) and to itself (本级安排). Per source, an org passes down at most what it
    received plus what it contributed; otherwise 409 FUNDS_INSUFFICIENT and nothing is written.
    A line naming an org outside the caller's subtree answers 404 ORG_NOT_FOUND, as for an org
    that does not exist."""
    await _check_lines_in_scope(body, caller, identity)
    resp = await funding.AllocateFunds(
        funding_pb2.AllocateFundsRequest(
            project_code=body.project_code,
            fiscal_year=body.fiscal_year,
            from_org_code=caller.org_code,
            document_number=body.document_number,
            document_date=body.document_date,
            allocated_on=body.allocated_on,
            note=body.note,
            lines=[
                funding_pb2.AllocationLine(
                    to_org_code=line.to_org_code,
                    source=source_value(line.source),  # type: ignore[arg-type]
                    amount_fen=line.amount_fen,
                    note=line.note,
                )
                for line in body.lines
            ],
        ),
        caller=caller,
    )
    return AllocationBatchRead(items=[allocation_read(a) for a in resp.allocations])


async def _check_lines_in_scope(body: AllocationCreate, caller: Caller, identity: Identity) -> None:
    """The gateway's half of the scope rule for the recipients of an allocation document (funding
    checks again): the first line naming an unknown org or one outside the caller's subtree
    answers 404, naming nothing of that org."""
    wanted = sorted({line.to_org_code for line in body.lines} - {caller.org_code})
    paths: dict[str, str] = {}
    if wanted:
        resp = await identity.BatchGetOrgs(
            identity_pb2.BatchGetOrgsRequest(org_codes=wanted), caller=caller
        )
        paths = {o.org_code: o.org_path for o in resp.orgs}
    for i, line in enumerate(body.lines):
        if line.to_org_code != caller.org_code and not caller.in_scope(
            paths.get(line.to_org_code, "")
        ):
            raise NotFound(
                f"第{i + 1}条：接收单位不存在或不在本辖区内",
                code="ORG_NOT_FOUND",
                field=f"lines[{i}].to_org_code",
            )


@router.get(
    "/funding/allocations",
    response_model=AllocationPage,
    summary="查询资金下达",
    **guard("allocation.read", ORG_IN_QUERY),
)
async def list_allocations(
    caller: CurrentUser,
    funding: Funding,
    org_code: RootOrg = None,
    project_code: ProjectQuery = None,
    fiscal_year: YearQuery = None,
    from_org_code: Annotated[OrgCode | None, Query()] = None,
    to_org_code: Annotated[OrgCode | None, Query()] = None,
    sources: Annotated[list[SourceName] | None, Query()] = None,
    document_number: Annotated[str | None, Query(max_length=100)] = None,
    include_reversed: bool = False,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> AllocationPage:
    """Allocations made by or to orgs of the subtree, newest first."""
    req = _allocation_filter(org_code, project_code, fiscal_year, from_org_code, to_org_code,
                             sources, document_number, include_reversed)  # fmt: skip
    req.page.CopyFrom(page_request(page_size, page_token))
    resp = await funding.ListAllocations(req, caller=caller)
    items = [
        allocation_read(a)
        for a in resp.allocations
        if caller.keeps(a.to_org_path, "allocation") or caller.in_scope(a.from_org_path)
    ]
    return AllocationPage(
        items=items,
        next_page_token=resp.page.next_page_token,
        total=resp.page.total,
        total_amount_fen=resp.total_amount_fen,
    )


@router.get(
    "/funding/allocations/export",
    response_class=Response,
    responses=XLSX_RESPONSE,
    summary="导出资金下达（.xlsx）",
    **guard("allocation.export", ORG_IN_QUERY),
)
async def export_allocations(
    caller: CurrentUser,
    funding: Funding,
    org_code: RootOrg = None,
    project_code: ProjectQuery = None,
    fiscal_year: YearQuery = None,
    from_org_code: Annotated[OrgCode | None, Query()] = None,
    to_org_code: Annotated[OrgCode | None, Query()] = None,
    sources: Annotated[list[SourceName] | None, Query()] = None,
    document_number: Annotated[str | None, Query(max_length=100)] = None,
    include_reversed: bool = False,
) -> Response:
    """The allocations of the list, every page, as a workbook (at most 100,000 rows)."""
    req = _allocation_filter(org_code, project_code, fiscal_year, from_org_code, to_org_code,
                             sources, document_number, include_reversed)  # fmt: skip
    resp = await funding.ExportAllocations(
        funding_pb2.ExportAllocationsRequest(filter=req), caller=caller
    )
    return xlsx_response(resp.file)


@router.get(
    "/funding/allocations/{allocation_id}",
    response_model=AllocationRead,
    summary="查看资金下达",
    **guard("allocation.read", ALLOCATION_IN_PATH),
)
async def get_allocation(
    allocation_id: AllocationId, caller: CurrentUser, funding: Funding
) -> AllocationRead:
    """One allocation made by or to an org of the caller's subtree."""
    resp = await funding.GetAllocation(
        funding_pb2.GetAllocationRequest(allocation_id=allocation_id), caller=caller
    )
    a = resp.allocation
    if not caller.in_scope(a.from_org_path):
        caller.ensure_in_scope(a.to_org_path, what="资金下达记录")
    return allocation_read(a)


@router.post(
    "/funding/allocations/{allocation_id}/reverse",
    response_model=AllocationRead,
    summary="冲销资金下达",
    **guard("allocation.enter", ALLOCATION_IN_PATH),
)
async def reverse_allocation(
    allocation_id: AllocationId, body: AllocationReverseCreate, caller: CurrentUser,
    funding: Funding,
) -> AllocationRead:  # fmt: skip
    """Reverse (冲销) an allocation of the caller's own org; the original stays, marked reversed.
    Refused while the recipient has passed the money on (409 ALLOCATION_PASSED_DOWN)."""
    resp = await funding.ReverseAllocation(
        funding_pb2.ReverseAllocationRequest(allocation_id=allocation_id, reason=body.reason),
        caller=caller,
    )
    return allocation_read(resp.allocation)


@router.get(
    "/funding/summary",
    response_model=FundSummaryRead,
    summary="资金执行情况汇总",
    **guard("allocation.read", ORG_IN_QUERY),
)
async def fund_summary(
    caller: CurrentUser,
    funding: Funding,
    org_code: RootOrg = None,
    fiscal_year: YearQuery = None,
    project_code: ProjectQuery = None,
    by_source: Annotated[
        bool, Query(description="按资金来源拆分，并给出分担比例下的应承担额")
    ] = False,
    expand_direct_schools: Annotated[bool, Query(description="直属学校逐校列出")] = False,
) -> FundSummaryRead:
    """Received, own contribution, passed down, funds of the subtree, executed (approved aid),
    balance and execution rate of the org (合计), its directly-run schools, and each child
    region, for a fiscal year (default: the current one)."""
    resp = await funding.FundSummary(
        funding_pb2.FundSummaryRequest(
            fiscal_year=fiscal_year or current_fiscal_year(),
            project_code=project_code or "",
            org_code=org_code or "",
            by_source=by_source,
            expand_direct_schools=expand_direct_schools,
        ),
        caller=caller,
    )
    summary = fund_summary_read(resp)
    summary.items = [r for r in summary.items if not r.org_path or caller.keeps(r.org_path, "row")]
    return summary


@router.get(
    "/funding/summary/export",
    response_class=Response,
    responses=XLSX_RESPONSE,
    summary="导出资金执行情况（.xlsx）",
    **guard("allocation.export", ORG_IN_QUERY),
)
async def export_fund_summary(
    caller: CurrentUser,
    funding: Funding,
    org_code: RootOrg = None,
    fiscal_year: YearQuery = None,
    project_code: ProjectQuery = None,
    expand_direct_schools: bool = False,
) -> Response:
    """The fund summary as a workbook."""
    resp = await funding.ExportFundSummary(
        funding_pb2.ExportFundSummaryRequest(
            summary=funding_pb2.FundSummaryRequest(
                fiscal_year=fiscal_year or current_fiscal_year(),
                project_code=project_code or "",
                org_code=org_code or "",
                expand_direct_schools=expand_direct_schools,
            )
        ),
        caller=caller,
    )
    return xlsx_response(resp.file)


@router.get(
    "/funding/execution",
    response_model=ExecutionPage,
    summary="资金执行明细（按项目、资助周期）",
    **guard("allocation.read", ORG_IN_QUERY),
)
async def list_execution(
    caller: CurrentUser,
    funding: Funding,
    org_code: RootOrg = None,
    project_code: ProjectQuery = None,
    fiscal_year: YearQuery = None,
    school_year: Annotated[str | None, Query(pattern=r"^\d{4}-\d{4}$")] = None,
    term: TermName | None = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> ExecutionPage:
    """Approved aid per project × period of the org (合计) and of each of its children."""
    req = funding_pb2.ListExecutionRequest(
        org_code=org_code or "",
        project_code=project_code or "",
        fiscal_year=fiscal_year or "",
        page=page_request(page_size, page_token),
    )
    if school_year or term:
        req.period.school_year = school_year or ""
        req.period.term = term_value(term) if term else 0  # type: ignore[assignment]
    resp = await funding.ListExecution(req, caller=caller)
    items = [execution_row_read(r) for r in resp.rows if caller.keeps(r.org.org_path, "row")]
    return ExecutionPage(
        items=items, next_page_token=resp.page.next_page_token, total=resp.page.total
    )


@router.get(
    "/funding/overspending",
    response_model=OverspendingPage,
    summary="超支单位（已发放超过资金，数据核查 R12）",
    **guard("allocation.read", ORG_IN_QUERY),
)
async def list_overspending(
    caller: CurrentUser,
    funding: Funding,
    org_code: RootOrg = None,
    fiscal_year: YearQuery = None,
    project_code: ProjectQuery = None,
    levels: Annotated[list[Level] | None, Query()] = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> OverspendingPage:
    """Orgs of the subtree whose approved aid exceeds the funds recorded for them."""
    resp = await funding.ListOverspending(
        funding_pb2.ListOverspendingRequest(
            org_code=org_code or "",
            fiscal_year=fiscal_year or "",
            project_code=project_code or "",
            levels=[level_value(v) for v in levels or ()],  # type: ignore[misc]
            page=page_request(page_size, page_token),
        ),
        caller=caller,
    )
    items = [overspending_row_read(r) for r in resp.rows if caller.keeps(r.org.org_path, "row")]
    return OverspendingPage(
        items=items, next_page_token=resp.page.next_page_token, total=resp.page.total
    )


@router.post(
    "/funding/cost-shares",
    response_model=CostShareRead,
    summary="设置分担比例",
    **guard("cost_share.manage", {"kind": "org", "in": "body", "name": "region_org_code"}),
)
async def set_cost_share(
    body: CostShareCreate, caller: CurrentUser, funding: Funding
) -> CostShareRead:
    """Set or replace the cost share of a project for a region below the caller and a year; the
    parts of the levels above the caller stay as set from above."""
    resp = await funding.SetCostShare(
        funding_pb2.SetCostShareRequest(
            project_code=body.project_code,
            fiscal_year=body.fiscal_year,
            region_org_code=body.region_org_code,
            shares=[
                funding_pb2.ShareLine(source=source_value(s.source), basis_points=s.basis_points)  # type: ignore[arg-type]
                for s in body.shares
            ],
            document_number=body.document_number,
        ),
        caller=caller,
    )
    return cost_share_read(resp.cost_share)


@router.get(
    "/funding/cost-shares",
    response_model=CostSharePage,
    summary="查询分担比例",
    **guard("allocation.read", ORG_IN_QUERY),
)
async def list_cost_shares(
    caller: CurrentUser,
    funding: Funding,
    org_code: RootOrg = None,
    project_code: ProjectQuery = None,
    fiscal_year: YearQuery = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> CostSharePage:
    """Shares governing the org (set for its ancestors or itself) and those set below it."""
    resp = await funding.ListCostShares(
        funding_pb2.ListCostSharesRequest(
            org_code=org_code or "",
            project_code=project_code or "",
            fiscal_year=fiscal_year or "",
            page=page_request(page_size, page_token),
        ),
        caller=caller,
    )
    # The shares governing the org are set for its ancestors (on the caller's own chain); every
    # other share lies inside the caller's subtree.
    items = [
        cost_share_read(s) for s in resp.cost_shares if governs(caller, s.region_org_path, "row")
    ]
    return CostSharePage(
        items=items, next_page_token=resp.page.next_page_token, total=resp.page.total
    )

"""gRPC servicer of the funding service: proto in, service call, proto out (no SQL, no rules)."""

from __future__ import annotations

from typing import Any

from zizhu_common.rpc import current_caller
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.funding.v1 import funding_pb2, funding_pb2_grpc

from funding_service import protomap
from funding_service.domain.model import AllocationInput, AllocationLineInput, ShareLine
from funding_service.protomap import PROTO_TO_LEVEL
from funding_service.service import FundingServices
from funding_service.xlsx import XLSX_TYPE

SERVICE_NAME = funding_pb2.DESCRIPTOR.services_by_name["FundingService"].full_name


def _allocation_filters(req: funding_pb2.ListAllocationsRequest) -> dict[str, Any]:
    return {
        "project_code": req.project_code.strip(),
        "fiscal_year": req.fiscal_year.strip(),
        "from_org_code": req.from_org_code.strip(),
        "to_org_code": req.to_org_code.strip(),
        "sources": tuple(sorted({int(s) for s in req.sources})),
        "document_number": req.document_number.strip(),
        "include_reversed": req.include_reversed,
    }


def _summary_args(req: funding_pb2.FundSummaryRequest) -> dict[str, Any]:
    return {
        "fiscal_year": req.fiscal_year,
        "project_code": req.project_code,
        "org_code": req.org_code,
        "by_source": req.by_source,
        "expand_direct_schools": req.expand_direct_schools,
    }


class FundingServicer(funding_pb2_grpc.FundingServiceServicer):
    """Serves zizhu_contracts.funding.v1.FundingService."""

    def __init__(self, services: FundingServices) -> None:
        self.services = services

    async def AllocateFunds(self, request: Any, context: Any) -> funding_pb2.AllocateFundsResponse:
        req = AllocationInput(
            project_code=request.project_code,
            fiscal_year=request.fiscal_year,
            from_org_code=request.from_org_code,
            document_number=request.document_number,
            document_date=request.document_date,
            allocated_on=request.allocated_on,
            note=request.note,
            lines=tuple(
                AllocationLineInput(line.to_org_code, int(line.source), line.amount_fen, line.note)
                for line in request.lines
            ),
        )
        made = await self.services.allocations.allocate(current_caller(), req)
        return funding_pb2.AllocateFundsResponse(allocations=[protomap.allocation(a) for a in made])

    async def ReverseAllocation(
        self, request: Any, context: Any
    ) -> funding_pb2.ReverseAllocationResponse:
        a = await self.services.allocations.reverse(
            current_caller(), request.allocation_id, request.reason
        )
        return funding_pb2.ReverseAllocationResponse(allocation=protomap.allocation(a))

    async def GetAllocation(self, request: Any, context: Any) -> funding_pb2.GetAllocationResponse:
        a = await self.services.allocations.get(current_caller(), request.allocation_id)
        return funding_pb2.GetAllocationResponse(allocation=protomap.allocation(a))

    async def ListAllocations(
        self, request: Any, context: Any
    ) -> funding_pb2.ListAllocationsResponse:
        page = await self.services.allocations.list_page(
            current_caller(),
            org_code=request.org_code,
            filters=_allocation_filters(request),
            page_size=request.page.page_size,
            page_token=request.page.page_token,
        )
        return funding_pb2.ListAllocationsResponse(
            allocations=[protomap.allocation(a) for a in page.allocations],
            page=common_pb2.PageResponse(next_page_token=page.next_page_token, total=page.total),
            total_amount_fen=page.total_amount_fen,
        )

    async def ExportAllocations(
        self, request: Any, context: Any
    ) -> funding_pb2.ExportAllocationsResponse:
        content, count = await self.services.allocations.export(
            current_caller(),
            org_code=request.filter.org_code,
            filters=_allocation_filters(request.filter),
        )
        year = request.filter.fiscal_year or "全部年度"
        return funding_pb2.ExportAllocationsResponse(
            file=common_pb2.FileContent(
                file_name=f"资金下达_{year}.xlsx", content_type=XLSX_TYPE, content=content
            ),
            row_count=count,
        )

    async def SetCostShare(self, request: Any, context: Any) -> funding_pb2.SetCostShareResponse:
        share = await self.services.cost_shares.set(
            current_caller(),
            project_code=request.project_code,
            fiscal_year=request.fiscal_year,
            region_org_code=request.region_org_code,
            shares=[ShareLine(int(s.source), s.basis_points) for s in request.shares],  # type: ignore[arg-type]
            document_number=request.document_number,
        )
        return funding_pb2.SetCostShareResponse(cost_share=protomap.cost_share(share))

    async def ListCostShares(
        self, request: Any, context: Any
    ) -> funding_pb2.ListCostSharesResponse:
        page = await self.services.cost_shares.list_page(
            current_caller(),
            project_code=request.project_code,
            fiscal_year=request.fiscal_year,
            org_code=request.org_code,
            page_size=request.page.page_size,
            page_token=request.page.page_token,
        )
        return funding_pb2.ListCostSharesResponse(
            cost_shares=[protomap.cost_share(s) for s in page.shares],
            page=common_pb2.PageResponse(next_page_token=page.next_page_token, total=page.total),
        )

    async def FundSummary(self, request: Any, context: Any) -> funding_pb2.FundSummaryResponse:
        s = await self.services.summary.summary(current_caller(), **_summary_args(request))
        resp = funding_pb2.FundSummaryResponse(
            rows=[protomap.summary_row(r, by_source=request.by_source) for r in s.rows],
            fiscal_year=s.fiscal_year,
            project_code=s.project_code,
        )
        resp.as_of.FromDatetime(s.as_of)
        return resp

    async def ExportFundSummary(
        self, request: Any, context: Any
    ) -> funding_pb2.ExportFundSummaryResponse:
        content, name = await self.services.summary.export_summary(
            current_caller(), **_summary_args(request.summary)
        )
        return funding_pb2.ExportFundSummaryResponse(
            file=common_pb2.FileContent(file_name=name, content_type=XLSX_TYPE, content=content)
        )

    async def ListExecution(self, request: Any, context: Any) -> funding_pb2.ListExecutionResponse:
        page = await self.services.summary.execution(
            current_caller(),
            org_code=request.org_code,
            project_code=request.project_code,
            fiscal_year=request.fiscal_year,
            school_year=request.period.school_year,
            term=int(request.period.term),
            page_size=request.page.page_size,
            page_token=request.page.page_token,
        )
        return funding_pb2.ListExecutionResponse(
            rows=[
                funding_pb2.ExecutionRow(
                    kind=protomap.ROW_KIND_TO_PROTO[r.kind],  # type: ignore[arg-type]
                    org=protomap.org_ref(r.org),
                    project_code=r.project_code,
                    project_name=r.project_name,
                    period=common_pb2.AidPeriod(
                        school_year=r.period.school_year,
                        term=int(r.period.term),  # type: ignore[arg-type]
                    ),
                    fiscal_year=r.fiscal_year,
                    executed_fen=r.executed_fen,
                    record_count=r.record_count,
                )
                for r in page.rows
            ],
            page=common_pb2.PageResponse(next_page_token=page.next_page_token, total=page.total),
        )

    async def ListOverspending(
        self, request: Any, context: Any
    ) -> funding_pb2.ListOverspendingResponse:
        levels = sorted({PROTO_TO_LEVEL[lv].value for lv in request.levels if lv in PROTO_TO_LEVEL})
        page = await self.services.summary.overspending(
            current_caller(),
            org_code=request.org_code,
            fiscal_year=request.fiscal_year,
            project_code=request.project_code,
            levels=levels,
            page_size=request.page.page_size,
            page_token=request.page.page_token,
        )
        rows = []
        for r in page.rows:
            row = funding_pb2.OverspendingRow(
                org=protomap.org_ref(r.org),
                project_code=r.project_code,
                project_name=r.project_name,
                fiscal_year=r.fiscal_year,
                funds_fen=r.funds_fen,
                executed_fen=r.executed_fen,
                excess_fen=r.executed_fen - r.funds_fen,
            )
            protomap.stamp(row.since, r.since)
            rows.append(row)
        return funding_pb2.ListOverspendingResponse(
            rows=rows,
            page=common_pb2.PageResponse(next_page_token=page.next_page_token, total=page.total),
        )

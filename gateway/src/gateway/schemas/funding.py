"""Fiscal funds (资金管理): allocations, cost shares, fund summaries, execution, overspending."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.funding.v1 import funding_pb2

from gateway.schemas.common import (
    OrgCode,
    OrgRef,
    Schema,
    enum_name,
    enum_value,
    level_name,
    org_ref,
    ts,
)

SourceName = Literal["central", "province", "city", "county", "school", "social"]
AllocationKindName = Literal["transfer", "contribution"]
AllocationStatusName = Literal["active", "reversed"]
RowKindName = Literal["total", "direct_schools", "child_region", "school"]
TermName = Literal["autumn", "spring"]

FiscalYear = Annotated[str, Field(pattern=r"^\d{4}$", examples=["2024"], description="财政年度")]
ProjectCode = Annotated[str, Field(min_length=1, max_length=40, examples=["GJ-PG-ZXJ"])]
DateText = Annotated[
    str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$", examples=["2024-03-15"], description="YYYY-MM-DD")
]
AmountFen = Annotated[int, Field(gt=0, le=10**14, description="金额（分）")]


def source_name(value: int) -> str:
    """FundSource value → `central` …"""
    return enum_name(funding_pb2.FundSource, value, "FUND_SOURCE_")


def source_value(name: str) -> int:
    """`central` … → FundSource value."""
    return enum_value(funding_pb2.FundSource, name, "FUND_SOURCE_")


def term_value(name: str) -> int:
    """`autumn` / `spring` → Term value."""
    return enum_value(common_pb2.Term, name, "TERM_")


class AllocationLineCreate(Schema):
    """One line: to a direct child region or directly-run school (下达), or to the caller's own
    org for its own contribution (本级安排: source = its own level, or social)."""

    to_org_code: OrgCode
    source: SourceName
    amount_fen: AmountFen
    note: Annotated[str, Field(max_length=200)] = ""


class AllocationCreate(Schema):
    """An allocation document (下达文件) of the caller's own org; all lines or none."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "project_code": "GJ-PG-ZXJ",
                    "fiscal_year": "2024",
                    "document_number": "粤财教〔2024〕20号",
                    "document_date": "2024-03-15",
                    "lines": [
                        {"to_org_code": "440000", "source": "province", "amount_fen": 100000},
                        {"to_org_code": "440100", "source": "central", "amount_fen": 500000},
                    ],
                }
            ]
        },
    )

    project_code: ProjectCode
    fiscal_year: FiscalYear
    document_number: Annotated[str, Field(min_length=1, max_length=100, description="文号")]
    document_date: DateText
    allocated_on: Annotated[str, Field(pattern=r"^(\d{4}-\d{2}-\d{2})?$")] = ""
    note: Annotated[str, Field(max_length=500)] = ""
    lines: Annotated[list[AllocationLineCreate], Field(min_length=1, max_length=1000)]


class AllocationReverseCreate(Schema):
    """Reverse (冲销) an allocation, with the reason."""

    reason: Annotated[str, Field(min_length=1, max_length=500, examples=["金额录入错误"])]


class AllocationRead(BaseModel):
    """One line of the ledger."""

    allocation_id: str
    kind: str
    project_code: str
    project_name: str
    fiscal_year: str
    from_org_code: str
    from_org_name: str
    from_org_level: str
    from_org_path: str
    to_org_code: str
    to_org_name: str
    to_org_level: str
    to_org_path: str
    # The recipient's path: what the scope rule looks at in lists.
    org_path: str
    source: str
    amount_fen: int
    document_number: str
    document_date: str
    allocated_on: str
    note: str
    status: str
    reversal_reason: str
    reversed_by: str
    reversed_at: datetime | None
    entered_by: str
    entered_at: datetime | None


class AllocationBatchRead(BaseModel):
    """The lines of one recorded document, in request order."""

    items: list[AllocationRead]


class AllocationPage(BaseModel):
    """A page of allocations; total_amount_fen sums every matching active one (all pages)."""

    items: list[AllocationRead]
    next_page_token: str
    total: int
    total_amount_fen: int


def allocation_read(a: funding_pb2.Allocation) -> AllocationRead:
    """Proto Allocation → schema."""
    return AllocationRead(
        allocation_id=a.allocation_id,
        kind=enum_name(funding_pb2.AllocationKind, a.kind, "ALLOCATION_KIND_"),
        project_code=a.project_code,
        project_name=a.project_name,
        fiscal_year=a.fiscal_year,
        from_org_code=a.from_org_code,
        from_org_name=a.from_org_name,
        from_org_level=level_name(a.from_org_level),
        from_org_path=a.from_org_path,
        to_org_code=a.to_org_code,
        to_org_name=a.to_org_name,
        to_org_level=level_name(a.to_org_level),
        to_org_path=a.to_org_path,
        org_path=a.to_org_path,
        source=source_name(a.source),
        amount_fen=a.amount_fen,
        document_number=a.document_number,
        document_date=a.document_date,
        allocated_on=a.allocated_on,
        note=a.note,
        status=enum_name(funding_pb2.AllocationStatus, a.status, "ALLOCATION_STATUS_"),
        reversal_reason=a.reversal_reason,
        reversed_by=a.reversed_by,
        reversed_at=ts(a.reversed_at, a.HasField("reversed_at")),
        entered_by=a.entered_by,
        entered_at=ts(a.entered_at, a.HasField("entered_at")),
    )


class SourceAmountRead(BaseModel):
    """An amount of one fund source."""

    source: str
    amount_fen: int


def _amounts(values: list[funding_pb2.SourceAmount]) -> list[SourceAmountRead]:
    return [SourceAmountRead(source=source_name(v.source), amount_fen=v.amount_fen) for v in values]


class FundSummaryRowRead(BaseModel):
    """One row: the org (none for the directly-run schools subtotal) and its figures."""

    kind: str
    org: OrgRef | None
    org_path: str
    received_fen: int
    own_contribution_fen: int
    allocated_down_fen: int
    retained_fen: int
    funds_fen: int
    school_funds_fen: int
    executed_fen: int
    executed_count: int
    balance_fen: int
    execution_rate_bp: int
    overspent: bool
    received_by_source: list[SourceAmountRead]
    funds_by_source: list[SourceAmountRead]
    expected_by_source: list[SourceAmountRead]


class FundSummaryRead(BaseModel):
    """An org's fund summary: total, its directly-run schools, then each child region."""

    fiscal_year: str
    project_code: str
    as_of: datetime | None
    items: list[FundSummaryRowRead]


def fund_summary_read(resp: funding_pb2.FundSummaryResponse) -> FundSummaryRead:
    """Proto FundSummaryResponse → schema."""
    rows = []
    for r in resp.rows:
        org = org_ref(r.org) if r.HasField("org") else None
        rows.append(
            FundSummaryRowRead(
                kind=enum_name(common_pb2.StatsRowKind, r.kind, "STATS_ROW_KIND_"),
                org=org,
                org_path=org.org_path if org else "",
                received_fen=r.received_fen,
                own_contribution_fen=r.own_contribution_fen,
                allocated_down_fen=r.allocated_down_fen,
                retained_fen=r.retained_fen,
                funds_fen=r.funds_fen,
                school_funds_fen=r.school_funds_fen,
                executed_fen=r.executed_fen,
                executed_count=r.executed_count,
                balance_fen=r.balance_fen,
                execution_rate_bp=r.execution_rate_bp,
                overspent=r.overspent,
                received_by_source=_amounts(list(r.received_by_source)),
                funds_by_source=_amounts(list(r.funds_by_source)),
                expected_by_source=_amounts(list(r.expected_by_source)),
            )
        )
    return FundSummaryRead(
        fiscal_year=resp.fiscal_year,
        project_code=resp.project_code,
        as_of=ts(resp.as_of, resp.HasField("as_of")),
        items=rows,
    )


class ExecutionRowRead(BaseModel):
    """Approved aid of an org's subtree for one project and period."""

    kind: str
    org: OrgRef
    org_path: str
    project_code: str
    project_name: str
    school_year: str
    term: str
    fiscal_year: str
    executed_fen: int
    record_count: int


class ExecutionPage(BaseModel):
    """A page of execution rows (the org first, then each child)."""

    items: list[ExecutionRowRead]
    next_page_token: str
    total: int


def execution_row_read(r: funding_pb2.ExecutionRow) -> ExecutionRowRead:
    """Proto ExecutionRow → schema."""
    return ExecutionRowRead(
        kind=enum_name(common_pb2.StatsRowKind, r.kind, "STATS_ROW_KIND_"),
        org=org_ref(r.org),
        org_path=r.org.org_path,
        project_code=r.project_code,
        project_name=r.project_name,
        school_year=r.period.school_year,
        term=enum_name(common_pb2.Term, r.period.term, "TERM_"),
        fiscal_year=r.fiscal_year,
        executed_fen=r.executed_fen,
        record_count=r.record_count,
    )


class OverspendingRowRead(BaseModel):
    """An org whose approved aid exceeds the funds recorded for its subtree (数据核查 R12)."""

    org: OrgRef
    org_path: str
    project_code: str
    project_name: str
    fiscal_year: str
    funds_fen: int
    executed_fen: int
    excess_fen: int
    since: datetime | None


class OverspendingPage(BaseModel):
    """A page of overspent orgs."""

    items: list[OverspendingRowRead]
    next_page_token: str
    total: int


def overspending_row_read(r: funding_pb2.OverspendingRow) -> OverspendingRowRead:
    """Proto OverspendingRow → schema."""
    return OverspendingRowRead(
        org=org_ref(r.org),
        org_path=r.org.org_path,
        project_code=r.project_code,
        project_name=r.project_name,
        fiscal_year=r.fiscal_year,
        funds_fen=r.funds_fen,
        executed_fen=r.executed_fen,
        excess_fen=r.excess_fen,
        since=ts(r.since, r.HasField("since")),
    )


class ShareLineCreate(Schema):
    """One source's part in basis points (10000 = 100 %)."""

    source: SourceName
    basis_points: Annotated[int, Field(ge=0, le=10_000)]


class CostShareCreate(Schema):
    """The cost sharing (分担比例) of a project for a region below the caller and a year."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "project_code": "GJ-PG-ZXJ",
                    "fiscal_year": "2024",
                    "region_org_code": "440100",
                    "shares": [
                        {"source": "central", "basis_points": 3000},
                        {"source": "province", "basis_points": 7000},
                    ],
                }
            ]
        },
    )

    project_code: ProjectCode
    fiscal_year: FiscalYear
    region_org_code: OrgCode
    shares: Annotated[list[ShareLineCreate], Field(min_length=1, max_length=6)]
    document_number: Annotated[str, Field(max_length=100)] = ""


class CostShareRead(BaseModel):
    """A region's cost share."""

    project_code: str
    fiscal_year: str
    region_org_code: str
    org_path: str
    shares: list[ShareLineCreate]
    document_number: str
    set_by: str
    set_at: datetime | None


class CostSharePage(BaseModel):
    """Cost shares of the org's ancestors, the org and regions below it."""

    items: list[CostShareRead]
    next_page_token: str
    total: int


def cost_share_read(s: funding_pb2.CostShare) -> CostShareRead:
    """Proto CostShare → schema."""
    return CostShareRead(
        project_code=s.project_code,
        fiscal_year=s.fiscal_year,
        region_org_code=s.region_org_code,
        org_path=s.region_org_path,
        shares=[
            ShareLineCreate(source=source_name(x.source), basis_points=x.basis_points)  # type: ignore[arg-type]
            for x in s.shares
        ],
        document_number=s.document_number,
        set_by=s.set_by,
        set_at=ts(s.set_at, s.HasField("set_at")),
    )

"""Domain objects ↔ protobuf messages of zizhu_contracts.funding.v1."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.funding.v1 import funding_pb2

from funding_service.domain.model import (
    Allocation,
    AllocationKind,
    AllocationStatus,
    CostShare,
    Figures,
    FundSource,
    Level,
    OrgNode,
)
from funding_service.domain.summary import CHILD_REGION, DIRECT_SCHOOLS, SCHOOL, TOTAL, SummaryRow

LEVEL_TO_PROTO = {
    Level.NATIONAL: common_pb2.ORG_LEVEL_NATIONAL,
    Level.PROVINCE: common_pb2.ORG_LEVEL_PROVINCE,
    Level.CITY: common_pb2.ORG_LEVEL_CITY,
    Level.COUNTY: common_pb2.ORG_LEVEL_COUNTY,
    Level.SCHOOL: common_pb2.ORG_LEVEL_SCHOOL,
}
PROTO_TO_LEVEL = {v: k for k, v in LEVEL_TO_PROTO.items()}
KIND_TO_PROTO = {
    AllocationKind.TRANSFER: funding_pb2.ALLOCATION_KIND_TRANSFER,
    AllocationKind.CONTRIBUTION: funding_pb2.ALLOCATION_KIND_CONTRIBUTION,
}
STATUS_TO_PROTO = {
    AllocationStatus.ACTIVE: funding_pb2.ALLOCATION_STATUS_ACTIVE,
    AllocationStatus.REVERSED: funding_pb2.ALLOCATION_STATUS_REVERSED,
}
ROW_KIND_TO_PROTO = {
    TOTAL: common_pb2.STATS_ROW_KIND_TOTAL,
    DIRECT_SCHOOLS: common_pb2.STATS_ROW_KIND_DIRECT_SCHOOLS,
    CHILD_REGION: common_pb2.STATS_ROW_KIND_CHILD_REGION,
    SCHOOL: common_pb2.STATS_ROW_KIND_SCHOOL,
}


def level_to_proto(level: Level | None) -> common_pb2.OrgLevel.ValueType:
    """OrgLevel of a level (UNSPECIFIED when unknown)."""
    if level is None:
        return common_pb2.ORG_LEVEL_UNSPECIFIED
    return LEVEL_TO_PROTO.get(level, common_pb2.ORG_LEVEL_UNSPECIFIED)


def stamp(target: object, moment: datetime | None) -> None:
    """Set a Timestamp field from an aware datetime (left unset for None)."""
    if moment is not None:
        target.FromDatetime(moment)  # type: ignore[attr-defined]


def org_ref(org: OrgNode) -> common_pb2.OrgRef:
    """An OrgRef for display."""
    return common_pb2.OrgRef(
        org_code=org.code, name=org.name, level=level_to_proto(org.level), org_path=org.path
    )


def allocation(a: Allocation) -> funding_pb2.Allocation:
    """An Allocation message."""
    msg = funding_pb2.Allocation(
        allocation_id=a.allocation_id,
        project_code=a.project_code,
        project_name=a.project_name,
        fiscal_year=a.fiscal_year,
        from_org_code=a.from_org.code,
        from_org_path=a.from_org.path,
        from_org_name=a.from_org.name,
        from_org_level=level_to_proto(a.from_org.level),
        to_org_code=a.to_org.code,
        to_org_name=a.to_org.name,
        to_org_path=a.to_org.path,
        to_org_level=level_to_proto(a.to_org.level),
        source=int(a.source),  # type: ignore[arg-type]
        amount_fen=a.amount_fen,
        document_number=a.document_number,
        document_date=a.document_date,
        allocated_on=a.allocated_on,
        note=a.note,
        status=STATUS_TO_PROTO[a.status],
        reversal_reason=a.reversal_reason,
        reversed_by=a.reversed_by,
        entered_by=a.entered_by,
        kind=KIND_TO_PROTO[a.kind],
    )
    stamp(msg.reversed_at, a.reversed_at)
    stamp(msg.entered_at, a.entered_at)
    return msg


def cost_share(s: CostShare) -> funding_pb2.CostShare:
    """A CostShare message."""
    msg = funding_pb2.CostShare(
        project_code=s.project_code,
        fiscal_year=s.fiscal_year,
        region_org_code=s.region.code,
        region_org_path=s.region.path,
        shares=[
            funding_pb2.ShareLine(source=int(line.source), basis_points=line.basis_points)  # type: ignore[arg-type]
            for line in s.shares
        ],
        document_number=s.document_number,
        set_by=s.set_by,
    )
    stamp(msg.set_at, s.set_at)
    return msg


def _amounts(values: Mapping[FundSource, int]) -> list[funding_pb2.SourceAmount]:
    return [
        funding_pb2.SourceAmount(source=int(src), amount_fen=v)  # type: ignore[arg-type]
        for src, v in sorted(values.items())
    ]


def summary_row(row: SummaryRow, *, by_source: bool) -> funding_pb2.FundSummaryRow:
    """A FundSummaryRow message."""
    f: Figures = row.figures
    msg = funding_pb2.FundSummaryRow(
        kind=ROW_KIND_TO_PROTO[row.kind],  # type: ignore[arg-type]
        received_fen=f.received_fen,
        allocated_down_fen=f.allocated_down_fen,
        school_funds_fen=f.school_funds_fen,
        executed_fen=f.executed_fen,
        balance_fen=f.balance_fen,
        overspent=f.overspent,
        own_contribution_fen=f.own_contribution_fen,
        funds_fen=f.funds_fen,
        retained_fen=f.retained_fen,
        execution_rate_bp=f.execution_rate_bp,
        executed_count=f.executed_count,
    )
    if row.org is not None:
        msg.org.CopyFrom(org_ref(row.org))
    if by_source:
        msg.received_by_source.extend(_amounts(f.received_by_source))
        msg.funds_by_source.extend(_amounts(f.funds_by_source))
        msg.expected_by_source.extend(_amounts(f.expected_by_source))
    return msg

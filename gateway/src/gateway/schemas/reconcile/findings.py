"""Reconcile schemas for data-verification findings (数据核查) and their statistics, and quotas (名额)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.reconcile.v1 import reconcile_pb2 as pb

from gateway.schemas.common import (
    OrgCode,
    OrgRef,
    Schema,
    org_ref,
    ts,
)
from gateway.schemas.reconcile import (
    FindingId,
    PeriodRead,
    ResolutionName,
    SchoolYear,
    _name,
    period_read,
)


class FindingRead(BaseModel):
    """A data-verification finding (数据核查疑似问题)."""

    finding_id: str
    rule_code: str
    rule_name: str
    severity: str
    status: str
    period: PeriodRead | None
    org_code: str
    org_name: str
    org_path: str
    student_id: str
    student_name: str
    id_number_masked: str
    project_code: str
    record_ids: list[str]
    summary: str
    facts: dict[str, str]
    run_id: str
    found_at: datetime | None
    last_seen_at: datetime | None
    resolution_note: str
    resolved_by: str
    resolved_at: datetime | None


def finding_read(f: pb.Finding) -> FindingRead:
    """Proto Finding → schema."""
    return FindingRead(
        finding_id=f.finding_id,
        rule_code=f.rule_code,
        rule_name=f.rule_name,
        severity=_name(pb.FindingSeverity, f.severity, "FINDING_SEVERITY_"),
        status=_name(pb.FindingStatus, f.status, "FINDING_STATUS_"),
        period=period_read(f.period) if f.HasField("period") else None,
        org_code=f.org_code,
        org_name=f.org_name,
        org_path=f.org_path,
        student_id=f.student_id,
        student_name=f.student_name,
        id_number_masked=f.id_number_masked,
        project_code=f.project_code,
        record_ids=list(f.record_ids),
        summary=f.summary,
        facts=dict(f.facts),
        run_id=f.run_id,
        found_at=ts(f.found_at, f.HasField("found_at")),
        last_seen_at=ts(f.last_seen_at, f.HasField("last_seen_at")),
        resolution_note=f.resolution_note,
        resolved_by=f.resolved_by,
        resolved_at=ts(f.resolved_at, f.HasField("resolved_at")),
    )


class FindingActionRead(BaseModel):
    """One audited step of a finding."""

    from_status: str
    to_status: str
    note: str
    actor: str
    actor_org_code: str
    at: datetime | None
    run_id: str


class FindingDetailRead(BaseModel):
    """A finding with its history."""

    finding: FindingRead
    actions: list[FindingActionRead]


def finding_detail_read(resp: pb.GetFindingResponse) -> FindingDetailRead:
    """Proto GetFindingResponse → schema."""
    return FindingDetailRead(
        finding=finding_read(resp.finding),
        actions=[
            FindingActionRead(
                from_status=_name(pb.FindingStatus, a.from_status, "FINDING_STATUS_"),
                to_status=_name(pb.FindingStatus, a.to_status, "FINDING_STATUS_"),
                note=a.note,
                actor=a.actor,
                actor_org_code=a.actor_org_code,
                at=ts(a.at, a.HasField("at")),
                run_id=a.run_id,
            )  # fmt: skip
            for a in resp.actions
        ],
    )


class FindingPage(BaseModel):
    """A page of findings."""

    items: list[FindingRead]
    next_page_token: str
    total: int


class FindingResolveCreate(Schema):
    """Confirm, mark fixed or dismiss findings with an audited note."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"finding_ids": ["1"], "resolution": "confirmed", "note": "已核实"}]
        },
    )

    finding_ids: Annotated[list[FindingId], Field(min_length=1, max_length=1000)]
    resolution: ResolutionName
    note: Annotated[str, Field(min_length=1, max_length=500)]


class FindingBatchRead(BaseModel):
    """Findings after a resolution."""

    items: list[FindingRead]


class RuleCountRead(BaseModel):
    """Findings of one rule by status."""

    rule_code: str
    rule_name: str
    severity: str
    open: int
    confirmed: int
    fixed: int
    dismissed: int


class FindingStatsRowRead(BaseModel):
    """One row of the findings view."""

    kind: str
    org: OrgRef
    rules: list[RuleCountRead]


class FindingStatsRead(BaseModel):
    """Findings by child region × rule."""

    rows: list[FindingStatsRowRead]


def finding_stats_read(resp: pb.FindingStatsResponse) -> FindingStatsRead:
    """Proto FindingStatsResponse → schema."""
    return FindingStatsRead(
        rows=[
            FindingStatsRowRead(
                kind=_name(common_pb2.StatsRowKind, r.kind, "STATS_ROW_KIND_"),
                org=org_ref(r.org),
                rules=[
                    RuleCountRead(
                        rule_code=c.rule_code,
                        rule_name=c.rule_name,
                        severity=_name(pb.FindingSeverity, c.severity, "FINDING_SEVERITY_"),
                        open=c.open,
                        confirmed=c.confirmed,
                        fixed=c.fixed,
                        dismissed=c.dismissed,
                    )  # fmt: skip
                    for c in r.rules
                ],
            )
            for r in resp.rows
        ]
    )


class QuotaCreate(Schema):
    """Places (名额) of a project in a school year for an org of the caller's area (0 removes)."""

    project_code: Annotated[str, Field(min_length=1, max_length=40, examples=["GJ-PG-ZXJ"])]
    school_year: SchoolYear
    org_code: OrgCode
    places: Annotated[int, Field(ge=0, le=10**8)]


class QuotaSet(Schema):
    """Quotas to set (all or nothing)."""

    quotas: Annotated[list[QuotaCreate], Field(min_length=1, max_length=1000)]


class QuotaRead(BaseModel):
    """A quota."""

    project_code: str
    school_year: str
    org: OrgRef
    places: int
    set_by: str
    set_at: datetime | None


class QuotaList(BaseModel):
    """Quotas of an area."""

    items: list[QuotaRead]


def quota_read(q: pb.Quota) -> QuotaRead:
    """Proto Quota → schema."""
    return QuotaRead(
        project_code=q.project_code,
        school_year=q.school_year,
        org=org_ref(q.org),
        places=q.places,
        set_by=q.set_by,
        set_at=ts(q.set_at, q.HasField("set_at")),
    )

"""Reconcile schemas for the unfunded list (未资助名单): entries, reason reports and the reason
dictionary."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.reconcile.v1 import reconcile_pb2 as pb

from gateway.schemas.common import (
    Schema,
    level_name,
    ts,
)
from gateway.schemas.reconcile import (
    GROUP_LABELS,
    EntryId,
    Note,
    PeriodRead,
    ReasonCodeText,
    _name,
    group_name,
    period_read,
)


class GroupRead(BaseModel):
    """A special group the student is in, and where the listing came from."""

    group: str
    label: str
    source: str


class ReasonRead(BaseModel):
    """A reason reported at one level."""

    level: str
    org_code: str
    org_name: str
    reason_code: str
    reason_label: str
    note: str
    reported_by: str
    reported_at: datetime | None
    carried_over: bool


def reason_read(r: pb.ReasonReport) -> ReasonRead:
    """Proto ReasonReport → schema."""
    return ReasonRead(
        level=level_name(r.level),
        org_code=r.org_code,
        org_name=r.org_name,
        reason_code=r.reason_code,
        reason_label=r.reason_label,
        note=r.note,
        reported_by=r.reported_by,
        reported_at=ts(r.reported_at, r.HasField("reported_at")),
        carried_over=r.carried_over,
    )


class UnfundedRead(BaseModel):
    """One student on the unfunded list with the 13 group flags and every level's reason."""

    entry_id: str
    period: PeriodRead | None
    student_id: str
    student_name: str
    id_number_masked: str
    school_org_code: str
    school_name: str
    school_org_path: str
    stage: str
    grade: str
    class_name: str
    groups: list[GroupRead]
    status: str
    first_found_at: datetime | None
    reopened_at: datetime | None
    closed_at: datetime | None
    last_run_id: str
    reason_deadline_on: str
    school_reason: ReasonRead | None
    authority_reasons: list[ReasonRead]


class UnfundedPage(BaseModel):
    """A page of the unfunded list, and when the last comparison ran."""

    items: list[UnfundedRead]
    next_page_token: str
    total: int
    as_of: datetime | None


def unfunded_read(e: pb.UnfundedEntry) -> UnfundedRead:
    """Proto UnfundedEntry → schema."""
    return UnfundedRead(
        entry_id=e.entry_id,
        period=period_read(e.period) if e.HasField("period") else None,
        student_id=e.student_id,
        student_name=e.student_name,
        id_number_masked=e.id_number_masked,
        school_org_code=e.school_org_code,
        school_name=e.school_name,
        school_org_path=e.school_org_path,
        stage=_name(common_pb2.Stage, e.stage, "STAGE_"),
        grade=e.grade,
        class_name=e.class_name,
        groups=[
            GroupRead(
                group=group_name(g.group),
                label=GROUP_LABELS.get(g.group, ""),
                source=_name(common_pb2.MembershipSource, g.source, "MEMBERSHIP_SOURCE_"),
            )
            for g in e.groups
        ],
        status=_name(pb.UnfundedStatus, e.status, "UNFUNDED_STATUS_"),
        first_found_at=ts(e.first_found_at, e.HasField("first_found_at")),
        reopened_at=ts(e.reopened_at, e.HasField("reopened_at")),
        closed_at=ts(e.closed_at, e.HasField("closed_at")),
        last_run_id=e.last_run_id,
        reason_deadline_on=e.reason_deadline_on,
        school_reason=reason_read(e.school_reason) if e.HasField("school_reason") else None,
        authority_reasons=[reason_read(r) for r in e.authority_reasons],
    )


class ReasonReportCreate(Schema):
    """One reason for several entries (学校填报未资助原因, or an authority's own level)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"entry_ids": ["1"], "reason_code": "02", "note": ""}]},
    )

    entry_ids: Annotated[list[EntryId], Field(min_length=1, max_length=1000)]
    reason_code: ReasonCodeText
    note: Note = ""


class UnfundedBatchRead(BaseModel):
    """Entries after a report."""

    items: list[UnfundedRead]


# --- reason dictionary --------------------------------------------------------------------------------


class ReasonCodeRead(BaseModel):
    """A code of the reason dictionary (未资助原因)."""

    code: str
    label: str
    description: str
    requires_note: bool
    enabled: bool
    sort_order: int


class ReasonCodeUpdate(Schema):
    """A code to add or replace (codes are disabled, never deleted)."""

    code: ReasonCodeText
    label: Annotated[str, Field(min_length=1, max_length=60)]
    description: Annotated[str, Field(max_length=200)] = ""
    requires_note: bool = False
    enabled: bool = True
    sort_order: int = 0


class ReasonDictionaryUpdate(Schema):
    """Edits of the dictionary (national level)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"reasons": [{"code": "12", "label": "已享受国家助学贷款", "sort_order": 12}]}
            ]
        },
    )

    reasons: Annotated[list[ReasonCodeUpdate], Field(min_length=1, max_length=100)]
    expected_version: Annotated[int, Field(ge=0, description="0 = 不校验版本")] = 0


class ReasonDictionaryRead(BaseModel):
    """The dictionary and its version."""

    items: list[ReasonCodeRead]
    version: int


def dictionary_read(reasons: list[pb.ReasonCode], version: int) -> ReasonDictionaryRead:
    """Proto reason codes → schema."""
    return ReasonDictionaryRead(
        items=[
            ReasonCodeRead(
                code=r.code,
                label=r.label,
                description=r.description,
                requires_note=r.requires_note,
                enabled=r.enabled,
                sort_order=r.sort_order,
            )
            for r in reasons
        ],  # fmt: skip
        version=version,
    )

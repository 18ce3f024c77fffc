"""Roster schemas for the 13 special groups: issue batches and their rows and changes, memberships,
verification, self-collection, progress and default levels."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.roster.v1 import roster_pb2

from gateway.schemas.common import (
    IdTypeName,
    OrgCode,
    OrgRef,
    RowErrorRead,
    Schema,
)
from gateway.schemas.roster import (
    ActionName,
    DateText,
    GroupName,
    IdText,
    LevelName,
    ModeName,
    read,
)

_BATCH_STATUS = (roster_pb2.IssueBatchStatus, "ISSUE_BATCH_STATUS_")
_MEMBERSHIP_STATUS = (roster_pb2.MembershipStatus, "MEMBERSHIP_STATUS_")
# --- special groups ------------------------------------------------------------------------------


class BatchCreate(Schema):
    """Open an issue batch (中央/省级下发) of one or more groups."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"title": "2024年秋季低保学生名单", "source_system": "民政部", "groups": ["dibao"],
                 "mode": "full", "as_of_date": "2024-09-15"}
            ]
        },
    )  # fmt: skip

    issuing_org_code: OrgCode | None = None
    title: Annotated[str, Field(min_length=1, max_length=200)]
    source_system: Annotated[str, Field(max_length=100)] = ""
    groups: Annotated[list[GroupName], Field(min_length=1, max_length=13)]
    mode: ModeName
    as_of_date: DateText = ""
    school_year: Annotated[str, Field(pattern=r"^(\d{4}-\d{4})?$")] = ""


class IssuedRowCreate(Schema):
    """One issued row: ID number, name, group (and for delta batches, add or remove)."""

    id_type: IdTypeName = "resident_id"
    id_number: Annotated[str, Field(min_length=1, max_length=40)]
    name: Annotated[str, Field(min_length=1, max_length=50)]
    group: GroupName
    action: ActionName | None = None
    household_region_code: Annotated[str, Field(max_length=6)] = ""
    valid_from: DateText = ""
    valid_to: DateText = ""


class IssuedRowsCreate(Schema):
    """A chunk of rows (at most 5000); resending a chunk number replaces it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"chunk_number": 1, "rows": [{"id_number": "11010519491231002X", "name": "张三",
                                              "group": "dibao"}]}
            ]
        },
    )  # fmt: skip

    chunk_number: Annotated[int, Field(ge=1, le=100_000)]
    rows: Annotated[list[IssuedRowCreate], Field(min_length=1, max_length=5000)]


class IssuedRowsRead(BaseModel):
    """Rows refused at once, and the batch's row count so far."""

    errors: list[RowErrorRead]
    row_count: int


class BatchCommitCreate(Schema):
    """Close a batch: the number of chunks sent."""

    chunk_count: Annotated[int, Field(ge=1, le=100_000)]


class BatchCancelCreate(Schema):
    """Abandon a batch."""

    reason: Annotated[str, Field(max_length=500)] = ""


class BatchRead(BaseModel):
    """An issue batch with its matching counts."""

    batch_id: str
    issuing_org_code: str
    issuing_org_path: str
    title: str
    source_system: str
    groups: list[str]
    mode: str
    school_year: str
    as_of_date: str
    status: str
    row_count: int
    matched_count: int
    not_found_count: int
    not_enrolled_count: int
    ambiguous_count: int
    invalid_count: int
    memberships_added: int
    memberships_ended: int
    previous_batch_id: str
    added_count: int
    removed_count: int
    changed_count: int
    chunk_count: int
    error_message: str
    created_by: str
    created_at: datetime | None
    committed_at: datetime | None


def batch_read(msg: roster_pb2.IssueBatch) -> BatchRead:
    """IssueBatch → schema."""
    return read(BatchRead, msg, status=_BATCH_STATUS)  # type: ignore[no-any-return]


class BatchPage(BaseModel):
    """A page of batches."""

    items: list[BatchRead]
    next_page_token: str
    total: int


class IssuedRowRead(BaseModel):
    """One issued row with its match and verification."""

    issued_row_id: str
    batch_id: str
    row_number: int
    group: str
    action: str
    name: str
    id_number_masked: str
    household_region_code: str
    match_status: str
    match_note: str
    student_id: str
    school_org_code: str
    school_name: str
    school_org_path: str
    stage: str
    membership_id: str
    verification_status: str


class IssuedRowPage(BaseModel):
    """A page of issued rows."""

    items: list[IssuedRowRead]
    next_page_token: str
    total: int


class IssueChangeRead(BaseModel):
    """A student added, removed or changed against the previous batch."""

    kind: str
    group: str
    name: str
    id_number_masked: str
    issued_row_id: str
    previous_issued_row_id: str
    changed_fields: list[str]
    student_id: str
    school_org_code: str


class IssueChangePage(BaseModel):
    """A page of changes."""

    items: list[IssueChangeRead]
    previous_batch_id: str
    next_page_token: str
    total: int


class MembershipRead(BaseModel):
    """A special-group membership."""

    membership_id: str
    student_id: str
    student_name: str
    id_number_masked: str
    school_org_code: str
    school_name: str
    school_org_path: str
    stage: str
    group: str
    source: str
    school_year: str
    batch_id: str
    issued_row_id: str
    valid_from: str
    valid_to: str
    status: str
    verification_status: str
    verification_note: str
    verified_by: str
    verified_at: datetime | None
    evidence_note: str
    end_reason: str
    ended_at: datetime | None
    created_by: str
    created_at: datetime | None
    version: int


def membership_read(msg: roster_pb2.Membership) -> MembershipRead:
    """Membership → schema."""
    return read(MembershipRead, msg, status=_MEMBERSHIP_STATUS)  # type: ignore[no-any-return]


class MembershipPage(BaseModel):
    """A page of memberships."""

    items: list[MembershipRead]
    next_page_token: str
    total: int


class MembershipBatchRead(BaseModel):
    """Memberships changed by one request."""

    items: list[MembershipRead]


class VerifyCreate(Schema):
    """Confirm or dispute issued memberships of the caller's school (a note when disputing)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"membership_ids": ["1"], "result": "confirmed"}]},
    )

    membership_ids: Annotated[list[IdText], Field(min_length=1, max_length=1000)]
    result: Literal["confirmed", "rejected"]
    note: Annotated[str, Field(max_length=500)] = ""


class SelfCollectedCreate(Schema):
    """A member the lists missed, collected by the school with its evidence (自采集)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"student_id": "S0", "group": "orphan", "evidence_note": "民政部门孤儿证明"}
            ]
        },
    )

    student_id: IdText = ""
    id_type: IdTypeName = "resident_id"
    id_number: IdText = ""
    group: GroupName
    school_year: Annotated[str, Field(pattern=r"^(\d{4}-\d{4})?$")] = ""
    valid_from: DateText = ""
    valid_to: DateText = ""
    evidence_note: Annotated[str, Field(min_length=1, max_length=1000)]


class MembershipEndCreate(Schema):
    """End a membership (the student left the group)."""

    reason: Annotated[str, Field(min_length=1, max_length=500, examples=["家庭收入已超过低保线"])]
    ended_on: DateText = ""


class ProgressRowRead(BaseModel):
    """Verification progress of one org (合计, a child region, or a school)."""

    kind: str
    org: OrgRef | None
    issued_count: int
    pending_count: int
    confirmed_count: int
    rejected_count: int
    self_collected_count: int
    ended_count: int


def progress_read(msg: roster_pb2.VerificationProgressRow) -> ProgressRowRead:
    """VerificationProgressRow → schema."""
    return read(  # type: ignore[no-any-return]
        ProgressRowRead, msg, kind=(common_pb2.StatsRowKind, "STATS_ROW_KIND_")
    )


class ProgressRead(BaseModel):
    """The total first, then one row per child region or school."""

    items: list[ProgressRowRead]


class DefaultLevelItem(Schema):
    """One group's default level."""

    group: GroupName
    level: LevelName


class DefaultLevelsUpdate(Schema):
    """Replace the default-level table of a province (or the national one)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"defaults": [{"group": "dibao", "level": "difficult"}]}]},
    )

    org_code: OrgCode | None = None
    defaults: Annotated[list[DefaultLevelItem], Field(max_length=13)]


class DefaultLevelRead(BaseModel):
    """One group's default level."""

    group: str
    level: str


class DefaultLevelsRead(BaseModel):
    """The table that applies and where it comes from."""

    source_org_code: str
    defaults: list[DefaultLevelRead]
    updated_by: str = ""
    updated_at: datetime | None = None

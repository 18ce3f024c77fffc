"""Aid (资助): projects, periods, time windows, records and their audit, template import, stats.

This module holds the shared enum names and mapping helpers, and the periods, import and statistics
models: their OpenAPI component names (`gateway__schemas__aid__PeriodRead`, `…__ImportRead`,
`…__StatsRead`, `…__StatsRowRead`) are derived from this module's name. Projects, time windows and
records are in `projects`, `windows` and `records`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from zizhu_contracts.aid.v1 import aid_pb2
from zizhu_contracts.common.v1 import common_pb2

from gateway.schemas.common import (
    OrgRef,
    RowErrorRead,
    Schema,
    enum_name,
    enum_value,
    org_ref,
    row_error,
    ts,
)

OwnerTypeName = Literal["national", "local_government", "school", "social"]
CategoryName = Literal["need_based", "merit", "fee_waiver", "loan", "work_study", "other"]
TermName = Literal["autumn", "spring"]
PhaseName = Literal["entry", "school_audit", "authority_audit"]
RecordStatusName = Literal[
    "draft", "pending_school_audit", "pending_authority_audit", "returned", "approved", "revoked"
]
DecisionName = Literal["approve", "return"]
HardshipName = Literal["special", "difficult", "general", "not_difficult"]
ExclusionScopeName = Literal["school_year", "term"]
ProjectStatusName = Literal["active", "disabled"]
PeriodStatusName = Literal["open", "closed"]
DimensionName = Literal["org", "project", "stage", "category"]
AuthorityLevelName = Literal["national", "province", "city", "county"]
IdTypeName = Literal[
    "resident_id",
    "hk_macao_residence_permit",
    "taiwan_residence_permit",
    "foreigner_permanent_residence",
    "passport",
    "other",
]

ProjectCode = Annotated[
    str,
    Field(min_length=2, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]+$",
          examples=["GJ-PG-ZXJ"], description="项目代码"),
]  # fmt: skip
SchoolYear = Annotated[
    str, Field(pattern=r"^\d{4}-\d{4}$", examples=["2026-2027"], description="学年 YYYY-YYYY")
]
AmountFen = Annotated[int, Field(ge=0, le=10**9, description="金额（分）")]
Reason = Annotated[str, Field(min_length=1, max_length=500)]
RecordId = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z_-]+$")]


def _name(enum: Any, prefix: str, value: int) -> str:
    return enum_name(enum, value, prefix)


def owner_type_value(name: str) -> int:
    """`national` … → ProjectOwnerType value."""
    return enum_value(aid_pb2.ProjectOwnerType, name, "PROJECT_OWNER_TYPE_")


def category_value(name: str) -> int:
    """`need_based` … → AidCategory value."""
    return enum_value(common_pb2.AidCategory, name, "AID_CATEGORY_")


def term_value(name: str) -> int:
    """`autumn` / `spring` → Term value."""
    return enum_value(common_pb2.Term, name, "TERM_")


def phase_value(name: str) -> int:
    """`entry` … → WindowPhase value."""
    return enum_value(aid_pb2.WindowPhase, name, "WINDOW_PHASE_")


def status_value(name: str) -> int:
    """`draft` … → RecordStatus value."""
    return enum_value(aid_pb2.RecordStatus, name, "RECORD_STATUS_")


def decision_value(name: str) -> int:
    """`approve` / `return` → AuditDecision value."""
    return enum_value(aid_pb2.AuditDecision, name, "AUDIT_DECISION_")


def hardship_value(name: str) -> int:
    """`special` … → HardshipLevel value."""
    return enum_value(common_pb2.HardshipLevel, name, "HARDSHIP_LEVEL_")


def period_msg(school_year: str, term: str) -> common_pb2.AidPeriod:
    """The proto period."""
    return common_pb2.AidPeriod(school_year=school_year, term=term_value(term))  # type: ignore[arg-type]


class PeriodRef(BaseModel):
    """An aid period: school year + term (资助周期)."""

    school_year: str
    term: str


def period_ref(p: common_pb2.AidPeriod) -> PeriodRef:
    """Proto period → schema."""
    return PeriodRef(school_year=p.school_year, term=_name(common_pb2.Term, "TERM_", p.term))


# --- periods -------------------------------------------------------------------------------------


class PeriodCreate(Schema):
    """Open an aid period (the nation); dates default to the term's (第十七条 deadlines)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"school_year": "2026-2027", "term": "spring"}]},
    )
    school_year: SchoolYear
    term: TermName
    starts_on: Annotated[str, Field(pattern=r"^(\d{4}-\d{2}-\d{2})?$")] = ""
    ends_on: Annotated[str, Field(pattern=r"^(\d{4}-\d{2}-\d{2})?$")] = ""
    deadline_on: Annotated[str, Field(pattern=r"^(\d{4}-\d{2}-\d{2})?$")] = ""


class PeriodClose(Schema):
    """Close an aid period (the nation): no more entry or audit."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"school_year": "2025-2026", "term": "spring"}]},
    )
    school_year: SchoolYear
    term: TermName


class PeriodRead(BaseModel):
    """An aid period with its dates."""

    period: PeriodRef
    status: str
    starts_on: str
    ends_on: str
    deadline_on: str
    opened_at: datetime | None
    closed_at: datetime | None


class PeriodPage(BaseModel):
    """Periods, newest first."""

    items: list[PeriodRead]
    next_page_token: str
    total: int


def period_read(p: aid_pb2.Period) -> PeriodRead:
    """Proto period → schema."""
    return PeriodRead(
        period=period_ref(p.period),
        status=_name(aid_pb2.PeriodStatus, "PERIOD_STATUS_", p.status),
        starts_on=p.starts_on,
        ends_on=p.ends_on,
        deadline_on=p.deadline_on,
        opened_at=ts(p.opened_at),
        closed_at=ts(p.closed_at),
    )


# --- imports -------------------------------------------------------------------------------------


class ImportCommit(Schema):
    """Commit a staged (dry-run) import by its id; all rows or none."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"project_code": "GJ-YW-FJSSBZ-XX", "school_year": "2026-2027", "term": "autumn"}
            ]
        },
    )
    project_code: ProjectCode
    school_year: SchoolYear
    term: TermName
    submit: bool = False


class ImportRead(BaseModel):
    """An import's outcome: counts, the first 1000 row errors (row, column, value, reason)."""

    import_id: str
    file_name: str
    total_rows: int
    valid_rows: int
    error_rows: int
    dry_run: bool
    committed: bool
    created_count: int
    errors: list[RowErrorRead]
    errors_truncated: bool
    expires_at: datetime | None


def import_read(s: common_pb2.ImportSummary) -> ImportRead:
    """Proto import summary → schema."""
    return ImportRead(
        import_id=s.import_id,
        file_name=s.file_name,
        total_rows=s.total_rows,
        valid_rows=s.valid_rows,
        error_rows=s.error_rows,
        dry_run=s.dry_run,
        committed=s.committed,
        created_count=s.created_count,
        errors=[row_error(e) for e in s.errors],
        errors_truncated=s.errors_truncated,
        expires_at=ts(s.expires_at),
    )


# --- statistics ----------------------------------------------------------------------------------


class StatsRowRead(BaseModel):
    """Counts and amounts (分) by status for one row: total, direct schools, a region or school."""

    kind: str
    org: OrgRef
    project_code: str
    project_name: str
    stage: str
    category: str
    record_count: int
    approved_student_count: int
    draft_count: int
    pending_count: int
    returned_count: int
    approved_count: int
    revoked_count: int
    approved_amount_fen: int
    unapproved_amount_fen: int


class StatsRead(BaseModel):
    """Statistics rows and when they were computed."""

    rows: list[StatsRowRead]
    as_of: datetime | None


def stats_read(resp: aid_pb2.StatsResponse) -> StatsRead:
    """Proto stats → schema."""
    return StatsRead(
        rows=[
            StatsRowRead(
                kind=_name(common_pb2.StatsRowKind, "STATS_ROW_KIND_", r.kind),
                org=org_ref(r.org),
                project_code=r.project_code,
                project_name=r.project_name,
                stage=_name(common_pb2.Stage, "STAGE_", r.stage),
                category=_name(common_pb2.AidCategory, "AID_CATEGORY_", r.category),
                record_count=r.record_count,
                approved_student_count=r.approved_student_count,
                draft_count=r.draft_count,
                pending_count=r.pending_count,
                returned_count=r.returned_count,
                approved_count=r.approved_count,
                revoked_count=r.revoked_count,
                approved_amount_fen=r.approved_amount_fen,
                unapproved_amount_fen=r.unapproved_amount_fen,
            )
            for r in resp.rows
        ],
        as_of=ts(resp.as_of),
    )

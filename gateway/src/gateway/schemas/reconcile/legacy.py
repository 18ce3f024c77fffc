"""Reconcile schemas for the retired 建档立卡 report history: reads and imports."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field
from zizhu_contracts.reconcile.v1 import reconcile_pb2 as pb

from gateway.schemas.common import (
    OrgCode,
    RowErrorRead,
    Schema,
    row_error,
    ts,
)
from gateway.schemas.reconcile import (
    Note,
    PeriodIn,
    PeriodRead,
    period_read,
)


class LegacyReportRead(BaseModel):
    """A report of the retired 脱贫家庭学生（原建档立卡）未资助情况 (read-only history)."""

    legacy_id: str
    period: PeriodRead | None
    project_code: str
    project_name: str
    student_id: str
    student_name: str
    id_number_masked: str
    school_org_code: str
    school_name: str
    legacy_reason: str
    reason_code: str
    note: str
    reported_by: str
    reported_at: datetime | None
    carried_over: bool


class LegacyReportPage(BaseModel):
    """A page of the history."""

    items: list[LegacyReportRead]
    next_page_token: str
    total: int


def legacy_read(r: pb.LegacyReport) -> LegacyReportRead:
    """Proto LegacyReport → schema."""
    return LegacyReportRead(
        legacy_id=r.legacy_id,
        period=period_read(r.period) if r.HasField("period") else None,
        project_code=r.project_code,
        project_name=r.project_name,
        student_id=r.student_id,
        student_name=r.student_name,
        id_number_masked=r.id_number_masked,
        school_org_code=r.school_org_code,
        school_name=r.school_name,
        legacy_reason=r.legacy_reason,
        reason_code=r.reason_code,
        note=r.note,
        reported_by=r.reported_by,
        reported_at=ts(r.reported_at, r.HasField("reported_at")),
        carried_over=r.carried_over,
    )


class LegacyRowCreate(Schema):
    """One row of the old report to load."""

    period: PeriodIn
    project_code: Annotated[str, Field(min_length=1, max_length=40)]
    project_name: Annotated[str, Field(max_length=100)] = ""
    id_type: Literal["resident_id", "hk_macao_residence_permit", "taiwan_residence_permit",
                     "foreigner_permanent_residence", "passport", "other"] = "resident_id"  # fmt: skip
    id_number: Annotated[str, Field(min_length=1, max_length=40)]
    student_name: Annotated[str, Field(min_length=1, max_length=50)]
    school_org_code: OrgCode
    legacy_reason: Annotated[str, Field(max_length=500)] = ""
    reason_code: Annotated[str, Field(max_length=2)] = ""
    note: Note = ""
    reported_by: Annotated[str, Field(max_length=50)] = ""
    reported_at: datetime | None = None


class LegacyImportCreate(Schema):
    """Rows of the old report (at most 5000 per call; all or nothing)."""

    rows: Annotated[list[LegacyRowCreate], Field(min_length=1, max_length=5000)]
    dry_run: bool = False


class LegacyImportRead(BaseModel):
    """Outcome: rows loaded, or every refused row (then nothing was written)."""

    imported_count: int
    dry_run: bool
    errors: list[RowErrorRead]


def legacy_import_read(resp: pb.ImportLegacyReportsResponse) -> LegacyImportRead:
    """Proto ImportLegacyReportsResponse → schema."""
    return LegacyImportRead(
        imported_count=resp.imported_count,
        dry_run=resp.dry_run,
        errors=[row_error(e) for e in resp.errors],
    )

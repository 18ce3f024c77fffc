"""Aid schemas for time windows (填报时间窗口): setting, extensions and the effective window."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from zizhu_contracts.aid.v1 import aid_pb2

from gateway.schemas.aid import (
    PeriodRef,
    PhaseName,
    ProjectCode,
    Reason,
    SchoolYear,
    TermName,
    _name,
    period_ref,
)
from gateway.schemas.common import (
    OrgCode,
    Schema,
    ts,
)


class WindowSet(Schema):
    """Create or replace the window of project × period × phase, for the project's scope or a
    region in it (an authority above the region narrows within its own window)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "project_code": "GJ-PG-ZXJ",
                    "school_year": "2026-2027",
                    "term": "autumn",
                    "phase": "entry",
                    "org_code": "440106",
                    "starts_at": "2026-09-01T00:00:00+08:00",
                    "ends_at": "2027-01-26T00:00:00+08:00",
                }
            ]
        },
    )
    project_code: ProjectCode
    school_year: SchoolYear
    term: TermName
    phase: PhaseName
    org_code: OrgCode | None = None
    starts_at: datetime
    ends_at: datetime


class ExtensionCreate(Schema):
    """Reopen a phase for a school or region until a date (延期、补录), from an authority above."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "project_code": "GJ-PG-ZXJ",
                    "school_year": "2026-2027",
                    "term": "autumn",
                    "phase": "entry",
                    "org_code": "3444010601",
                    "ends_at": "2027-02-11T00:00:00+08:00",
                    "reason": "学籍转入后补录",
                }
            ]
        },
    )
    project_code: ProjectCode
    school_year: SchoolYear
    term: TermName
    phase: PhaseName
    org_code: OrgCode
    ends_at: datetime
    reason: Reason


class WindowRead(BaseModel):
    """A time window (填报时间); is_default when none was set (第十七条)."""

    window_id: str
    project_code: str
    period: PeriodRef
    phase: str
    org_code: str
    org_path: str
    starts_at: datetime | None
    ends_at: datetime | None
    extension: bool
    reason: str
    set_by: str
    set_at: datetime | None
    open_now: bool
    is_default: bool


class WindowPage(BaseModel):
    """A page of windows."""

    items: list[WindowRead]
    next_page_token: str
    total: int


class EffectiveWindowRead(BaseModel):
    """The window governing one phase (pages show its start and end in red)."""

    phase: str
    project_code: str
    open_now: bool
    window: WindowRead | None


def window_read(w: aid_pb2.Window) -> WindowRead:
    """Proto window → schema."""
    return WindowRead(
        window_id=w.window_id,
        project_code=w.project_code,
        period=period_ref(w.period),
        phase=_name(aid_pb2.WindowPhase, "WINDOW_PHASE_", w.phase),
        org_code=w.org_code,
        org_path=w.org_path,
        starts_at=ts(w.starts_at),
        ends_at=ts(w.ends_at),
        extension=w.extension,
        reason=w.reason,
        set_by=w.set_by,
        set_at=ts(w.set_at),
        open_now=w.open_now,
        is_default=w.is_default,
    )


def effective_read(e: aid_pb2.EffectiveWindow) -> EffectiveWindowRead:
    """Proto effective window → schema."""
    return EffectiveWindowRead(
        phase=_name(aid_pb2.WindowPhase, "WINDOW_PHASE_", e.phase),
        project_code=e.window.project_code,
        open_now=e.open_now,
        window=window_read(e.window) if e.HasField("window") else None,
    )

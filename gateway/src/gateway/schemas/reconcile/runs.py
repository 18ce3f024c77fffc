"""Reconcile schemas for comparison runs (比对任务): starting, reading and listing them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from zizhu_contracts.reconcile.v1 import reconcile_pb2 as pb

from gateway.schemas.common import (
    OrgCode,
    Schema,
    ts,
)
from gateway.schemas.reconcile import (
    PeriodIn,
    PeriodRead,
    _name,
    period_read,
)


class RunCreate(Schema):
    """Start a comparison now over the caller's area (or a region inside it)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"periods": [], "include_verification": True}]},
    )

    periods: Annotated[
        list[PeriodIn], Field(max_length=10, description="空 = 所有进行中的资助周期")
    ] = []
    org_code: Annotated[OrgCode | None, Field(description="比对范围；默认本机构")] = None
    include_verification: Annotated[bool, Field(description="同时运行数据核查规则")] = False


class RunPeriodRead(BaseModel):
    """Counts of one period of a run."""

    period: PeriodRead
    students_checked: int
    students_funded: int
    unfunded_opened: int
    unfunded_closed: int
    unfunded_reopened: int
    unfunded_open: int
    findings_raised: int
    findings_cleared: int
    duration_ms: int


class RunRead(BaseModel):
    """A comparison run (数据比对): periods, scope, status, times and counts."""

    run_id: str
    trigger: str
    status: str
    periods: list[PeriodRead]
    org_code: str
    include_verification: bool
    triggered_by: str
    schedule_slot: str
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int
    students_checked: int
    students_funded: int
    unfunded_opened: int
    unfunded_closed: int
    unfunded_reopened: int
    unfunded_open: int
    findings_raised: int
    findings_cleared: int
    error_message: str
    period_counts: list[RunPeriodRead]
    already_running: bool = False


class RunPage(BaseModel):
    """Runs, newest first."""

    items: list[RunRead]
    next_page_token: str
    total: int


def run_read(r: pb.Run, *, already_running: bool = False) -> RunRead:
    """Proto Run → schema."""
    return RunRead(
        run_id=r.run_id,
        trigger=_name(pb.RunTrigger, r.trigger, "RUN_TRIGGER_"),
        status=_name(pb.RunStatus, r.status, "RUN_STATUS_"),
        periods=[period_read(p) for p in r.periods],
        org_code=r.org_code,
        include_verification=r.include_verification,
        triggered_by=r.triggered_by,
        schedule_slot=r.schedule_slot,
        started_at=ts(r.started_at, r.HasField("started_at")),
        finished_at=ts(r.finished_at, r.HasField("finished_at")),
        duration_ms=r.duration_ms,
        students_checked=r.students_checked,
        students_funded=r.students_funded,
        unfunded_opened=r.unfunded_opened,
        unfunded_closed=r.unfunded_closed,
        unfunded_reopened=r.unfunded_reopened,
        unfunded_open=r.unfunded_open,
        findings_raised=r.findings_raised,
        findings_cleared=r.findings_cleared,
        error_message=r.error_message,
        period_counts=[
            RunPeriodRead(
                period=period_read(c.period),
                students_checked=c.students_checked,
                students_funded=c.students_funded,
                unfunded_opened=c.unfunded_opened,
                unfunded_closed=c.unfunded_closed,
                unfunded_reopened=c.unfunded_reopened,
                unfunded_open=c.unfunded_open,
                findings_raised=c.findings_raised,
                findings_cleared=c.findings_cleared,
                duration_ms=c.duration_ms,
            )
            for c in r.period_counts
        ],
        already_running=already_running,
    )

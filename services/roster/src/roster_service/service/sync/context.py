"""The state of one sync call or file import across its chunks, the write plan of a chunk, and
the small helpers the row applier shares (row errors, school checks, change records)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from google.protobuf.message import Message
from zizhu_common.rpc import CallerContext

from roster_service.domain.common import STAGE_NAMES, RowError, Stage
from roster_service.domain.students import COLUMNS, StoredEnrollment, StudentRow
from roster_service.repository.orgs import OrgRef

_ENROLL_KEYS = (
    "student_number",
    "grade",
    "class_name",
    "major_name",
    "status",
    "status_date",
    "enrolled_on",
    "left_on",
    "boarder",
)


@dataclass
class SyncContext:
    """State of one sync call or file import across its chunks."""

    caller: CallerContext
    source_system: str
    batch_id: str
    today: date
    now: datetime
    write: bool = True
    schools: dict[str, OrgRef | None] = field(default_factory=dict)
    seen_keys: set[int] = field(default_factory=set)
    seen_numbers: set[str] = field(default_factory=set)
    # (school code, stage) → why its rows are refused (None: accepted), decided once per call.
    school_checks: dict[tuple[str, int], tuple[str, str, str, str] | None] = field(
        default_factory=dict
    )
    # ctx.now as new rows carry it (the driver's value on SQLite, see driver_value).
    stamp: Any = None
    # Per school code: its Enrollment fields of StudentRegistered payloads (events.school_part).
    school_parts: dict[str, bytes] = field(default_factory=dict)
    # A chunk's plan waiting to be written, and the write in flight (SQLite, new rows only).
    pending: _Plan | None = None
    writing: asyncio.Future[None] | None = None
    created: int = 0
    updated: int = 0
    unchanged: int = 0


def _error(row: StudentRow, key: str, value: str, code: str, message: str) -> RowError:
    return RowError(row.row, COLUMNS[key], value, code, message)


_UNCHECKED: Any = object()


def _school_problem(ctx: SyncContext, code: str, stage: Stage) -> tuple[str, str, str, str] | None:
    """Why rows of a school and stage are refused (column, value, code, message), or None."""
    school = ctx.schools.get(code)
    if school is None or not ctx.caller.in_scope(school.org_path):
        return (
            "school_org_code",
            code,
            "SCHOOL_NOT_FOUND",
            "学校标识码不存在或不在本单位管辖范围内",
        )
    if not school.is_school:
        return ("school_org_code", code, "NOT_A_SCHOOL", "该代码不是学校")
    if not school.active:
        return ("school_org_code", code, "SCHOOL_RETIRED", "该学校已撤销")
    if school.stages and int(stage) not in school.stages:
        return ("stage", STAGE_NAMES[stage], "STAGE_NOT_SERVED", "该学校不招收此学段的学生")
    return None


def _enrollment_dict(e: StoredEnrollment) -> dict[str, Any]:
    return {
        "enrollment_id": e.enrollment_id,
        "student_id": e.student_id,
        "school_org_code": e.school_org_code,
        "school_org_path": e.school_org_path,
        "stage": e.stage,
        **{k: getattr(e, k) for k in _ENROLL_KEYS},
        "is_current": e.is_current,
        "version": e.version,
    }


def _change(
    student_id: str,
    enrollment_id: str | None,
    kind: str,
    changes: dict[str, tuple[str, str]],
    school_code: str,
    ctx: SyncContext,
) -> dict[str, Any]:
    return {
        "student_id": student_id,
        "enrollment_id": enrollment_id,
        "kind": kind,
        "changed_fields": sorted(changes),
        "before": {k: v[0] for k, v in changes.items()},
        "after": {k: v[1] for k, v in changes.items()},
        "school_org_code": school_code,
        "source_system": ctx.source_system,
        "batch_id": ctx.batch_id,
        "actor_account_id": ctx.caller.account_id,
        "occurred_at": ctx.now,
    }


async def _execute_all(driver: Any, statements: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
    for sql, params in statements:
        await driver.executemany(sql, params)


@dataclass
class _Plan:
    # New rows as tuples in STUDENT_COLUMNS / ENROLLMENT_COLUMNS order.
    new_students: list[tuple[Any, ...]] = field(default_factory=list)
    new_enrollments: list[tuple[Any, ...]] = field(default_factory=list)
    student_updates: list[dict[str, Any]] = field(default_factory=list)
    id_updates: list[dict[str, Any]] = field(default_factory=list)
    enrollment_updates: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[str, Message]] = field(default_factory=list)
    # New students' StudentRegistered events as pre-serialised parts (RegisteredEvents.rows_of).
    registered: list[tuple[str, str, bytes, bytes, bytes]] = field(default_factory=list)
    # SQLite statements of a plan written in the background (new rows only).
    statements: list[tuple[str, list[tuple[Any, ...]]]] = field(default_factory=list)

    def update_enrollment(self, values: dict[str, Any], now: datetime) -> None:
        row = {k: values[k] for k in ("enrollment_id", "school_org_path", *_ENROLL_KEYS)}
        row["is_current"] = values["is_current"]
        row["version"] = values["version"]
        row["updated_at"] = now
        self.enrollment_updates.append(row)

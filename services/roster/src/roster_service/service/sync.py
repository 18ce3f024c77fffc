"""Applying validated 学籍 rows: new students, changed person facts, enrolment changes and
transfers, with history records and events — in bulk, inside the caller's transaction."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.rpc import CallerContext
from zizhu_contracts.roster.v1 import events_pb2, roster_pb2

from roster_service import tables as t
from roster_service.domain.common import (
    K12_STAGES,
    ON_ROLL,
    STAGE_NAMES,
    RowError,
    Stage,
    new_id,
)
from roster_service.domain.students import (
    COLUMNS,
    RowOutcome,
    StoredEnrollment,
    StoredPerson,
    StudentRow,
    departure_for,
    enrollment_changes,
    lookup_number,
    person_changes,
    stored_number,
)
from roster_service.events import (
    OUTBOX_COLUMNS,
    STUDENT_ENROLLMENT_CHANGED,
    STUDENT_REGISTERED,
    STUDENT_UPDATED,
    RegisteredEvents,
    add_events,
    enrollment_message,
    meta,
    outbox_rows,
    school_part,
)
from roster_service.repository.orgs import OrgRef
from roster_service.repository.sql import bulk_insert_tuples, driver_value, sqlite_insert
from roster_service.repository.students import ENROLLMENT_COLUMNS, STUDENT_COLUMNS
from roster_service.service.context import Deps
from roster_service.service.prepare import Prepared

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


class RowApplier:
    """Applies one chunk of validated rows (the service owns the transaction)."""

    def __init__(self, deps: Deps) -> None:
        self.d = deps

    async def apply(
        self, session: AsyncSession, ctx: SyncContext, items: list[Prepared]
    ) -> list[RowOutcome]:
        """Outcome per prepared row, in order; writes only when ctx.write."""
        d = self.d
        outcomes: list[RowOutcome] = []
        ok: list[tuple[StudentRow, RowOutcome]] = []
        prepared: dict[int, Prepared] = {}
        missing = {
            i.row.school_org_code
            for i in items
            if i.row is not None and i.row.school_org_code not in ctx.schools
        }
        if missing:
            found = await d.orgs.by_codes(session, missing)
            for code in missing:
                ctx.schools[code] = found.get(code)
        for p in items:
            item = p.row
            if item is None:
                outcomes.append(RowOutcome(row=p.number, errors=p.errors))
                continue
            prepared[item.row] = p
            out = RowOutcome(row=item.row)
            outcomes.append(out)
            key = (item.school_org_code, item.stage)
            problem = ctx.school_checks.get(key, _UNCHECKED)
            if problem is _UNCHECKED:
                problem = ctx.school_checks[key] = _school_problem(
                    ctx, item.school_org_code, item.stage
                )
            if problem is not None:
                out.errors.append(_error(item, *problem))
            if not out.errors:
                ok.append((item, out))

        # Rows repeated within the upload.
        bis: dict[int, str] = {}
        for row, out in ok:
            bi = prepared[row.row].bi
            if bi:
                bis[row.row] = bi
                key = int(bi[:15], 16)
                if key in ctx.seen_keys:
                    out.errors.append(
                        _error(
                            row,
                            "id_number",
                            row.id_number_masked,
                            "DUPLICATE_IN_BATCH",
                            "同一批数据中证件号码重复",
                        )
                    )
                ctx.seen_keys.add(key)
            if row.stage in K12_STAGES and lookup_number(row.student_number):
                if row.student_number in ctx.seen_numbers:
                    out.errors.append(
                        _error(
                            row,
                            "student_number",
                            row.student_number,
                            "DUPLICATE_IN_BATCH",
                            "同一批数据中学籍号重复",
                        )
                    )
                ctx.seen_numbers.add(row.student_number)
        ok = [(r, o) for r, o in ok if not o.errors]
        if not ok:
            return outcomes

        persons = await d.students.persons_by_bi(session, bis.values())
        numbers = [
            r.student_number
            for r, _ in ok
            if r.stage in K12_STAGES and lookup_number(r.student_number)
        ]
        by_number = await d.students.students_by_k12_number(session, numbers) if numbers else {}
        by_id = {p.student_id: p for p in persons.values()}
        extra = {sid for sid in by_number.values() if sid not in by_id}
        if extra:
            by_id.update(await d.students.persons_by_id(session, extra))

        matched: list[tuple[StudentRow, RowOutcome, StoredPerson | None]] = []
        for row, out in ok:
            bi = bis.get(row.row, "")
            person = persons.get(bi) if bi else None
            owner = by_number.get(row.student_number) if lookup_number(row.student_number) else None
            if person is None and owner is not None:
                candidate = by_id[owner]
                if candidate.has_id_number and (not bi or candidate.id_number_bi != bi):
                    out.errors.append(
                        _error(
                            row,
                            "student_number",
                            row.student_number,
                            "STUDENT_NUMBER_TAKEN",
                            "学籍号已属于另一名学生（证件号码不同）",
                        )
                    )
                    continue
                person = candidate
            elif person is not None and owner is not None and owner != person.student_id:
                out.errors.append(
                    _error(
                        row,
                        "student_number",
                        row.student_number,
                        "STUDENT_NUMBER_TAKEN",
                        "学籍号已属于另一名学生",
                    )
                )
                continue
            matched.append((row, out, person))
        if not ctx.write:
            for _row, out, person in matched:
                if not out.errors:
                    if person is None:
                        ctx.created += 1
                    else:
                        ctx.updated += 1
            return outcomes

        enrollments = await d.students.enrollments_of(
            session, [p.student_id for _, _, p in matched if p is not None]
        )
        if ctx.stamp is None:
            conn = await session.connection()
            ctx.stamp = driver_value(conn.dialect, t.student.c.created_at, ctx.now)
        plan = _Plan()
        for row, out, person in matched:
            school = ctx.schools[row.school_org_code]
            assert school is not None
            if person is None:
                self._create(plan, ctx, row, out, school, prepared[row.row])
            else:
                self._update(
                    plan, ctx, row, out, school, person, prepared[row.row],
                    enrollments.get(person.student_id, []),
                )  # fmt: skip
        await self._flush(session, ctx)
        if d.db.is_sqlite:
            # New rows go through prepared driver statements (values bound once per call); a
            # plan of new rows only is written in the background while the next chunk is
            # validated and planned (see _flush), anything else is written now, in order.
            conn = await session.connection()
            plan.statements = [
                sqlite_insert(conn.dialect, table, columns, rows, bound=True)
                for table, columns, rows in (
                    (t.student, STUDENT_COLUMNS, plan.new_students),
                    (t.enrollment, ENROLLMENT_COLUMNS, plan.new_enrollments),
                    (
                        t.outbox_event,
                        OUTBOX_COLUMNS,
                        RegisteredEvents(ctx.caller, d.outbox.producer, ctx.stamp).rows_of(
                            plan.registered
                        )
                        + outbox_rows(d.outbox, plan.events[1:], created_at=ctx.stamp),
                    ),
                )
                if rows
            ]
            ctx.pending = plan
            if plan.student_updates or plan.id_updates or plan.enrollment_updates or plan.changes:
                await self._flush(session, ctx)
                await self._settle(ctx)
                await d.students.update_students(session, plan.student_updates)
                await d.students.update_students(session, plan.id_updates)
                await d.students.update_enrollments(session, plan.enrollment_updates)
                await d.students.insert_changes(session, plan.changes)
            return outcomes
        await d.students.insert_students(session, plan.new_students)
        await d.students.insert_enrollments(session, plan.new_enrollments)
        await d.students.update_students(session, plan.student_updates)
        await d.students.update_students(session, plan.id_updates)
        await d.students.update_enrollments(session, plan.enrollment_updates)
        await d.students.insert_changes(session, plan.changes)
        await add_events(session, d.outbox, plan.events)
        if plan.registered:
            rows = RegisteredEvents(ctx.caller, d.outbox.producer, None).rows_of(plan.registered)
            await bulk_insert_tuples(session, t.outbox_event, OUTBOX_COLUMNS, rows)
            d.outbox.wake_after_commit(session)
        return outcomes

    async def _flush(self, session: AsyncSession, ctx: SyncContext) -> None:
        """Start writing the plan an earlier chunk left pending, once the write before it is
        done. New students of a chunk cannot be what a later chunk looks up (a later row with
        the same ID number or 学籍号 is a duplicate within the upload), so the later chunk's
        reads may run first; the writes themselves go in order on the one connection."""
        await self._settle(ctx)
        plan, ctx.pending = ctx.pending, None
        if plan is None:
            return
        if plan.events:
            await self.d.outbox.add_many(session, plan.events[:1])  # wakes the relay on commit
        elif plan.registered:
            self.d.outbox.wake_after_commit(session)
        conn = await session.connection()
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        ctx.writing = asyncio.ensure_future(_execute_all(driver, plan.statements))

    async def _settle(self, ctx: SyncContext) -> None:
        writing, ctx.writing = ctx.writing, None
        if writing is not None:
            await writing

    async def finish(self, session: AsyncSession, ctx: SyncContext) -> None:
        """Write what is still pending (call before committing)."""
        if ctx.write:
            await self._flush(session, ctx)
        ctx.pending = None
        await self._settle(ctx)

    async def abandon(self, ctx: SyncContext) -> None:
        """Drop what is pending and wait for a write in flight (the transaction rolls back)."""
        ctx.pending = None
        writing, ctx.writing = ctx.writing, None
        if writing is not None:
            with contextlib.suppress(Exception):
                await writing

    # -- one row ---------------------------------------------------------------------------------

    def _enrollment_values(self, row: StudentRow) -> dict[str, Any]:
        return {
            "student_number": stored_number(row.student_number),
            "grade": row.grade,
            "class_name": row.class_name,
            "major_name": row.major_name,
            "status": int(row.status),
            "status_date": row.status_date,
            "enrolled_on": row.enrolled_on,
            "left_on": row.left_on,
            "boarder": row.boarder,
        }

    def _create(
        self,
        plan: _Plan,
        ctx: SyncContext,
        row: StudentRow,
        out: RowOutcome,
        school: OrgRef,
        p: Prepared,
    ) -> None:
        bi = p.bi
        sid, eid = new_id("S"), new_id("E")
        now = ctx.stamp
        number = row.stored_student_number
        stage, status = int(row.stage), int(row.status)
        plan.new_students.append(
            (
                sid, int(row.id_type), p.id_enc, bi or None, row.id_number_masked, row.name,
                int(row.gender), row.birth_date, row.ethnicity, row.household_type,
                row.household_region_code, p.phone_enc, row.phone_masked, eid,
                ctx.source_system, ctx.batch_id, ctx.batch_id, now, now, now, 1,
            )
        )  # fmt: skip
        plan.new_enrollments.append(
            (
                eid, sid, school.org_code, school.org_path, stage, number, row.grade,
                row.class_name, row.major_name, status, row.status_date, row.enrolled_on,
                row.left_on, row.boarder, True, now, now, 1,
            )
        )  # fmt: skip
        if p.person_part:
            part = ctx.school_parts.get(school.org_code)
            if part is None:
                part = ctx.school_parts[school.org_code] = school_part(
                    school.org_code, school.name, school.org_path
                )
            plan.registered.append((sid, school.org_path, p.person_part, part, p.enrolment_part))
        else:
            plan.events.append(
                (
                    STUDENT_REGISTERED,
                    events_pb2.StudentRegistered(
                        meta=meta(ctx.caller, school.org_path),
                        student_id=sid,
                        id_number_blind_index=bi,
                        name=row.name,
                        id_number_masked=row.id_number_masked,
                        gender=int(row.gender),
                        birth_date=row.birth_date,
                        enrollment=roster_pb2.Enrollment(
                            school_org_code=school.org_code,
                            school_name=school.name,
                            school_org_path=school.org_path,
                            stage=stage,
                            student_number=number,
                            grade=row.grade,
                            class_name=row.class_name,
                            major_name=row.major_name,
                            status=status,
                            enrolled_on=row.enrolled_on,
                            left_on=row.left_on,
                            boarder=row.boarder,
                            status_date=row.status_date,
                        ),
                    ),
                )
            )
        out.student_id = sid
        out.created = True
        ctx.created += 1

    def _update(
        self,
        plan: _Plan,
        ctx: SyncContext,
        row: StudentRow,
        out: RowOutcome,
        school: OrgRef,
        person: StoredPerson,
        p: Prepared,
        enrollments: list[StoredEnrollment],
    ) -> None:
        d = self.d
        bi = p.bi
        now = ctx.now
        sid = person.student_id
        out.student_id = sid
        stored_phone = d.decrypt_phone(person.phone_enc) if row.phone and person.phone_enc else ""
        changes = person_changes(person, row, stored_phone)
        id_values: dict[str, Any] = {}
        if bi and not person.has_id_number:
            changes["id_number"] = ("", row.id_number_masked)
            id_values = {
                "id_type": int(row.id_type),
                "id_number_enc": p.id_enc,
                "id_number_bi": bi,
                "id_number_masked": row.id_number_masked,
            }
        events: list[tuple[str, Message]] = []
        current_id = person.current_enrollment_id
        same = next(
            (
                e
                for e in enrollments
                if e.school_org_code == row.school_org_code and e.stage == int(row.stage)
            ),
            None,
        )
        others = [e for e in enrollments if e is not same and e.is_current]
        school_names = {c: (s.name if s else "") for c, s in ctx.schools.items()}

        def close_others() -> None:
            for other in others:
                before = _enrollment_dict(other)
                after = dict(before)
                after["is_current"] = False
                departure = departure_for(other, row, today=ctx.today)
                kind = "enrollment_changed"
                changed: dict[str, tuple[str, str]] = {}
                if departure is not None:
                    after["status"] = int(departure.status)
                    after["left_on"] = departure.left_on
                    after["status_date"] = departure.left_on
                    kind = "transferred_out"
                    changed = {
                        "status": (str(other.status), str(int(departure.status))),
                        "left_on": (other.left_on, departure.left_on),
                    }
                after["version"] = other.version + 1
                plan.update_enrollment(after, now)
                plan.changes.append(
                    _change(sid, other.enrollment_id, kind, changed, other.school_org_code, ctx)
                )
                if departure is not None:
                    events.append(
                        (
                            STUDENT_ENROLLMENT_CHANGED,
                            events_pb2.StudentEnrollmentChanged(
                                meta=meta(ctx.caller, other.school_org_path),
                                student_id=sid,
                                id_number_blind_index=bi or person.id_number_bi,
                                enrollment=enrollment_message(
                                    after, school_names.get(other.school_org_code, "")
                                ),
                                previous=enrollment_message(
                                    before, school_names.get(other.school_org_code, "")
                                ),
                            ),
                        )
                    )

        values = self._enrollment_values(row)
        if same is not None:
            before = _enrollment_dict(same)
            ech = enrollment_changes(same, row)
            becomes_current = not same.is_current and row.status in ON_ROLL
            path_moved = same.school_org_path != school.org_path
            if ech or becomes_current or path_moved:
                after = dict(before)
                after.update({k: v for k, v in values.items() if k in ech})
                after["school_org_path"] = school.org_path
                after["is_current"] = same.is_current or becomes_current
                after["version"] = same.version + 1
                plan.update_enrollment(after, now)
                if becomes_current:
                    close_others()
                    current_id = same.enrollment_id
                if ech or becomes_current:
                    plan.changes.append(
                        _change(
                            sid, same.enrollment_id, "enrollment_changed", ech, school.org_code, ctx
                        )
                    )
                    events.append(
                        (
                            STUDENT_ENROLLMENT_CHANGED,
                            events_pb2.StudentEnrollmentChanged(
                                meta=meta(ctx.caller, school.org_path),
                                student_id=sid,
                                id_number_blind_index=bi or person.id_number_bi,
                                enrollment=enrollment_message(after, school.name),
                                previous=enrollment_message(before, school.name),
                            ),
                        )
                    )
        else:
            previous = next((e for e in others), None)
            eid = new_id("E")
            enrollment = {
                "enrollment_id": eid,
                "student_id": sid,
                "school_org_code": school.org_code,
                "school_org_path": school.org_path,
                "stage": int(row.stage),
                **values,
                "is_current": True,
                "created_at": ctx.stamp,
                "updated_at": ctx.stamp,
                "version": 1,
            }
            plan.new_enrollments.append(tuple(enrollment[c] for c in ENROLLMENT_COLUMNS))
            close_others()
            current_id = eid
            moved_from = previous.school_org_code if previous else ""
            plan.changes.append(
                _change(
                    sid,
                    eid,
                    "transferred_in" if previous else "enrolled",
                    {"school_org_code": (moved_from, school.org_code)},
                    school.org_code,
                    ctx,
                )
            )
            msg = events_pb2.StudentEnrollmentChanged(
                meta=meta(ctx.caller, school.org_path),
                student_id=sid,
                id_number_blind_index=bi or person.id_number_bi,
                enrollment=enrollment_message(enrollment, school.name),
            )
            if previous is not None:
                msg.previous.CopyFrom(
                    enrollment_message(
                        _enrollment_dict(previous),
                        school_names.get(previous.school_org_code, ""),
                    )
                )
            events.append((STUDENT_ENROLLMENT_CHANGED, msg))

        if changes:
            plan.changes.append(_change(sid, None, "updated", changes, school.org_code, ctx))
            events.insert(
                0,
                (
                    STUDENT_UPDATED,
                    events_pb2.StudentUpdated(
                        meta=meta(ctx.caller, school.org_path),
                        student_id=sid,
                        id_number_blind_index=bi or person.id_number_bi,
                        name=row.name,
                        id_number_masked=id_values.get("id_number_masked", person.id_number_masked),
                        gender=int(row.gender),
                        birth_date=row.birth_date,
                        changed_fields=sorted(changes),
                    ),
                ),
            )
        if not changes and not events and current_id == person.current_enrollment_id:
            ctx.unchanged += 1
            return
        phone_enc = d.encrypt_phone(row.phone) if "phone" in changes else (person.phone_enc or None)
        plan.student_updates.append(
            {
                "student_id": sid,
                "id_type": id_values.get("id_type", person.id_type),
                "id_number_bi": id_values.get("id_number_bi", person.id_number_bi or None),
                "id_number_masked": id_values.get("id_number_masked", person.id_number_masked),
                "name": row.name,
                "gender": int(row.gender),
                "birth_date": row.birth_date,
                "ethnicity": row.ethnicity or person.ethnicity,
                "household_type": row.household_type or person.household_type,
                "household_region_code": row.household_region_code or person.household_region_code,
                "phone_enc": phone_enc,
                "phone_masked": row.phone_masked if "phone" in changes else person.phone_masked,
                "current_enrollment_id": current_id,
                "last_batch_id": ctx.batch_id,
                "updated_at": now,
                "synced_at": now,
                "version": person.version + 1,
            }
        )
        if id_values:
            plan.id_updates.append({"student_id": sid, "id_number_enc": id_values["id_number_enc"]})
        plan.events.extend(events)
        out.updated = True
        ctx.updated += 1


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

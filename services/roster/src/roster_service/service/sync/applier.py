"""RowApplier: applies one chunk of validated rows inside the caller's transaction, writing each
chunk's plan in bulk (in the background on SQLite) and settling it before commit."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from roster_service import tables as t
from roster_service.domain.common import K12_STAGES
from roster_service.domain.students import RowOutcome, StoredPerson, StudentRow, lookup_number
from roster_service.events import OUTBOX_COLUMNS, RegisteredEvents, add_events, outbox_rows
from roster_service.prepare import Prepared
from roster_service.repository.sql import bulk_insert_tuples, driver_value, sqlite_insert
from roster_service.repository.students import ENROLLMENT_COLUMNS, STUDENT_COLUMNS
from roster_service.service.context import Deps
from roster_service.service.sync.context import (
    _UNCHECKED,
    SyncContext,
    _error,
    _execute_all,
    _Plan,
    _school_problem,
)
from roster_service.service.sync.rows import _RowWriter


class RowApplier(_RowWriter):
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

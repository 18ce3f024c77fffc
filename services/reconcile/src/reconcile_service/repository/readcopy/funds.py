"""Writers of projects, periods, approved records with the funded set (aid), of allocations
(funding), and the reset before a rebuild."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, delete, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from reconcile_service import tables as t
from reconcile_service.repository.bulk import insert_absent, rows_from
from reconcile_service.repository.readcopy.base import (
    APPROVED,
    NEED_BASED,
    REVOKED,
    mark_dirty,
    newer,
)
from reconcile_service.repository.sql import chunks, dialect, upsert

# aid_record's columns as apply_records writes them (name, kind for rows_from).
RECORD_COLUMNS = (
    ("record_id", "text"),
    ("student_key", "int"),
    ("period_key", "int"),
    ("project_code", "text"),
    ("category", "small"),
    ("school_org_code", "text"),
    ("school_org_path", "text"),
    ("stage", "small"),
    ("amount_fen", "int"),
    ("id_number_blind_index", "text"),
    ("status", "small"),
    ("approved_at", "ts"),
    ("revoked_at", "ts"),
    ("student_name", "text"),
)
_STUDENT, _PERIOD, _CATEGORY = 1, 2, 4

# --- aid: projects, periods, records --------------------------------------------------------------


async def upsert_projects(
    session: AsyncSession, rows: Sequence[dict], tiers: dict[str, list[int]], exclusions: dict
) -> None:
    """Project states with their tiers and exclusions, newest wins."""
    if not rows:
        return
    stmt = upsert(session, t.project)
    cols = [c.name for c in t.project.columns if c.name != "project_code"]
    stmt = stmt.on_conflict_do_update(
        index_elements=["project_code"],
        set_={c: stmt.excluded[c] for c in cols},
        where=newer(stmt, t.project),
    ).returning(t.project.c.project_code)
    applied: list[str] = []
    for row in rows:
        applied += list((await session.execute(stmt, row)).scalars())
    if not applied:
        return
    await session.execute(delete(t.project_tier).where(t.project_tier.c.project_code.in_(applied)))
    await session.execute(
        delete(t.project_exclusion).where(t.project_exclusion.c.project_code.in_(applied))
    )
    tier_rows = [
        {"project_code": code, "amount_fen": amount}
        for code in applied
        for amount in sorted(set(tiers.get(code, ())))
    ]
    if tier_rows:
        await session.execute(t.project_tier.insert(), tier_rows)
    excl_rows = [
        {"project_code": code, "other_project_code": other, "scope": scope}
        for code in applied
        for other, scope in dict(exclusions.get(code, ())).items()
    ]
    if excl_rows:
        await session.execute(t.project_exclusion.insert(), excl_rows)


async def upsert_periods(session: AsyncSession, rows: Sequence[dict]) -> None:
    """Opened/closed periods with their dates, newest wins."""
    if not rows:
        return
    stmt = upsert(session, t.period)
    cols = ("status", "starts_on", "ends_on", "deadline_on", "event_at")
    stmt = stmt.on_conflict_do_update(
        index_elements=["school_year", "term"],
        set_={c: stmt.excluded[c] for c in cols},
        where=newer(stmt, t.period),
    )
    await session.execute(stmt, list(rows))


async def close_periods(session: AsyncSession, rows: Sequence[dict]) -> None:
    """aid.period.closed: status 2 unless a newer event reopened it."""
    stmt = upsert(session, t.period)
    stmt = stmt.on_conflict_do_update(
        index_elements=["school_year", "term"],
        set_={"status": 2, "event_at": stmt.excluded.event_at},
        where=newer(stmt, t.period),
    )
    if rows:
        await session.execute(stmt, list(rows))


async def project_categories(session: AsyncSession, codes: Sequence[str]) -> dict[str, int]:
    """Category of known projects (used when an event leaves it unspecified)."""
    if not codes:
        return {}
    rows = await session.execute(
        select(t.project.c.project_code, t.project.c.category).where(
            t.project.c.project_code.in_(codes)
        )
    )
    return dict(rows.all())


async def apply_records(
    session: AsyncSession, approved: Sequence[Sequence[Any]], revoked: Sequence[dict]
) -> tuple[int, int]:
    """Approvals (tuples in the order of RECORD_COLUMNS, distinct record ids) then revocations
    (dicts); keeps the funded set in step and marks the students whose funding changed. Returns
    (approved, revoked) rows that changed state (redelivered or out-of-order events change
    nothing: a record already known — approved, or revoked before its approval arrived — stays)."""
    deltas: dict[tuple[int, int], int] = defaultdict(int)
    newly_approved = 0
    if approved:
        if dialect(session) == "sqlite":
            new = await insert_absent(session, "aid_record", RECORD_COLUMNS, approved)
            added = [(r[_PERIOD], r[_STUDENT], r[_CATEGORY]) for r in new]
        else:
            added = []
            for part in chunks(list(approved), 5000):
                added += await _insert_new_records(session, part)
        for period_key, student_key, category in added:
            newly_approved += 1
            if category == NEED_BASED:
                deltas[(period_key, student_key)] += 1
    newly_revoked = 0
    if revoked:
        revoke = _revoke_sqlite if dialect(session) == "sqlite" else _revoke_pg
        for period_key, student_key, category in await revoke(session, revoked):
            newly_revoked += 1
            if category == NEED_BASED:
                deltas[(period_key, student_key)] -= 1
    await _apply_funded(session, deltas)
    await mark_dirty(session, (s for (_, s), d in deltas.items() if d))
    return newly_approved, newly_revoked


async def _insert_new_records(
    session: AsyncSession, rows: Sequence[Sequence[Any]]
) -> list[tuple[int, int, int]]:
    """PostgreSQL: insert approvals (rows bound column-wise) and return (period, student,
    category) of those that were new. Usually none is known yet, so a plain INSERT under a
    savepoint goes first (ON CONFLICT's speculative insertion costs about 40 % more); a unique
    violation rolls back to the savepoint and the rows go in with ON CONFLICT DO NOTHING."""
    names = ", ".join(name for name, _ in RECORD_COLUMNS)
    source, params = rows_from(session, RECORD_COLUMNS, rows)
    insert = f"INSERT INTO aid_record ({names}) SELECT {names} FROM {source} WHERE true"
    returning = " RETURNING period_key, student_key, category"
    try:
        async with session.begin_nested():
            result = await session.execute(text(insert + returning), params)
            return [tuple(r) for r in result.all()]
    except IntegrityError:
        pass
    result = await session.execute(
        text(f"{insert} ON CONFLICT (record_id) DO NOTHING{returning}"), params
    )
    return [tuple(r) for r in result.all()]


async def _revoke_sqlite(
    session: AsyncSession, revoked: Sequence[dict]
) -> list[tuple[int, int, int]]:
    # SQLite has one writer at a time: approved → revoked, then stubs for unknown records.
    changed: list[tuple[int, int, int]] = []
    for part in chunks([r["record_id"] for r in revoked], 1000):
        result = await session.execute(
            update(t.aid_record)
            .where(t.aid_record.c.record_id.in_(part), t.aid_record.c.status == APPROVED)
            .values(status=REVOKED)
            .returning(
                t.aid_record.c.period_key, t.aid_record.c.student_key, t.aid_record.c.category
            )
        )
        changed += [tuple(r) for r in result.all()]
    # Revocations of records never seen approved are kept so a late approval stays revoked.
    stmt = upsert(session, t.aid_record).on_conflict_do_nothing(index_elements=["record_id"])
    await session.execute(stmt, list(revoked))
    await session.execute(
        update(t.aid_record)
        .where(t.aid_record.c.record_id == bindparam("rid"), t.aid_record.c.revoked_at.is_(None))
        .values(revoked_at=bindparam("at")),
        [{"rid": r["record_id"], "at": r["revoked_at"]} for r in revoked],
    )
    return changed


async def _revoke_pg(session: AsyncSession, revoked: Sequence[dict]) -> list[tuple[int, int, int]]:
    # One upsert per chunk, so that the outcome does not depend on the order in which concurrent
    # transactions commit (the consumer applies two batches at once): a record approved by a
    # transaction not yet committed makes this one wait for it, then see it and revoke it. An
    # unknown record is kept as revoked (a late approval then changes nothing); an approved one
    # becomes revoked; one already revoked stays as it is. Returned: the approved ones revoked
    # (xmax is 0 only on a row this statement inserted).
    names = ", ".join(name for name, _ in RECORD_COLUMNS)
    changed: list[tuple[int, int, int]] = []
    # One row per record: an upsert may not touch the same row twice.
    distinct_rows = {r["record_id"]: r for r in revoked}
    for part in chunks(list(distinct_rows.values()), 1000):
        rows = [tuple(r[name] for name, _ in RECORD_COLUMNS) for r in part]
        source, params = rows_from(session, RECORD_COLUMNS, rows)
        result = await session.execute(
            text(
                f"INSERT INTO aid_record ({names}) SELECT {names} FROM {source} WHERE true "
                "ON CONFLICT (record_id) DO UPDATE SET status = excluded.status, "
                "revoked_at = COALESCE(aid_record.revoked_at, excluded.revoked_at) "
                f"WHERE aid_record.status = {APPROVED} "
                "RETURNING period_key, student_key, category, xmax = 0 AS inserted"
            ),
            params,
        )
        changed += [(p, s, c) for p, s, c, inserted in result.all() if not inserted]
    return changed


async def _apply_funded(session: AsyncSession, deltas: dict[tuple[int, int], int]) -> None:
    # Sorted, so concurrent consumers lock funded rows in the same order.
    changes = [(p, s, d) for (p, s), d in sorted(deltas.items()) if d]
    if not changes:
        return
    upsert_sql = (
        "ON CONFLICT (period_key, student_key) "
        "DO UPDATE SET records = funded_student.records + excluded.records"
    )
    if dialect(session) == "sqlite":
        # One executemany straight through the driver: no JSON to build and pick apart.
        conn = await session.connection()
        await conn.exec_driver_sql(
            f"INSERT INTO funded_student (period_key, student_key, records) VALUES (?, ?, ?) "
            f"{upsert_sql}",
            changes,
        )
    else:
        source, params = rows_from(
            session, [("period_key", "int"), ("student_key", "int"), ("records", "int")], changes
        )
        await session.execute(
            text(
                "INSERT INTO funded_student (period_key, student_key, records) "
                f"SELECT period_key, student_key, records FROM {source} WHERE true {upsert_sql}"
            ),
            params,
        )
    gone = [(p, s) for p, s, d in changes if d < 0]
    if gone:
        await session.execute(
            delete(t.funded_student).where(
                t.funded_student.c.period_key == bindparam("p"),
                t.funded_student.c.student_key == bindparam("s"),
                t.funded_student.c.records <= 0,
            ),
            [{"p": p, "s": s} for p, s in gone],
        )


# --- funding --------------------------------------------------------------------------------------


async def add_allocations(session: AsyncSession, rows: Sequence[dict]) -> None:
    """funding.allocation.made lines (idempotent by allocation id)."""
    if rows:
        stmt = upsert(session, t.allocation).on_conflict_do_nothing(
            index_elements=["allocation_id"]
        )
        await session.execute(stmt, list(rows))


async def reverse_allocations(session: AsyncSession, rows: Sequence[dict]) -> None:
    """funding.allocation.reversed: the amount no longer counts (terminal)."""
    if not rows:
        return
    stmt = upsert(session, t.allocation)
    stmt = stmt.on_conflict_do_update(index_elements=["allocation_id"], set_={"reversed": True})
    await session.execute(stmt, [{**r, "reversed": True} for r in rows])


# --- rebuild --------------------------------------------------------------------------------------


async def clear_read_copy(session: AsyncSession, consumers: Sequence[str]) -> None:
    """Empty the read copy and forget which events it applied, so that replaying the streams
    from the start rebuilds it. Reconcile's own records (entries, reasons, findings) stay."""
    for table in reversed(t.READ_COPY):
        if table in (t.student, t.period):
            continue  # keys stay stable: entries, findings and history refer to them
        await session.execute(delete(table))
    await session.execute(
        update(t.period).values(status=0, starts_on="", ends_on="", deadline_on="", event_at=None)
    )
    # The next run over the whole tree is a full one (it re-reads the replayed copy).
    await session.execute(delete(t.period_state))
    await session.execute(delete(t.dirty_student))
    await session.execute(
        update(t.student).values(
            registered=False, name="", id_number_masked="", gender=0, birth_date="", event_at=None
        )
    )
    await session.execute(
        delete(t.processed_event).where(t.processed_event.c.consumer.in_(consumers))
    )

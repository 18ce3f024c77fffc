"""Keys, org paths, dirty marks and event times: what every writer of the read copy shares."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from reconcile_service import tables as t
from reconcile_service.repository.bulk import in_values, rows_from
from reconcile_service.repository.sql import chunks, dialect, distinct, upsert

NEED_BASED = 1  # AidCategory 助困
APPROVED, REVOKED = 5, 6  # RecordStatus
TRANSFERRED_OUT = 6  # StudentStatus 转出
PATH_TABLES: tuple[tuple[Any, str], ...] = (
    (t.org, "org_path"),
    (t.enrollment, "school_org_path"),
    (t.membership, "school_org_path"),
    (t.aid_record, "school_org_path"),
    (t.allocation, "to_org_path"),
    (t.unfunded_entry, "school_org_path"),
    (t.candidate, "school_org_path"),
    (t.authority_statement, "org_path"),
    (t.population_stat, "school_org_path"),
    (t.legacy_report, "school_org_path"),
    (t.finding, "org_path"),
    (t.quota, "org_path"),
)


def newer(stmt: Any, table: Any, column: str = "event_at") -> Any:
    """ON CONFLICT … WHERE: the incoming row is at least as new as the stored one."""
    stored = table.c[column]
    return stored.is_(None) | (stmt.excluded[column] >= stored)


# --- keys ---------------------------------------------------------------------------------------


async def student_keys(session: AsyncSession, ids: dict[str, str]) -> dict[str, int]:
    """Surrogate keys of students by id, creating placeholders for ids not seen yet.

    `ids` maps student id → blind index of the ID number ("" when unknown)."""
    if not ids:
        return {}
    wanted = sorted(ids)
    if dialect(session) == "sqlite":
        return await _student_keys_sqlite(session, ids, wanted)
    keys = await _known_students(session, wanted)
    # Most events name students roster registered long ago: insert only the unseen ones.
    missing = [sid for sid in wanted if sid not in keys]
    if missing:
        source, params = rows_from(
            session,
            [("student_id", "text"), ("blind", "text")],
            [(sid, ids[sid]) for sid in missing],
        )
        await session.execute(
            text(
                "INSERT INTO student (student_id, id_number_blind_index) "
                f"SELECT student_id, blind FROM {source} WHERE true "
                "ON CONFLICT (student_id) DO NOTHING"
            ),
            params,
        )
        keys.update(await _known_students(session, missing))
    return keys


async def _student_keys_sqlite(
    session: AsyncSession, ids: dict[str, str], wanted: list[str]
) -> dict[str, int]:
    # Straight through the driver: the ids as one JSON array, the placeholders by executemany
    # (no conflict possible: SQLite's write transaction excludes other writers).
    conn = await session.connection()
    select_known = (
        "SELECT student_id, student_key FROM student "
        "WHERE student_id IN (SELECT value FROM json_each(?))"
    )
    found = await conn.exec_driver_sql(select_known, (json.dumps(wanted, ensure_ascii=False),))
    keys: dict[str, int] = dict(found.fetchall())
    missing = [sid for sid in wanted if sid not in keys]
    if missing:
        await conn.exec_driver_sql(
            "INSERT INTO student (student_id, id_number_blind_index) VALUES (?, ?)",
            [(sid, ids[sid]) for sid in missing],
        )
        found = await conn.exec_driver_sql(select_known, (json.dumps(missing, ensure_ascii=False),))
        keys.update(found.fetchall())
    return keys


async def _known_students(session: AsyncSession, wanted: Sequence[str]) -> dict[str, int]:
    cond, params = in_values(session, "student_id", "text", wanted)
    rows = await session.execute(
        text(f"SELECT student_id, student_key FROM student WHERE {cond}"), params
    )
    return {sid: key for sid, key in rows.all()}


async def period_keys(session: AsyncSession, periods: Iterable[tuple[str, int]]) -> dict:
    """Surrogate keys of periods (school year, term), creating unknown ones (status 0)."""
    wanted = distinct(p for p in periods if p[0] and p[1])
    if not wanted:
        return {}
    stmt = upsert(session, t.period).on_conflict_do_nothing(index_elements=["school_year", "term"])
    await session.execute(stmt, [{"school_year": y, "term": term} for y, term in wanted])
    rows = await session.execute(
        select(t.period.c.school_year, t.period.c.term, t.period.c.period_key).where(
            tuple_(t.period.c.school_year, t.period.c.term).in_(wanted)
        )
    )
    return {(y, term): key for y, term, key in rows.all()}


PATH_LOCK = 0x52435041  # "RCPA"


async def path_lock(session: AsyncSession, *, exclusive: bool) -> None:
    # PostgreSQL runs the consumers' transactions concurrently: writers that copy org paths hold
    # the lock shared, a subtree move holds it exclusively, so a move never misses rows written
    # with the old path. SQLite runs one writer at a time anyway.
    if session.get_bind().dialect.name == "postgresql":
        fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        await session.execute(text(f"SELECT {fn}({PATH_LOCK})"))


async def current_paths(session: AsyncSession, codes: Iterable[str]) -> dict[str, str]:
    """Paths of known orgs now. Events carry the path as of their time; when a subtree moved
    meanwhile, the org copy's path wins, so the copy converges whatever order streams replay."""
    wanted = sorted({c for c in codes if c})
    await path_lock(session, exclusive=False)
    out: dict[str, str] = {}
    for part in chunks(wanted):
        rows = await session.execute(
            select(t.org.c.org_code, t.org.c.org_path).where(t.org.c.org_code.in_(part))
        )
        out.update(dict(rows.all()))
    return out


def use_current_paths(rows: Iterable[dict], paths: dict[str, str], code: str, path: str) -> None:
    """Replace each row's path by the org copy's when the org is known."""
    for row in rows:
        known = paths.get(row.get(code) or "")
        if known:
            row[path] = known


async def mark_dirty(session: AsyncSession, keys: Iterable[int]) -> None:
    """Students the next incremental comparison must look at again (memberships, enrolment or
    funding changed). Sorted, so concurrent consumers lock rows in the same order."""
    wanted = sorted(set(keys))
    if not wanted:
        return
    if dialect(session) == "sqlite":
        # One executemany straight through the driver: no JSON to build and pick apart.
        conn = await session.connection()
        await conn.exec_driver_sql(
            "INSERT INTO dirty_student (student_key, mark) VALUES (?, 1) "
            "ON CONFLICT (student_key) DO UPDATE SET mark = dirty_student.mark + 1",
            [(k,) for k in wanted],
        )
        return
    source, params = rows_from(session, [("student_key", "int")], [(k,) for k in wanted])
    await session.execute(
        text(
            "INSERT INTO dirty_student (student_key, mark) "
            f"SELECT student_key, 1 FROM {source} WHERE true "
            "ON CONFLICT (student_key) DO UPDATE SET mark = dirty_student.mark + 1"
        ),
        params,
    )


def event_time(ts: Any) -> datetime | None:
    """A protobuf Timestamp as an aware datetime; None when unset."""
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return ts.ToDatetime(tzinfo=UTC)

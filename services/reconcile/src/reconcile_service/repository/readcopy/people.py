"""Writers of the org tree (identity) and of students, enrolments, memberships and
recognitions (roster)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import case, func, update
from sqlalchemy.ext.asyncio import AsyncSession

from reconcile_service import tables as t
from reconcile_service.repository.readcopy.base import (
    PATH_TABLES,
    TRANSFERRED_OUT,
    newer,
    path_lock,
)
from reconcile_service.repository.sql import upsert

# --- identity: orgs -----------------------------------------------------------------------------


async def upsert_orgs(session: AsyncSession, rows: Sequence[dict]) -> None:
    """Org states (created/updated), newest event wins."""
    if not rows:
        return
    stmt = upsert(session, t.org)
    cols = ("name", "level", "parent_code", "org_path", "stages", "status", "event_at")
    stmt = stmt.on_conflict_do_update(
        index_elements=["org_code"],
        set_={c: stmt.excluded[c] for c in cols},
        where=newer(stmt, t.org),
    )
    await session.execute(stmt, list(rows))


async def move_subtree(session: AsyncSession, old_path: str, new_path: str) -> None:
    """Rewrite every stored path under old_path to start with new_path (the subtree moved)."""
    if not old_path or not new_path or old_path == new_path:
        return
    await path_lock(session, exclusive=True)
    cut = len(old_path) + 1
    for table, column in PATH_TABLES:
        col = table.c[column]
        await session.execute(
            update(table)
            .where(col.startswith(old_path, autoescape=True))
            .values({column: new_path + func.substr(col, cut)})
        )


async def retire_orgs(session: AsyncSession, codes: Sequence[str]) -> None:
    """Mark orgs retired (撤销); their history stays."""
    if codes:
        await session.execute(update(t.org).where(t.org.c.org_code.in_(codes)).values(status=2))


# --- roster: students, enrolments, memberships, recognitions ------------------------------------


async def upsert_people(session: AsyncSession, rows: Sequence[dict]) -> None:
    """Person facts of registered/updated students (keys already resolved), newest wins."""
    if not rows:
        return
    stmt = upsert(session, t.student)
    cols = ("id_number_blind_index", "name", "id_number_masked", "gender", "birth_date")
    stmt = stmt.on_conflict_do_update(
        index_elements=["student_id"],
        set_={
            **{c: stmt.excluded[c] for c in cols},
            "registered": True,
            "event_at": stmt.excluded.event_at,
        },
        where=newer(stmt, t.student),
    )
    await session.execute(stmt, [{**r, "registered": True} for r in rows])


async def upsert_enrollments(session: AsyncSession, rows: Sequence[dict]) -> None:
    """Enrolment states keyed by (student, school, stage), newest wins."""
    if not rows:
        return
    stmt = upsert(session, t.enrollment)
    cols = (
        "school_org_path",
        "school_name",
        "grade",
        "class_name",
        "status",
        "enrolled_on",
        "left_on",
        "boarder",
        "event_at",
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["student_key", "school_org_code", "stage"],
        set_={c: stmt.excluded[c] for c in cols},
        where=newer(stmt, t.enrollment),
    )
    await session.execute(stmt, list(rows))


async def close_moved_enrollments(session: AsyncSession, rows: Sequence[dict]) -> None:
    """An enrolment that moved to another school or stage: its old row is 转出 as of the move
    (unless a newer event already said otherwise)."""
    for row in rows:
        await session.execute(
            update(t.enrollment)
            .where(
                t.enrollment.c.student_key == row["student_key"],
                t.enrollment.c.school_org_code == row["school_org_code"],
                t.enrollment.c.stage == row["stage"],
                (t.enrollment.c.event_at.is_(None)) | (t.enrollment.c.event_at <= row["event_at"]),
                t.enrollment.c.status.in_((1, 2)),
            )
            .values(status=TRANSFERRED_OUT, left_on=row["left_on"], event_at=row["event_at"])
        )


async def add_memberships(session: AsyncSession, rows: Sequence[dict]) -> None:
    """roster.membership.added, and each entry of roster.membership.issued: the membership's
    core facts (verification kept if newer)."""
    if not rows:
        return
    stmt = upsert(session, t.membership)
    core = (
        "student_key",
        "school_org_code",
        "school_org_path",
        "stage",
        "special_group",
        "source",
        "batch_id",
        "valid_from",
        "valid_to",
        "added_at",
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["membership_id"],
        set_={
            **{c: stmt.excluded[c] for c in core},
            # A verification seen before the addition (redelivery) is newer: keep it.
            "verification": case(
                (t.membership.c.verified_at.is_(None), stmt.excluded.verification),
                else_=t.membership.c.verification,
            ),
        },
    )
    await session.execute(stmt, list(rows))


async def verify_memberships(session: AsyncSession, rows: Sequence[dict]) -> None:
    """roster.membership.verified: 核实 result, newest wins (a placeholder if not added yet)."""
    if not rows:
        return
    stmt = upsert(session, t.membership)
    stmt = stmt.on_conflict_do_update(
        index_elements=["membership_id"],
        set_={"verification": stmt.excluded.verification, "verified_at": stmt.excluded.verified_at},
        where=newer(stmt, t.membership, "verified_at"),
    )
    await session.execute(stmt, list(rows))


async def end_memberships(session: AsyncSession, rows: Sequence[dict]) -> None:
    """roster.membership.ended: terminal (a placeholder if not added yet)."""
    if not rows:
        return
    stmt = upsert(session, t.membership)
    stmt = stmt.on_conflict_do_update(
        index_elements=["membership_id"], set_={"ended_on": stmt.excluded.ended_on}
    )
    await session.execute(stmt, list(rows))


async def upsert_recognitions(session: AsyncSession, rows: Sequence[dict]) -> None:
    """Hardship levels per student × school year × term (the term it applies from)."""
    if not rows:
        return
    stmt = upsert(session, t.recognition)
    stmt = stmt.on_conflict_do_update(
        index_elements=["student_key", "school_year", "term"],
        set_={"level": stmt.excluded.level, "event_at": stmt.excluded.event_at},
        where=newer(stmt, t.recognition),
    )
    await session.execute(stmt, list(rows))

"""The dirty set of an incremental comparison: the consumers' marks taken at the start of a run,
the students whose memberships or enrolments start or end since the previous as-of day, and the
marks forgotten once the run has seen them (a student marked again meanwhile stays marked)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from reconcile_service.repository.comparison import DIRTY
from reconcile_service.repository.sql import dialect


async def take_marks(session: AsyncSession) -> int:
    """Snapshot the consumers' marks (student, mark) into a temp table; returns how many."""
    await session.execute(text("DROP TABLE IF EXISTS cmp_marks"))
    await session.execute(
        text("CREATE TEMP TABLE cmp_marks AS SELECT student_key, mark FROM dirty_student")
    )
    return int((await session.execute(text("SELECT COUNT(*) FROM cmp_marks"))).scalar_one())


async def prepare_dirty(
    session: AsyncSession, *, starts_on: date, as_of: date, previous_as_of: date
) -> int:
    """DIRTY for one period: the marked students, and those whose memberships or enrolments
    start or end between the previous as-of day and this one. Returns its size."""
    await session.execute(text(f"DROP TABLE IF EXISTS {DIRTY}"))
    await session.execute(text(f"CREATE TEMP TABLE {DIRTY} (student_key BIGINT PRIMARY KEY)"))
    await session.execute(
        text(f"INSERT INTO {DIRTY} (student_key) SELECT student_key FROM cmp_marks")
    )
    if as_of != previous_as_of:
        lo, hi = sorted((previous_as_of.isoformat(), as_of.isoformat()))
        await session.execute(
            text(f"""
            INSERT INTO {DIRTY} (student_key)
            SELECT DISTINCT m.student_key FROM membership m
            WHERE ((m.valid_from > :lo AND m.valid_from <= :hi)
                   OR (m.valid_to >= :lo AND m.valid_to < :hi)
                   OR (m.ended_on > :lo AND m.ended_on <= :hi))
              AND m.student_key NOT IN (SELECT student_key FROM {DIRTY})
            """),
            {"lo": lo, "hi": hi},
        )
        await session.execute(
            text(f"""
            INSERT INTO {DIRTY} (student_key)
            SELECT DISTINCT e.student_key FROM enrollment e
            WHERE e.enrolled_on > :lo AND e.enrolled_on <= :hi
              AND e.student_key NOT IN (SELECT student_key FROM {DIRTY})
            """),
            {"lo": lo, "hi": hi},
        )
    if dialect(session) == "postgresql":
        await session.execute(text(f"ANALYZE {DIRTY}"))
    return int((await session.execute(text(f"SELECT COUNT(*) FROM {DIRTY}"))).scalar_one())


async def consume_marks(session: AsyncSession) -> None:
    """Forget the marks the pass handled; a student marked again meanwhile stays marked."""
    await session.execute(
        text("""
        DELETE FROM dirty_student
        WHERE EXISTS (SELECT 1 FROM cmp_marks c
                      WHERE c.student_key = dirty_student.student_key
                        AND c.mark = dirty_student.mark)
        """)
    )
    await session.execute(text("DROP TABLE IF EXISTS cmp_marks"))
    await session.execute(text(f"DROP TABLE IF EXISTS {DIRTY}"))

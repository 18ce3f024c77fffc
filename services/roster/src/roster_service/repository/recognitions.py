"""Queries and writes of hardship recognitions and per-group default levels."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, delete, exists, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from roster_service import tables as t
from roster_service.domain.recognition import RecognitionEntry
from roster_service.repository.sql import chunks, fetch_in, in_subtree

R = t.recognition


def entry(row: Any) -> RecognitionEntry:
    """The ordering facts of a recognition row."""
    return RecognitionEntry(
        recognition_id=row.id,
        student_id=row.student_id,
        school_year=row.school_year,
        term=row.term,
        level=row.level,
        version=row.version,
    )


@dataclass(slots=True)
class RecognitionFilters:
    """Filters of ListRecognitions."""

    path: str
    school_year: str
    term: int = 0
    levels: tuple[int, ...] = ()
    stage: int = 0
    grade: str = ""
    class_name: str = ""


class RecognitionRepository:
    """Recognitions and default levels."""

    async def rows_for(
        self, session: AsyncSession, student_ids: Sequence[str], school_years: Iterable[str]
    ) -> dict[tuple[str, str], list[Row[Any]]]:
        """Every entry per (student, school year)."""
        years = sorted(set(school_years))
        found: dict[tuple[str, str], list[Row[Any]]] = {}
        if not years:
            return found
        for part in chunks(list(set(student_ids))):
            rows = await session.execute(
                select(R).where(R.c.student_id.in_(part), R.c.school_year.in_(years))
            )
            for row in rows:
                found.setdefault((row.student_id, row.school_year), []).append(row)
        return found

    async def entries_for(
        self, session: AsyncSession, student_ids: Iterable[str], school_years: Iterable[str]
    ) -> dict[tuple[str, str], list[RecognitionEntry]]:
        """`rows_for` as ordering facts only, in one set-based query per chunk of students
        (plain tuples: batched checks ask for thousands of students)."""
        years = set(school_years)
        found: dict[tuple[str, str], list[RecognitionEntry]] = {}
        if not years:
            return found
        rows = await fetch_in(
            session,
            "SELECT id, student_id, school_year, term, level, version FROM recognition "
            "WHERE student_id {keys}",
            list(set(student_ids)),
        )
        for r in rows:
            if r[2] in years:
                found.setdefault((r[1], r[2]), []).append(RecognitionEntry(*r))
        return found

    async def history(
        self, session: AsyncSession, student_id: str, school_year: str
    ) -> list[Row[Any]]:
        """Entries of a student's school year, newest first."""
        rows = await session.execute(
            select(R)
            .where(R.c.student_id == student_id, R.c.school_year == school_year)
            .order_by(R.c.version.desc())
        )
        return list(rows)

    async def insert(self, session: AsyncSession, values: dict[str, Any]) -> int:
        """Add an entry; returns its id."""
        result = await session.execute(insert(R).values(**values).returning(R.c.id))
        return int(result.scalar_one())

    async def insert_many(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        """Add many entries."""
        if rows:
            await session.execute(insert(R), rows)

    async def set_current(self, session: AsyncSession, keys: Sequence[tuple[str, str]]) -> None:
        """Recompute the current flag of (student, school year) pairs: the entry of the latest
        term, and within it the latest version."""
        for part in chunks(list(set(keys)), 500):
            cond = tuple_(R.c.student_id, R.c.school_year).in_(part)
            await session.execute(update(R).where(cond).values(is_current=False))
            later = R.alias("later")
            newest = ~exists().where(
                later.c.student_id == R.c.student_id,
                later.c.school_year == R.c.school_year,
                (later.c.term > R.c.term)
                | and_(later.c.term == R.c.term, later.c.version > R.c.version),
            )
            await session.execute(update(R).where(cond, newest).values(is_current=True))

    def _list_where(self, f: RecognitionFilters) -> list[Any]:
        where: list[Any] = [
            in_subtree(R.c.school_org_path, f.path),
            R.c.school_year == f.school_year,
        ]
        if f.term:
            later = R.alias("later")
            where.append(R.c.term <= f.term)
            where.append(
                ~exists().where(
                    later.c.student_id == R.c.student_id,
                    later.c.school_year == R.c.school_year,
                    later.c.term <= f.term,
                    (later.c.term > R.c.term)
                    | and_(later.c.term == R.c.term, later.c.version > R.c.version),
                )
            )
        else:
            where.append(R.c.is_current.is_(True))
        if f.levels:
            where.append(R.c.level.in_(f.levels))
        e = t.enrollment
        if f.stage or f.grade or f.class_name:
            cond = [e.c.student_id == R.c.student_id, e.c.is_current.is_(True)]
            if f.stage:
                cond.append(e.c.stage == f.stage)
            if f.grade:
                cond.append(e.c.grade == f.grade)
            if f.class_name:
                cond.append(e.c.class_name == f.class_name)
            where.append(exists().where(*cond))
        return where

    async def list(
        self, session: AsyncSession, f: RecognitionFilters, *, offset: int, limit: int
    ) -> tuple[list[Row[Any]], int]:
        """Entries in force matching the filters, with student names, and the total."""
        where = self._list_where(f)
        s = t.student
        total = (
            await session.execute(select(func.count()).select_from(R).where(*where))
        ).scalar_one()
        rows = await session.execute(
            select(R, s.c.name.label("student_name"), s.c.id_number_masked)
            .join(s, s.c.student_id == R.c.student_id)
            .where(*where)
            .order_by(R.c.school_org_code, s.c.name, R.c.id)
            .offset(offset)
            .limit(limit)
        )
        return list(rows), int(total)

    async def defaults(
        self, session: AsyncSession, codes: Sequence[str]
    ) -> dict[str, list[Row[Any]]]:
        """Default-level tables of the given orgs."""
        g = t.group_default_level
        found: dict[str, list[Row[Any]]] = {}
        if not codes:
            return found
        rows = await session.execute(
            select(g).where(g.c.org_code.in_(list(codes))).order_by(g.c.special_group)
        )
        for row in rows:
            found.setdefault(row.org_code, []).append(row)
        return found

    async def replace_defaults(
        self, session: AsyncSession, code: str, levels: dict[int, int], actor: str, now: datetime
    ) -> None:
        """Replace an org's default-level table."""
        g = t.group_default_level
        await session.execute(delete(g).where(g.c.org_code == code))
        if levels:
            await session.execute(
                insert(g),
                [
                    {
                        "org_code": code,
                        "special_group": grp,
                        "level": lvl,
                        "updated_by": actor,
                        "updated_at": now,
                    }
                    for grp, lvl in sorted(levels.items())
                ],
            )

"""Queries and bulk writes of students, enrolments and their history."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, and_, bindparam, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from roster_service import tables as t
from roster_service.domain.common import K12_STAGES
from roster_service.domain.students import StoredEnrollment, StoredPerson
from roster_service.repository.sql import (
    bulk_insert,
    bulk_insert_tuples,
    chunks,
    fetch_in,
    in_subtree,
)

S = t.student
E = t.enrollment

# Column order of new rows written in bulk (every column of the tables).
STUDENT_COLUMNS = (
    "student_id", "id_type", "id_number_enc", "id_number_bi", "id_number_masked", "name",
    "gender", "birth_date", "ethnicity", "household_type", "household_region_code", "phone_enc",
    "phone_masked", "current_enrollment_id", "source_system", "created_batch_id",
    "last_batch_id", "created_at", "updated_at", "synced_at", "version",
)  # fmt: skip
ENROLLMENT_COLUMNS = (
    "enrollment_id", "student_id", "school_org_code", "school_org_path", "stage",
    "student_number", "grade", "class_name", "major_name", "status", "status_date",
    "enrolled_on", "left_on", "boarder", "is_current", "created_at", "updated_at", "version",
)  # fmt: skip


def enrollment_from_row(row: Any) -> StoredEnrollment:
    """A StoredEnrollment from an enrollment row."""
    return StoredEnrollment(
        enrollment_id=row.enrollment_id,
        student_id=row.student_id,
        school_org_code=row.school_org_code,
        school_org_path=row.school_org_path,
        stage=row.stage,
        student_number=row.student_number,
        grade=row.grade,
        class_name=row.class_name,
        major_name=row.major_name,
        status=row.status,
        status_date=row.status_date,
        enrolled_on=row.enrolled_on,
        left_on=row.left_on,
        boarder=bool(row.boarder),
        is_current=bool(row.is_current),
        version=row.version,
    )


# Person facts by blind index or id, in StoredPerson's order (has_id_number is derived).
_PERSON_SQL = (
    "SELECT student_id, id_type, id_number_bi, id_number_masked, name, gender, birth_date, "
    "ethnicity, household_type, household_region_code, phone_enc, phone_masked, "
    "current_enrollment_id, version FROM student WHERE {column} {{keys}}"
)


def _person_tuple(r: Sequence[Any]) -> StoredPerson:
    return StoredPerson(
        r[0], r[1], r[2] is not None, r[2] or "", r[3], r[4], r[5], r[6], r[7], r[8], r[9],
        r[10] or "", r[11], r[12] or "", r[13],
    )  # fmt: skip


# Enrolments with their person's key facts, by the person's blind index or id (enrolment columns
# first, in StoredEnrollment's order). The join is served by the blind-index (or primary-key)
# index of student and the (student_id, school, stage) index of enrollment.
_ENROLLED_SQL = (
    "SELECT e.enrollment_id, e.student_id, e.school_org_code, e.school_org_path, e.stage, "
    "e.student_number, e.grade, e.class_name, e.major_name, e.status, e.status_date, "
    "e.enrolled_on, e.left_on, e.boarder, e.is_current, e.version, "
    "s.id_number_bi, s.id_number_masked, s.name "
    "FROM student s JOIN enrollment e ON e.student_id = s.student_id WHERE s.{column} {{keys}}"
)


@dataclass(slots=True)
class EnrolledPerson:
    """A person's key facts with every enrolment (what an enrolment check needs)."""

    student_id: str
    id_number_bi: str
    id_number_masked: str
    name: str
    enrollments: list[StoredEnrollment]


@dataclass(slots=True)
class SearchFilters:
    """Filters of SearchStudents (already resolved: path, blind index)."""

    path: str
    stage: int = 0
    grade: str = ""
    class_name: str = ""
    statuses: tuple[int, ...] = ()
    name_prefix: str = ""
    id_number_bi: str = ""
    student_number: str = ""
    groups: tuple[int, ...] = ()
    group_school_year: str = ""
    hardship_levels: tuple[int, ...] = ()
    hardship_school_year: str = ""
    current_only: bool = False


class StudentRepository:
    """Students, enrolments, history."""

    async def persons_by_bi(
        self, session: AsyncSession, bis: Iterable[str]
    ) -> dict[str, StoredPerson]:
        """Stored persons by ID-number blind index (one set-based query per chunk of keys,
        rows read as plain tuples: a 学籍 sync asks for every row of a chunk)."""
        rows = await fetch_in(session, _PERSON_SQL.format(column="id_number_bi"), list(set(bis)))
        return {r[2]: _person_tuple(r) for r in rows}

    async def enrolled_by(
        self, session: AsyncSession, column: str, keys: Iterable[str]
    ) -> dict[str, EnrolledPerson]:
        """Persons with their enrolments, keyed by `column` ("id_number_bi" or "student_id"):
        one set-based query per chunk of keys, rows read as plain tuples."""
        assert column in ("id_number_bi", "student_id")
        rows = await fetch_in(session, _ENROLLED_SQL.format(column=column), list(set(keys)))
        found: dict[str, EnrolledPerson] = {}
        by_id: dict[str, EnrolledPerson] = {}
        for r in rows:
            person = by_id.get(r[1])
            if person is None:
                person = by_id[r[1]] = EnrolledPerson(r[1], r[16] or "", r[17], r[18], [])
                found[r[16] if column == "id_number_bi" else r[1]] = person
            person.enrollments.append(StoredEnrollment(*r[:13], bool(r[13]), bool(r[14]), r[15]))
        return found

    async def persons_by_id(
        self, session: AsyncSession, ids: Iterable[str]
    ) -> dict[str, StoredPerson]:
        """Stored persons by student id."""
        rows = await fetch_in(session, _PERSON_SQL.format(column="student_id"), list(set(ids)))
        return {r[0]: _person_tuple(r) for r in rows}

    async def students_by_k12_number(
        self, session: AsyncSession, numbers: Iterable[str]
    ) -> dict[str, str]:
        """Student id per 全国学籍号 (K-12 enrolments only: 学号 of universities are not unique)."""
        stages = ",".join(str(int(s)) for s in sorted(K12_STAGES))
        rows = await fetch_in(
            session,
            # The partial index's predicate, so that the index answers.
            "SELECT student_number, student_id FROM enrollment WHERE student_number {keys} "
            f"AND student_number NOT LIKE 'G%' AND stage IN ({stages})",
            list(set(numbers)),
        )
        return {r[0]: r[1] for r in rows}

    async def enrollments_of(
        self, session: AsyncSession, student_ids: Iterable[str]
    ) -> dict[str, list[StoredEnrollment]]:
        """Every enrolment of the students."""
        wanted = list(set(student_ids))
        found: dict[str, list[StoredEnrollment]] = {}
        for part in chunks(wanted):
            for row in await session.execute(select(E).where(E.c.student_id.in_(part))):
                found.setdefault(row.student_id, []).append(enrollment_from_row(row))
        return found

    async def student_rows(self, session: AsyncSession, ids: Sequence[str]) -> dict[str, Row[Any]]:
        """Full student rows (with ciphertexts) by id."""
        found: dict[str, Row[Any]] = {}
        for part in chunks(list(set(ids))):
            for row in await session.execute(select(S).where(S.c.student_id.in_(part))):
                found[row.student_id] = row
        return found

    async def student_id_by_bi(self, session: AsyncSession, bi: str) -> str | None:
        """The student holding an ID number."""
        return (
            await session.execute(select(S.c.student_id).where(S.c.id_number_bi == bi))
        ).scalar_one_or_none()

    async def visible(self, session: AsyncSession, student_id: str, path: str) -> bool:
        """True when one of the student's enrolments lies in the subtree."""
        stmt = select(
            exists().where(E.c.student_id == student_id, in_subtree(E.c.school_org_path, path))
        )
        return bool((await session.execute(stmt)).scalar())

    async def visible_ids(self, session: AsyncSession, ids: Sequence[str], path: str) -> set[str]:
        """The students among ids with an enrolment in the subtree."""
        found: set[str] = set()
        for part in chunks(list(set(ids))):
            rows = await session.execute(
                select(E.c.student_id)
                .where(E.c.student_id.in_(part), in_subtree(E.c.school_org_path, path))
                .distinct()
            )
            found.update(rows.scalars())
        return found

    async def current_enrollments(
        self, session: AsyncSession, student_ids: Sequence[str]
    ) -> dict[str, StoredEnrollment]:
        """The current enrolment of each student."""
        found: dict[str, StoredEnrollment] = {}
        for part in chunks(list(set(student_ids))):
            rows = await session.execute(
                select(E).where(E.c.student_id.in_(part), E.c.is_current.is_(True))
            )
            for row in rows:
                found[row.student_id] = enrollment_from_row(row)
        return found

    async def changes(
        self, session: AsyncSession, student_id: str, limit: int = 200
    ) -> list[Row[Any]]:
        """A student's history, newest first."""
        rows = await session.execute(
            select(t.student_change)
            .where(t.student_change.c.student_id == student_id)
            .order_by(t.student_change.c.id.desc())
            .limit(limit)
        )
        return list(rows)

    # -- writes ---------------------------------------------------------------------------------

    async def insert_students(self, session: AsyncSession, rows: list[tuple[Any, ...]]) -> None:
        """Insert new students (tuples in STUDENT_COLUMNS order)."""
        await bulk_insert_tuples(session, S, STUDENT_COLUMNS, rows)

    async def insert_enrollments(self, session: AsyncSession, rows: list[tuple[Any, ...]]) -> None:
        """Insert new enrolments (tuples in ENROLLMENT_COLUMNS order)."""
        await bulk_insert_tuples(session, E, ENROLLMENT_COLUMNS, rows)

    async def insert_changes(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        """Append history records."""
        for r in rows:
            for key in ("changed_fields", "before", "after"):
                if not isinstance(r[key], str):
                    r[key] = json.dumps(r[key], ensure_ascii=False)
        await bulk_insert(session, t.student_change, rows)

    async def update_students(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        """Update person facts (each dict: student_id + the new values of every person field)."""
        if not rows:
            return
        keys = [k for k in rows[0] if k != "student_id"]
        stmt = (
            update(S)
            .where(S.c.student_id == bindparam("b_student_id"))
            .values({k: bindparam(f"b_{k}") for k in keys})
        )
        await session.execute(stmt, [{f"b_{k}": v for k, v in r.items()} for r in rows])

    async def update_enrollments(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        """Update enrolments (each dict: enrollment_id + every enrolment field)."""
        if not rows:
            return
        keys = [k for k in rows[0] if k != "enrollment_id"]
        stmt = (
            update(E)
            .where(E.c.enrollment_id == bindparam("b_enrollment_id"))
            .values({k: bindparam(f"b_{k}") for k in keys})
        )
        await session.execute(stmt, [{f"b_{k}": v for k, v in r.items()} for r in rows])

    # -- search ---------------------------------------------------------------------------------

    def _search_where(self, f: SearchFilters) -> list[Any]:
        where: list[Any] = [in_subtree(E.c.school_org_path, f.path)]
        if f.current_only:
            where.append(E.c.is_current.is_(True))
        if f.stage:
            where.append(E.c.stage == f.stage)
        if f.grade:
            where.append(E.c.grade == f.grade)
        if f.class_name:
            where.append(E.c.class_name == f.class_name)
        if f.statuses:
            where.append(E.c.status.in_(f.statuses))
        if f.name_prefix:
            where.append(and_(S.c.name >= f.name_prefix, S.c.name < f.name_prefix + "\U0010ffff"))
        if f.id_number_bi:
            where.append(S.c.id_number_bi == f.id_number_bi)
        if f.student_number:
            where.append(E.c.student_number == f.student_number)
            where.append(E.c.student_number.not_like("G%"))
        if f.groups:
            m = t.membership
            cond = [m.c.student_id == E.c.student_id, m.c.status == 1, m.c.verification_status != 3]
            cond.append(m.c.special_group.in_(f.groups))
            if f.group_school_year:
                cond.append(m.c.school_year == f.group_school_year)
            where.append(exists().where(*cond))
        if f.hardship_levels:
            r = t.recognition
            where.append(
                exists().where(
                    r.c.student_id == E.c.student_id,
                    r.c.is_current.is_(True),
                    r.c.school_year == f.hardship_school_year,
                    r.c.level.in_(f.hardship_levels),
                )
            )
        return where

    async def search(
        self, session: AsyncSession, f: SearchFilters, *, offset: int, limit: int
    ) -> tuple[list[Row[Any]], int]:
        """Enrolments (with their student) matching the filters, and the total."""
        where = self._search_where(f)
        base = select(S, E).join(E, E.c.student_id == S.c.student_id).where(*where)
        total = (
            await session.execute(
                select(func.count()).select_from(
                    select(E.c.enrollment_id)
                    .join(S, E.c.student_id == S.c.student_id)
                    .where(*where)
                    .subquery()
                )
            )
        ).scalar_one()
        rows = await session.execute(
            base.order_by(
                E.c.school_org_code, E.c.grade, E.c.class_name, S.c.name, E.c.enrollment_id
            )
            .offset(offset)
            .limit(limit)
        )
        return list(rows), int(total)

    async def active_groups(
        self, session: AsyncSession, student_ids: Sequence[str], school_year: str
    ) -> dict[str, list[Row[Any]]]:
        """Active memberships of a school year per student."""
        m = t.membership
        found: dict[str, list[Row[Any]]] = {}
        for part in chunks(list(set(student_ids))):
            rows = await session.execute(
                select(
                    m.c.id, m.c.student_id, m.c.special_group, m.c.source, m.c.verification_status
                )
                .where(m.c.student_id.in_(part), m.c.status == 1, m.c.school_year == school_year)
                .order_by(m.c.special_group)
            )
            for row in rows:
                found.setdefault(row.student_id, []).append(row)
        return found

    async def find_by_name_or_number(
        self, session: AsyncSession, path: str, text: str
    ) -> list[str]:
        """Student ids in a subtree whose name or 学籍号 equals text (small lookups)."""
        rows = await session.execute(
            select(E.c.student_id)
            .join(S, S.c.student_id == E.c.student_id)
            .where(
                in_subtree(E.c.school_org_path, path),
                or_(S.c.name == text, E.c.student_number == text),
            )
            .distinct()
            .limit(100)
        )
        return list(rows.scalars())

"""Membership statements: created and ended by a batch, verification pages, progress, the
period listing and the students still to recognise."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    Row,
    and_,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from roster_service import tables as t
from roster_service.domain.common import ON_ROLL
from roster_service.domain.groups import (
    MatchStatus,
    MembershipStatus,
    RowAction,
    Source,
    Verification,
)
from roster_service.repository.sql import chunks, driver_value, fetch_rows, in_subtree

R = t.issued_row
M = t.membership
S = t.student


class NewMembership(NamedTuple):
    """What a MembershipAdded event carries of a new membership."""

    id: int
    student_id: str
    school_org_code: str
    school_org_path: str
    stage: int
    special_group: int
    source: int
    batch_id: str | None
    valid_from: str
    valid_to: str
    verification_status: int
    school_year: str
    issued_row_id: int | None


E = t.enrollment

# Columns of a membership created from an issued row, in insert_memberships' SELECT order.
_NEW_COLUMNS = (
    "student_id", "school_year", "special_group", "source", "batch_id", "issued_row_id",
    "issuer_org_code", "last_batch_id", "school_org_code", "school_org_path", "stage",
    "valid_from", "valid_to", "status", "verification_status", "verification_note",
    "verified_by", "evidence_note", "end_reason", "ended_on", "created_by", "created_at",
    "updated_at", "version",
)  # fmt: skip


@dataclass(slots=True)
class MembershipFilters:
    """Filters of ListMemberships."""

    path: str
    student_id: str = ""
    groups: tuple[int, ...] = ()
    source: int = 0
    statuses: tuple[int, ...] = ()
    verification_statuses: tuple[int, ...] = ()
    batch_id: str = ""
    school_year: str = ""
    period_lo: str = ""
    period_hi: str = ""


def _counts_in_period(lo: str, hi: str) -> list[Any]:
    return [
        M.c.verification_status != Verification.REJECTED,
        or_(M.c.valid_from == "", M.c.valid_from <= hi),
        or_(M.c.valid_to == "", M.c.valid_to >= lo),
        or_(M.c.status == MembershipStatus.ACTIVE, M.c.ended_on >= lo),
    ]


def _in_school_during(lo: str, hi: str) -> list[Any]:
    return [
        or_(E.c.enrolled_on == "", E.c.enrolled_on <= hi),
        or_(
            E.c.status == 1,
            E.c.left_on >= lo,
            and_(E.c.left_on == "", E.c.status_date >= lo),
        ),
    ]


def _needs_membership(batch_id: str) -> list[Any]:
    """Rows of a batch that make a new issued membership at its matching: matched ADD rows not
    linked to a membership the student already has."""
    return [
        R.c.batch_id == batch_id,
        R.c.match_status == MatchStatus.MATCHED,
        R.c.action == RowAction.ADD,
        R.c.membership_id.is_(None),
    ]


class MembershipQueries:
    """Membership statements: created and ended by a batch, verification pages, progress, the (mixed into GroupRepository)."""

    async def link_existing(
        self, session: AsyncSession, batch_id: str, school_year: str, now: datetime
    ) -> None:
        """Matched ADD rows of students already in the group keep that membership."""
        await session.execute(
            update(R)
            .where(
                R.c.batch_id == batch_id,
                R.c.match_status == MatchStatus.MATCHED,
                R.c.action == RowAction.ADD,
                M.c.student_id == R.c.student_id,
                M.c.special_group == R.c.special_group,
                M.c.school_year == school_year,
                M.c.status == MembershipStatus.ACTIVE,
            )
            .values(membership_id=M.c.id)
        )
        await session.execute(
            update(M)
            .where(R.c.batch_id == batch_id, R.c.membership_id == M.c.id)
            .values(last_batch_id=batch_id, updated_at=now)
        )

    async def school_pages(
        self, session: AsyncSession, batch_id: str, size: int
    ) -> list[tuple[str, str]]:
        """The schools whose matched ADD rows still need a membership, in path order, cut into
        pages of about `size` rows of whole schools (a bigger school is a page of its own):
        inclusive (first, last) school-path ranges for `insert_memberships`, so that each page's
        memberships make whole per-school MembershipsIssued events."""
        counts = await session.execute(
            select(R.c.school_org_path, func.count())
            .where(*_needs_membership(batch_id))
            .group_by(R.c.school_org_path)
            .order_by(R.c.school_org_path)
        )
        pages: list[tuple[str, str]] = []
        first, last, n = "", "", 0
        for path, count in counts:
            if n and n + count > size:
                pages.append((first, last))
                n = 0
            if not n:
                first = path
            last, n = path, n + count
        if n:
            pages.append((first, last))
        return pages

    async def insert_memberships(
        self,
        session: AsyncSession,
        batch: Any,
        actor: str,
        now: datetime,
        paths: tuple[str, str],
        skip_conflicts: bool = True,
    ) -> list[Any]:
        """New issued memberships for the matched ADD rows without one at the schools of an
        inclusive path range (a page of `school_pages`), returned as rows for `new_memberships`
        (which the caller applies while the database inserts the next page). Written with
        the driver's own statements: on PostgreSQL the statement is on its way once the
        coroutine first waits, so the caller can build the previous page's events while the
        database inserts this one. Without skip_conflicts an active membership of the same
        student, group and year fails the statement (the caller's savepoint takes it back)."""
        dialect = session.bind.dialect
        sql = (
            f"INSERT INTO membership ({', '.join(_NEW_COLUMNS)}) "
            "SELECT r.student_id, ?, r.special_group, ?, ?, r.id, ?, ?, r.school_org_code, "
            "r.school_org_path, r.stage, r.valid_from, r.valid_to, ?, ?, '', '', '', '', '', ?, "
            "?, ?, 1 FROM issued_row r "
            "WHERE r.batch_id = ? AND r.school_org_path >= ? AND r.school_org_path <= ? "
            "AND r.match_status = ? "
            "AND r.action = ? AND r.membership_id IS NULL "
            # What differs between the batch's memberships, and no more: the rows wait in
            # the socket's buffers while the caller builds the previous page's events.
            f"{'ON CONFLICT DO NOTHING ' if skip_conflicts else ''}"
            "RETURNING id, student_id, school_org_code, school_org_path, "
            "stage, special_group, valid_from, valid_to, issued_row_id, "
            "(SELECT b.id_number_bi FROM issued_row b WHERE b.id = membership.issued_row_id)"
        )
        stamp = driver_value(dialect, M.c.created_at, now)
        source, pending = int(Source.ISSUED), int(Verification.PENDING)
        params = (
            batch.school_year, source, batch.batch_id, batch.issuing_org_code, batch.batch_id,
            int(MembershipStatus.ACTIVE), pending, actor, stamp, stamp, batch.batch_id, paths[0],
            paths[1], int(MatchStatus.MATCHED), int(RowAction.ADD),
        )  # fmt: skip
        return await fetch_rows(session, sql, params)

    async def end_removed(self, session: AsyncSession, batch: Any, now: datetime) -> list[int]:
        """End issued memberships named by REMOVE rows (delta batches); returns their ids."""
        result = await session.execute(
            update(M)
            .where(
                R.c.batch_id == batch.batch_id,
                R.c.action == RowAction.REMOVE,
                R.c.student_id == M.c.student_id,
                R.c.special_group == M.c.special_group,
                M.c.school_year == batch.school_year,
                M.c.status == MembershipStatus.ACTIVE,
                M.c.source == Source.ISSUED,
            )
            .values(
                status=MembershipStatus.ENDED,
                end_reason="下发名单退出",
                ended_on=batch.as_of_date,
                ended_at=now,
                last_batch_id=batch.batch_id,
                updated_at=now,
                version=M.c.version + 1,
            )
            .returning(M.c.id)
        )
        return list(result.scalars())

    async def end_absent(
        self, session: AsyncSession, batch: Any, groups: Sequence[int], now: datetime
    ) -> list[int]:
        """FULL batches: end the issuer's memberships of its groups absent from the batch."""
        result = await session.execute(
            update(M)
            .where(
                M.c.source == Source.ISSUED,
                M.c.status == MembershipStatus.ACTIVE,
                M.c.issuer_org_code == batch.issuing_org_code,
                M.c.school_year == batch.school_year,
                M.c.special_group.in_(list(groups)),
                or_(M.c.last_batch_id.is_(None), M.c.last_batch_id != batch.batch_id),
            )
            .values(
                status=MembershipStatus.ENDED,
                end_reason="未出现在最新全量下发名单中",
                ended_on=batch.as_of_date,
                ended_at=now,
                last_batch_id=batch.batch_id,
                updated_at=now,
                version=M.c.version + 1,
            )
            .returning(M.c.id)
        )
        return list(result.scalars())

    async def memberships_by_ids(self, session: AsyncSession, ids: Sequence[int]) -> list[Row[Any]]:
        """Memberships (with student name, masked ID, blind index) by id."""
        found: list[Row[Any]] = []
        for part in chunks(list(ids)):
            rows = await session.execute(
                select(M, S.c.name.label("student_name"), S.c.id_number_masked, S.c.id_number_bi)
                .join(S, S.c.student_id == M.c.student_id)
                .where(M.c.id.in_(part))
                .order_by(M.c.id)
            )
            found.extend(rows)
        return found

    def _membership_where(self, f: MembershipFilters) -> list[Any]:
        where: list[Any] = [in_subtree(M.c.school_org_path, f.path)]
        if f.student_id:
            where.append(M.c.student_id == f.student_id)
        if f.groups:
            where.append(M.c.special_group.in_(list(f.groups)))
        if f.source:
            where.append(M.c.source == f.source)
        if f.statuses:
            where.append(M.c.status.in_(list(f.statuses)))
        if f.verification_statuses:
            where.append(M.c.verification_status.in_(list(f.verification_statuses)))
        if f.batch_id:
            where.append(or_(M.c.batch_id == f.batch_id, M.c.last_batch_id == f.batch_id))
        if f.school_year:
            where.append(M.c.school_year == f.school_year)
        if f.period_lo:
            where.extend(_counts_in_period(f.period_lo, f.period_hi))
        return where

    async def list_memberships(
        self, session: AsyncSession, f: MembershipFilters, *, offset: int, limit: int
    ) -> tuple[list[Row[Any]], int]:
        """Memberships in a subtree matching the filters, with the student's name."""
        where = self._membership_where(f)
        total = (
            await session.execute(select(func.count()).select_from(M).where(*where))
        ).scalar_one()
        rows = await session.execute(
            select(M, S.c.name.label("student_name"), S.c.id_number_masked, S.c.id_number_bi)
            .join(S, S.c.student_id == M.c.student_id)
            .where(*where)
            .order_by(M.c.school_org_code, M.c.special_group, S.c.name, M.c.id)
            .offset(offset)
            .limit(limit)
        )
        return list(rows), int(total)

    async def active_membership(
        self, session: AsyncSession, student_id: str, group: int, school_year: str
    ) -> Row[Any] | None:
        """The active membership of a student in a group for a school year."""
        return (
            await session.execute(
                select(M).where(
                    M.c.student_id == student_id,
                    M.c.special_group == group,
                    M.c.school_year == school_year,
                    M.c.status == MembershipStatus.ACTIVE,
                )
            )
        ).first()

    async def add_membership(self, session: AsyncSession, values: dict[str, Any]) -> int:
        """Insert one membership; returns its id."""
        return int(
            (await session.execute(insert(M).values(**values).returning(M.c.id))).scalar_one()
        )

    async def update_membership(
        self, session: AsyncSession, mid: int, values: dict[str, Any]
    ) -> None:
        """Change one membership (version bumped)."""
        await session.execute(
            update(M).where(M.c.id == mid).values(**values, version=M.c.version + 1)
        )

    async def progress(
        self,
        session: AsyncSession,
        *,
        path: str,
        school_year: str,
        batch_id: str,
        group: int,
    ) -> list[Row[Any]]:
        """Membership counts per school path × source × status × verification."""
        where: list[Any] = [in_subtree(M.c.school_org_path, path), M.c.school_year == school_year]
        if batch_id:
            where.append(or_(M.c.batch_id == batch_id, M.c.last_batch_id == batch_id))
        if group:
            where.append(M.c.special_group == group)
        rows = await session.execute(
            select(
                M.c.school_org_path,
                M.c.source,
                M.c.status,
                M.c.verification_status,
                func.count().label("n"),
            )
            .where(*where)
            .group_by(M.c.school_org_path, M.c.source, M.c.status, M.c.verification_status)
        )
        return list(rows)

    async def period_student_ids(
        self,
        session: AsyncSession,
        *,
        path: str,
        school_year: str,
        lo: str,
        hi: str,
        stage: int,
        cursor: str,
        limit: int,
    ) -> list[str]:
        """Special-group students enrolled in the subtree during a period, by id after cursor."""
        in_school = and_(
            E.c.student_id == M.c.student_id,
            in_subtree(E.c.school_org_path, path),
            *_in_school_during(lo, hi),
        )
        if stage:
            in_school = and_(in_school, E.c.stage == stage)
        stmt = (
            select(M.c.student_id)
            .where(
                M.c.school_year == school_year,
                M.c.student_id > cursor,
                *_counts_in_period(lo, hi),
                exists().where(in_school),
            )
            .group_by(M.c.student_id)
            .order_by(M.c.student_id)
            .limit(limit)
        )
        return list((await session.execute(stmt)).scalars())

    async def period_memberships(
        self, session: AsyncSession, student_ids: Sequence[str], school_year: str, lo: str, hi: str
    ) -> list[Row[Any]]:
        """Memberships that count in a period for the given students."""
        found: list[Row[Any]] = []
        for part in chunks(list(student_ids)):
            rows = await session.execute(
                select(
                    M.c.id, M.c.student_id, M.c.special_group, M.c.source, M.c.verification_status
                )
                .where(
                    M.c.student_id.in_(part),
                    M.c.school_year == school_year,
                    *_counts_in_period(lo, hi),
                )
                .order_by(M.c.student_id, M.c.special_group)
            )
            found.extend(rows)
        return found

    async def unrecognized(
        self,
        session: AsyncSession,
        *,
        path: str,
        school_year: str,
        offset: int,
        limit: int,
    ) -> tuple[list[Row[Any]], int]:
        """Students with a counting membership of the school year, enrolled (current) in the
        subtree, with no recognition for that year."""
        rec = t.recognition
        where = [
            E.c.is_current.is_(True),
            in_subtree(E.c.school_org_path, path),
            E.c.status.in_([int(s) for s in ON_ROLL]),
            exists().where(
                M.c.student_id == E.c.student_id,
                M.c.school_year == school_year,
                M.c.status == MembershipStatus.ACTIVE,
                M.c.verification_status != Verification.REJECTED,
            ),
            ~exists().where(rec.c.student_id == E.c.student_id, rec.c.school_year == school_year),
        ]
        total = (
            await session.execute(select(func.count()).select_from(E).where(*where))
        ).scalar_one()
        rows = await session.execute(
            select(E, S.c.name, S.c.id_number_masked)
            .join(S, S.c.student_id == E.c.student_id)
            .where(*where)
            .order_by(E.c.school_org_code, E.c.grade, E.c.class_name, S.c.name, E.c.student_id)
            .offset(offset)
            .limit(limit)
        )
        return list(rows), int(total)


def new_memberships(batch: Any, found: list[Any]) -> list[tuple[NewMembership, str]]:
    """The memberships `insert_memberships` returned, each with the blind index its row was
    matched by (what its event entry carries), by school path and id."""
    found.sort(key=lambda r: (r[3], r[0]))
    batch_id, year = batch.batch_id, batch.school_year
    source, pending = int(Source.ISSUED), int(Verification.PENDING)
    return [
        (
            NewMembership(
                r[0], r[1], r[2], r[3], r[4], r[5], source, batch_id, r[6], r[7], pending,
                year, r[8],
            ),
            r[9] or "",
        )
        for r in found
    ]  # fmt: skip

"""Issue batches, issued rows and memberships: the set-based statements of matching a batch to
the roster, and the queries of the verification pages."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Row,
    and_,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from roster_service import tables as t
from roster_service.domain.common import ON_ROLL
from roster_service.domain.groups import (
    MATCH_NOTES,
    BatchStatus,
    MatchInfo,
    MatchStatus,
)
from roster_service.repository.memberships import MembershipFilters, MembershipQueries
from roster_service.repository.sql import bulk_insert_tuples, fetch_in, in_subtree, path_end

B = t.issue_batch
R = t.issued_row
# Column order of a received chunk's rows (replace_chunk).
ISSUED_ROW_COLUMNS = (
    "batch_id", "chunk_number", "row_number", "special_group", "action", "name", "id_type",
    "id_number_bi", "id_number_masked", "id_number_enc", "household_region_code", "valid_from",
    "valid_to", "match_status", "match_note", "student_id", "school_org_code", "school_org_path",
    "stage",
)  # fmt: skip
M = t.membership
S = t.student
E = t.enrollment


def ancestors(path: str) -> list[str]:
    """The paths of a node and every ancestor ("/a/b/" → ["/a/", "/a/b/"])."""
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


class GroupRepository(MembershipQueries):
    """Special-group batches, rows and memberships."""

    # -- batches -------------------------------------------------------------------------------

    async def get_batch(
        self, session: AsyncSession, batch_id: str, *, lock: bool = False, share: bool = False
    ) -> Row[Any] | None:
        """One batch, on PostgreSQL locked FOR UPDATE (`lock`: committing, cancelling, matching)
        or FOR KEY SHARE (`share`: receiving a chunk; chunks do not wait for each other, while
        a commit or cancel waits for the chunks in flight and they for it)."""
        stmt = select(B).where(B.c.batch_id == batch_id)
        if session.bind.dialect.name == "postgresql":
            if lock:
                stmt = stmt.with_for_update()
            elif share:
                stmt = stmt.with_for_update(read=True, key_share=True)
        return (await session.execute(stmt)).first()

    async def add_batch(self, session: AsyncSession, values: dict[str, Any]) -> None:
        """Record a new batch."""
        await session.execute(insert(B).values(**values))

    async def update_batch(
        self, session: AsyncSession, batch_id: str, values: dict[str, Any]
    ) -> None:
        """Change a batch."""
        await session.execute(
            update(B).where(B.c.batch_id == batch_id).values(**values, version=B.c.version + 1)
        )

    async def list_batches(
        self,
        session: AsyncSession,
        *,
        path: str,
        statuses: Sequence[int],
        group: int,
        offset: int,
        limit: int,
    ) -> tuple[list[Row[Any]], int]:
        """Batches issued inside the subtree or by an ancestor of its root, newest first."""
        where: list[Any] = [
            or_(in_subtree(B.c.issuing_org_path, path), B.c.issuing_org_path.in_(ancestors(path)))
        ]
        if statuses:
            where.append(B.c.status.in_(list(statuses)))
        if group:
            where.append((literal(",") + B.c.groups + literal(",")).like(f"%,{int(group)},%"))
        total = (
            await session.execute(select(func.count()).select_from(B).where(*where))
        ).scalar_one()
        rows = await session.execute(
            select(B)
            .where(*where)
            .order_by(B.c.created_at.desc(), B.c.batch_id.desc())
            .offset(offset)
            .limit(limit)
        )
        return list(rows), int(total)

    async def previous_batch(self, session: AsyncSession, batch: Any) -> Row[Any] | None:
        """The latest committed batch of the same issuer, school year and groups before it."""
        stmt = (
            select(B)
            .where(
                B.c.issuing_org_code == batch.issuing_org_code,
                B.c.school_year == batch.school_year,
                B.c.groups == batch.groups,
                B.c.status == BatchStatus.COMMITTED,
                B.c.batch_id != batch.batch_id,
            )
            .order_by(B.c.committed_at.desc())
            .limit(1)
        )
        return (await session.execute(stmt)).first()

    # -- rows ----------------------------------------------------------------------------------

    async def replace_chunk(
        self,
        session: AsyncSession,
        batch_id: str,
        chunk: int,
        rows: list[tuple[Any, ...]],
        now: datetime,
    ) -> int:
        """Store a chunk's rows (tuples in ISSUED_ROW_COLUMNS order), replacing a resent chunk;
        returns the batch's row count as this transaction sees it (chunks stored side by side
        are counted once committed). The chunk's row is written first: a second delivery of
        the same chunk waits there for the first to finish, then replaces its rows."""
        insert_ = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
        C = t.issue_chunk
        stmt = insert_(C).values(
            batch_id=batch_id, chunk_number=chunk, row_count=len(rows), received_at=now
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["batch_id", "chunk_number"],
            set_={
                "row_count": stmt.excluded.row_count,
                "received_at": stmt.excluded.received_at,
                "deliveries": C.c.deliveries + 1,
            },
        ).returning(C.c.deliveries)
        deliveries = (await session.execute(stmt)).scalar_one()
        # A chunk's rows exist only beside its issue_chunk row: a first delivery has nothing
        # to replace (and a delete over a table that grew since its statistics may scan it).
        if deliveries > 1:
            await session.execute(
                delete(R).where(R.c.batch_id == batch_id, R.c.chunk_number == chunk)
            )
        await bulk_insert_tuples(session, R, ISSUED_ROW_COLUMNS, rows)
        return (await self.chunk_totals(session, [batch_id])).get(batch_id, (0, 0))[1]

    async def chunk_totals(
        self, session: AsyncSession, batch_ids: Sequence[str]
    ) -> dict[str, tuple[int, int]]:
        """(chunks, rows) received so far per batch: the progress of batches still receiving,
        whose own counts are set when they are committed."""
        if not batch_ids:
            return {}
        C = t.issue_chunk
        rows = await session.execute(
            select(C.c.batch_id, func.count(), func.coalesce(func.sum(C.c.row_count), 0))
            .where(C.c.batch_id.in_(list(batch_ids)))
            .group_by(C.c.batch_id)
        )
        return {b: (int(n), int(total)) for b, n, total in rows}

    async def chunk_numbers(self, session: AsyncSession, batch_id: str) -> list[int]:
        """Chunks received for a batch."""
        rows = await session.execute(
            select(t.issue_chunk.c.chunk_number)
            .where(t.issue_chunk.c.batch_id == batch_id)
            .order_by(t.issue_chunk.c.chunk_number)
        )
        return list(rows.scalars())

    async def delete_rows(self, session: AsyncSession, batch_id: str) -> None:
        """Drop a cancelled batch's rows."""
        await session.execute(delete(R).where(R.c.batch_id == batch_id))

    # -- matching (one transaction) ---------------------------------------------------------------

    async def mark_duplicates(self, session: AsyncSession, batch_id: str) -> None:
        """Rows repeating an earlier row's ID number and group become INVALID."""
        earlier = R.alias("earlier")
        await session.execute(
            update(R)
            .where(
                R.c.batch_id == batch_id,
                R.c.match_status != MatchStatus.INVALID,
                exists().where(
                    earlier.c.batch_id == batch_id,
                    earlier.c.id_number_bi == R.c.id_number_bi,
                    earlier.c.special_group == R.c.special_group,
                    earlier.c.id < R.c.id,
                    earlier.c.match_status != MatchStatus.INVALID,
                ),
            )
            .values(match_status=MatchStatus.INVALID, match_note=MATCH_NOTES["duplicate"])
        )

    async def match_info(self, session: AsyncSession, bis: Iterable[str]) -> dict[str, MatchInfo]:
        """Students by blind index with their current enrolment (one set-based query per chunk
        of keys, served by the blind-index and enrolment primary-key indexes)."""
        rows = await fetch_in(
            session,
            "SELECT s.id_number_bi, s.student_id, s.name, e.school_org_code, e.school_org_path, "
            "e.stage, e.status FROM student s "
            "JOIN enrollment e ON e.enrollment_id = s.current_enrollment_id "
            "WHERE s.id_number_bi {keys}",
            list(set(bis)),
        )
        return {r[0]: MatchInfo(r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows}

    async def refresh_rows(
        self, session: AsyncSession, batch_id: str, territory: str, since: datetime
    ) -> None:
        """Re-match rows whose student changed (or appeared) since the batch opened: rows were
        matched on receipt, the roster may have moved on before the commit."""
        inside = and_(E.c.school_org_path >= territory, E.c.school_org_path < path_end(territory))
        on_roll = E.c.status.in_([int(s) for s in ON_ROLL])
        status = case(
            (~inside, int(MatchStatus.NOT_FOUND)),
            (~on_roll, int(MatchStatus.NOT_ENROLLED)),
            (S.c.name != R.c.name, int(MatchStatus.AMBIGUOUS)),
            else_=int(MatchStatus.MATCHED),
        )
        note = case(
            (~inside, MATCH_NOTES["outside"]),
            (~on_roll, MATCH_NOTES["not_enrolled"]),
            (S.c.name != R.c.name, MATCH_NOTES["name_mismatch"]),
            else_="",
        )
        await session.execute(
            update(R)
            .where(
                R.c.batch_id == batch_id,
                R.c.match_status != MatchStatus.INVALID,
                S.c.updated_at >= since,
                S.c.id_number_bi == R.c.id_number_bi,
                E.c.enrollment_id == S.c.current_enrollment_id,
            )
            .values(
                student_id=S.c.student_id,
                school_org_code=E.c.school_org_code,
                school_org_path=E.c.school_org_path,
                stage=E.c.stage,
                match_status=status,
                match_note=note,
            )
        )
        await session.execute(
            update(R)
            .where(R.c.batch_id == batch_id, R.c.match_status == MatchStatus.PENDING)
            .values(match_status=MatchStatus.NOT_FOUND, match_note=MATCH_NOTES["not_found"])
        )

    async def match_counts(self, session: AsyncSession, batch_id: str) -> dict[int, int]:
        """Rows per match status."""
        rows = await session.execute(
            select(R.c.match_status, func.count())
            .where(R.c.batch_id == batch_id)
            .group_by(R.c.match_status)
        )
        return {int(s): int(n) for s, n in rows}

    async def diff_counts(
        self, session: AsyncSession, batch_id: str, previous_id: str
    ) -> tuple[int, int, int]:
        """(added, removed, changed) students of a batch against the previous one."""
        cur, prev = R.alias("cur"), R.alias("prev")
        valid = lambda a: a.c.match_status != MatchStatus.INVALID  # noqa: E731
        same = lambda a, b: and_(  # noqa: E731
            a.c.id_number_bi == b.c.id_number_bi, a.c.special_group == b.c.special_group
        )
        added = select(func.count()).select_from(cur).where(
            cur.c.batch_id == batch_id, valid(cur),
            ~exists().where(prev.c.batch_id == previous_id, valid(prev), same(prev, cur)),
        )  # fmt: skip
        removed = select(func.count()).select_from(prev).where(
            prev.c.batch_id == previous_id, valid(prev),
            ~exists().where(cur.c.batch_id == batch_id, valid(cur), same(prev, cur)),
        )  # fmt: skip
        changed = (
            select(func.count())
            .select_from(cur.join(prev, same(prev, cur)))
            .where(
                cur.c.batch_id == batch_id,
                prev.c.batch_id == previous_id,
                valid(cur),
                valid(prev),
                _differs(cur, prev),
            )
        )
        return (
            int((await session.execute(added)).scalar_one()),
            int((await session.execute(removed)).scalar_one()),
            int((await session.execute(changed)).scalar_one()),
        )

    async def diff_rows(
        self,
        session: AsyncSession,
        kind: int,
        batch_id: str,
        previous_id: str,
        offset: int,
        limit: int,
    ) -> list[Row[Any]]:
        """One kind of change, paged: rows of the batch (added, changed) or of the previous one
        (removed), each with the other side's row id."""
        cur, prev = R.alias("cur"), R.alias("prev")
        valid = lambda a: a.c.match_status != MatchStatus.INVALID  # noqa: E731
        same = lambda a, b: and_(  # noqa: E731
            a.c.id_number_bi == b.c.id_number_bi, a.c.special_group == b.c.special_group
        )
        if kind == 1:
            stmt = select(cur, literal(None).label("other_id")).where(
                cur.c.batch_id == batch_id, valid(cur),
                ~exists().where(prev.c.batch_id == previous_id, valid(prev), same(prev, cur)),
            ).order_by(cur.c.id)  # fmt: skip
        elif kind == 2:
            stmt = select(prev, literal(None).label("other_id")).where(
                prev.c.batch_id == previous_id, valid(prev),
                ~exists().where(cur.c.batch_id == batch_id, valid(cur), same(prev, cur)),
            ).order_by(prev.c.id)  # fmt: skip
        else:
            stmt = (
                select(
                    cur,
                    prev.c.id.label("other_id"),
                    prev.c.name.label("prev_name"),
                    prev.c.household_region_code.label("prev_region"),
                    prev.c.valid_from.label("prev_from"),
                    prev.c.valid_to.label("prev_to"),
                )
                .select_from(cur.join(prev, same(prev, cur)))
                .where(
                    cur.c.batch_id == batch_id,
                    prev.c.batch_id == previous_id,
                    valid(cur),
                    valid(prev),
                    _differs(cur, prev),
                )
                .order_by(cur.c.id)
            )
        return list(await session.execute(stmt.offset(offset).limit(limit)))

    async def action_rows(
        self, session: AsyncSession, batch_id: str, action: int, offset: int, limit: int
    ) -> tuple[list[Row[Any]], int]:
        """Valid rows of a delta batch with one action, paged, and their count."""
        where = [
            R.c.batch_id == batch_id,
            R.c.action == action,
            R.c.match_status != MatchStatus.INVALID,
        ]
        total = (
            await session.execute(select(func.count()).select_from(R).where(*where))
        ).scalar_one()
        rows = await session.execute(
            select(R, literal(None).label("other_id"))
            .where(*where)
            .order_by(R.c.id)
            .offset(offset)
            .limit(limit)
        )
        return list(rows), int(total)

    # -- issued rows for the pages ---------------------------------------------------------------

    async def list_rows(
        self,
        session: AsyncSession,
        *,
        batch_id: str,
        path: str | None,
        match_statuses: Sequence[int],
        verification_statuses: Sequence[int],
        group: int,
        offset: int,
        limit: int,
    ) -> tuple[list[Row[Any]], int]:
        """Rows of a batch (all, or those matched to schools in a subtree) with membership."""
        m1, m2 = M.alias("m1"), M.alias("m2")
        where: list[Any] = [R.c.batch_id == batch_id]
        if path is not None:
            where.append(in_subtree(R.c.school_org_path, path))
        if match_statuses:
            where.append(R.c.match_status.in_(list(match_statuses)))
        if group:
            where.append(R.c.special_group == group)
        verification = func.coalesce(m1.c.verification_status, m2.c.verification_status)
        if verification_statuses:
            where.append(verification.in_(list(verification_statuses)))
        # A membership the row created is found through its student (the student index):
        # an index on membership.issued_row_id would cost every issued membership its upkeep.
        joined = R.outerjoin(m1, m1.c.id == R.c.membership_id).outerjoin(
            m2, and_(m2.c.student_id == R.c.student_id, m2.c.issued_row_id == R.c.id)
        )
        total = (
            await session.execute(select(func.count()).select_from(joined).where(*where))
        ).scalar_one()
        rows = await session.execute(
            select(
                R,
                func.coalesce(m1.c.id, m2.c.id).label("mid"),
                verification.label("verification"),
            )
            .select_from(joined)
            .where(*where)
            .order_by(R.c.row_number, R.c.id)
            .offset(offset)
            .limit(limit)
        )
        return list(rows), int(total)

    # -- memberships -----------------------------------------------------------------------------


def _differs(a: Any, b: Any) -> Any:
    return or_(
        a.c.name != b.c.name,
        a.c.household_region_code != b.c.household_region_code,
        a.c.valid_from != b.c.valid_from,
        a.c.valid_to != b.c.valid_to,
    )


__all__ = ["GroupRepository", "MembershipFilters", "ancestors"]

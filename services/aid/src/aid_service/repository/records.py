"""Aid records, their transitions, and the aggregates over them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, and_, bindparam, func, select, text, true, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from aid_service import tables as t
from aid_service.domain.enums import (
    Action,
    Category,
    HardshipLevel,
    IdType,
    Level,
    OwnerType,
    RecordStatus,
    Stage,
    Term,
)
from aid_service.domain.periods import AidPeriod
from aid_service.domain.records import AidRecord, ChainStep, Transition
from aid_service.repository.common import aware, chunks, prefix_range
from aid_service.repository.record_writer import RECORD_COLUMNS, RecordWriter, record_writer

_r = t.aid_record
_tr = t.aid_record_transition

SQLITE_BULK_ROWS = 1000
DATETIME_COLUMNS = ("entered_at", "submitted_at", "approved_at", "updated_at")


def sqlite_datetime(value: datetime | None) -> str | None:
    """A UTC datetime as SQLAlchemy stores it in SQLite (so reads through SQLAlchemy parse it)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def chain_text(chain: Iterable[ChainStep]) -> str:
    """ "4:440106,3:440100" (level:org code, bottom-up)."""
    return ",".join(f"{int(lvl)}:{code}" for lvl, code in chain)


def parse_chain(text: str) -> tuple[ChainStep, ...]:
    """The inverse of chain_text."""
    out = []
    for part in text.split(","):
        if part:
            lvl, code = part.split(":", 1)
            out.append((Level(int(lvl)), code))
    return tuple(out)


def _record(row: Any) -> AidRecord:
    return AidRecord(
        record_id=row.record_id,
        project_code=row.project_code,
        period=AidPeriod(row.school_year, Term(row.term)),
        student_id=row.student_id,
        id_number_blind_index=row.id_number_blind_index,
        id_number_masked=row.id_number_masked,
        id_type=IdType(row.id_type),
        student_name=row.student_name,
        student_number=row.student_number,
        school_org_code=row.school_org_code,
        school_org_path=row.school_org_path,
        stage=Stage(row.stage),
        category=Category(row.category),
        owner_type=OwnerType(row.owner_type),
        grade=row.grade,
        class_name=row.class_name,
        amount_fen=row.amount_fen,
        tier_code=row.tier_code,
        hardship_level=HardshipLevel(row.hardship_level) if row.hardship_level else None,
        bank_name=row.bank_name,
        bank_card_enc=row.bank_card_enc,
        bank_card_masked=row.bank_card_masked,
        remark=row.remark,
        status=RecordStatus(row.status),
        pending_level=Level(row.pending_level) if row.pending_level else None,
        pending_org_code=row.pending_org_code,
        audit_chain=parse_chain(row.audit_chain),
        last_opinion=row.last_opinion,
        entered_by=row.entered_by,
        entered_at=aware(row.entered_at),
        entry_action=Action(row.entry_action),
        entered_amount_fen=row.entered_amount_fen,
        import_id=row.import_id,
        submitted_by=row.submitted_by,
        submitted_at=aware(row.submitted_at),
        approved_at=aware(row.approved_at),
        approved_level=Level(row.approved_level) if row.approved_level else None,
        updated_at=aware(row.updated_at),
        version=row.version,
        dedup_key=row.dedup_key,
    )


def record_values(r: AidRecord) -> dict[str, Any]:
    """Column values of a record."""
    return {
        "record_id": r.record_id,
        "project_code": r.project_code,
        "school_year": r.period.school_year,
        "term": int(r.period.term),
        "student_id": r.student_id,
        "id_number_blind_index": r.id_number_blind_index,
        "id_number_masked": r.id_number_masked,
        "id_type": int(r.id_type),
        "student_name": r.student_name,
        "student_number": r.student_number,
        "school_org_code": r.school_org_code,
        "school_org_path": r.school_org_path,
        "stage": int(r.stage),
        "category": int(r.category),
        "owner_type": int(r.owner_type),
        "grade": r.grade,
        "class_name": r.class_name,
        "amount_fen": r.amount_fen,
        "tier_code": r.tier_code,
        "hardship_level": int(r.hardship_level) if r.hardship_level else None,
        "bank_name": r.bank_name,
        "bank_card_enc": r.bank_card_enc,
        "bank_card_masked": r.bank_card_masked,
        "remark": r.remark,
        "status": int(r.status),
        "pending_level": int(r.pending_level) if r.pending_level else None,
        "pending_org_code": r.pending_org_code,
        "audit_chain": chain_text(r.audit_chain),
        "last_opinion": r.last_opinion,
        "entered_by": r.entered_by,
        "entered_at": r.entered_at,
        "entry_action": int(r.entry_action),
        "entered_amount_fen": r.entered_amount_fen,
        "import_id": r.import_id,
        "submitted_by": r.submitted_by,
        "submitted_at": r.submitted_at,
        "approved_at": r.approved_at,
        "approved_level": int(r.approved_level) if r.approved_level else None,
        "updated_at": r.updated_at,
        "version": r.version,
        "dedup_key": r.dedup_key,
    }


def _transition_values(x: Transition) -> dict[str, Any]:
    return {
        "record_id": x.record_id,
        "seq": x.seq,
        "action": int(x.action),
        "from_status": int(x.from_status) if x.from_status else None,
        "to_status": int(x.to_status),
        "level": int(x.level),
        "org_code": x.org_code,
        "actor_account_id": x.actor_account_id,
        "opinion": x.opinion,
        "amount_fen": x.amount_fen,
        "at": x.at,
    }


@dataclass(frozen=True)
class RecordQuery:
    """Filters of a record list, export or bulk decision (scope_path always applies)."""

    scope_path: str
    project_code: str = ""
    period: AidPeriod | None = None
    statuses: tuple[RecordStatus, ...] = ()
    pending_org_code: str = ""
    stage: Stage | None = None
    categories: tuple[Category, ...] = ()
    student_name: str = ""
    blind_index: str = ""
    student_number: str = ""
    grade: str = ""
    class_name: str = ""
    entered_by: str = ""
    import_id: str = ""

    def where(self) -> Any:
        """The SQL condition."""
        conds: list[Any] = [prefix_range(_r.c.school_org_path, self.scope_path)]
        if self.project_code:
            conds.append(_r.c.project_code == self.project_code)
        if self.period is not None:
            conds.append(_r.c.school_year == self.period.school_year)
            conds.append(_r.c.term == int(self.period.term))
        if self.statuses:
            conds.append(_r.c.status.in_([int(s) for s in self.statuses]))
        else:
            conds.append(_r.c.status != int(RecordStatus.DELETED))
        if self.pending_org_code:
            conds.append(_r.c.pending_org_code == self.pending_org_code)
        if self.stage is not None:
            conds.append(_r.c.stage == int(self.stage))
        if self.categories:
            conds.append(_r.c.category.in_([int(c) for c in self.categories]))
        if self.student_name:
            conds.append(_r.c.student_name.like(f"{self.student_name}%"))
        if self.blind_index:
            conds.append(_r.c.id_number_blind_index == self.blind_index)
        if self.student_number:
            conds.append(_r.c.student_number == self.student_number)
        if self.grade:
            conds.append(_r.c.grade == self.grade)
        if self.class_name:
            conds.append(_r.c.class_name == self.class_name)
        if self.entered_by:
            conds.append(_r.c.entered_by == self.entered_by)
        if self.import_id:
            conds.append(_r.c.import_id == self.import_id)
        return and_(*conds)


class RecordRepository:
    """aid_record and aid_record_transition."""

    async def insert_many(self, session: AsyncSession, records: Sequence[AidRecord]) -> None:
        """Store new records."""
        sqlite = session.bind.dialect.name == "sqlite"
        rows = []
        for r in records:
            values = record_values(r)
            if sqlite:
                for name in DATETIME_COLUMNS:
                    values[name] = sqlite_datetime(values[name])
            rows.append(tuple(values[c] for c in RECORD_COLUMNS))
        await self.insert_rows(session, rows)

    async def insert_rows(self, session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> None:
        """Store new records given as tuples in RECORD_COLUMNS order (bulk imports): COPY on
        PostgreSQL, the driver's executemany on SQLite (datetimes as sqlite_datetime text)."""
        if not rows:
            return
        out = await self.writer(session, bulk=len(rows) > SQLITE_BULK_ROWS)
        try:
            await out.add(rows)
        except BaseException:
            await out.abort()
            raise
        await out.close()

    async def writer(self, session: AsyncSession, *, bulk: bool) -> RecordWriter:
        """A RecordWriter in the session's transaction (bulk: many rows to come). Close it (or
        abort it) before the transaction ends."""
        return await record_writer(session, bulk=bulk)

    async def get(
        self, session: AsyncSession, record_id: str, *, lock: bool = False
    ) -> AidRecord | None:
        """One record (locked for update on PostgreSQL when lock)."""
        stmt = select(_r).where(_r.c.record_id == record_id)
        if lock and session.bind.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        row = (await session.execute(stmt)).first()
        return _record(row) if row else None

    async def get_many(
        self, session: AsyncSession, ids: Sequence[str], *, lock: bool = False
    ) -> dict[str, AidRecord]:
        """Records by id (locked for update on PostgreSQL when lock)."""
        out: dict[str, AidRecord] = {}
        pg = session.bind.dialect.name == "postgresql"
        for part in chunks(list(dict.fromkeys(ids)), 1000):
            stmt = select(_r).where(_r.c.record_id.in_(part))
            if lock and pg:
                stmt = stmt.with_for_update()
            out.update({r.record_id: _record(r) for r in await session.execute(stmt)})
        return out

    async def find(
        self,
        session: AsyncSession,
        query: RecordQuery,
        *,
        offset: int = 0,
        limit: int | None = None,
        lock: bool = False,
    ) -> list[AidRecord]:
        """Records matching a query, in entry order (ids are time-ordered)."""
        stmt = select(_r).where(query.where()).order_by(_r.c.record_id).offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        if lock and session.bind.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        return [_record(r) for r in await session.execute(stmt)]

    async def count(self, session: AsyncSession, query: RecordQuery) -> int:
        """Records matching a query."""
        stmt = select(func.count()).select_from(_r).where(query.where())
        return int((await session.execute(stmt)).scalar() or 0)

    async def save_states(
        self, session: AsyncSession, records: Sequence[AidRecord], fields: Sequence[str]
    ) -> None:
        """Write the given fields of changed records, grouping equal values in one statement."""
        groups: dict[tuple[Any, ...], list[str]] = {}
        for r in records:
            values = record_values(r)
            key = tuple((f, values[f]) for f in fields)
            groups.setdefault(key, []).append(r.record_id)
        for key, ids in groups.items():
            values = dict(key)
            for part in chunks(ids, 1000):
                await session.execute(
                    update(_r)
                    .where(_r.c.record_id.in_(part))
                    .values(**values, version=_r.c.version + 1)
                )

    async def save(self, session: AsyncSession, r: AidRecord, expected_version: int) -> bool:
        """Write every field of one record if its version is expected_version."""
        values = record_values(r)
        values.pop("record_id")
        result = await session.execute(
            update(_r)
            .where(and_(_r.c.record_id == r.record_id, _r.c.version == expected_version))
            .values(**values)
        )
        return result.rowcount == 1

    async def add_transitions(self, session: AsyncSession, items: Sequence[Transition]) -> None:
        """Keep transitions in the history."""
        for part in chunks(items, 2000):
            await session.execute(_tr.insert(), [_transition_values(x) for x in part])

    async def transitions(self, session: AsyncSession, record_id: str) -> list[Transition]:
        """The stored transitions of a record, in order."""
        rows = await session.execute(
            select(_tr).where(_tr.c.record_id == record_id).order_by(_tr.c.seq)
        )
        return [
            Transition(
                record_id=r.record_id,
                seq=r.seq,
                action=Action(r.action),
                from_status=RecordStatus(r.from_status) if r.from_status else None,
                to_status=RecordStatus(r.to_status),
                level=Level(r.level),
                org_code=r.org_code,
                actor_account_id=r.actor_account_id,
                opinion=r.opinion,
                amount_fen=r.amount_fen,
                at=aware(r.at),  # type: ignore[arg-type]
            )
            for r in rows
        ]

    async def taken_slots(self, session: AsyncSession, keys: Sequence[str]) -> dict[str, str]:
        """dedup key → record id of the live records already holding those slots (one statement:
        a JSON array on SQLite, an array parameter on PostgreSQL)."""
        if not keys:
            return {}
        if session.bind.dialect.name == "postgresql":
            stmt = text(
                "SELECT dedup_key, record_id FROM aid_record WHERE dedup_key = ANY(:keys)"
            ).bindparams(bindparam("keys", type_=ARRAY(String)))
            rows = await session.execute(stmt, {"keys": list(keys)})
        else:
            rows = await session.execute(
                text(
                    "SELECT dedup_key, record_id FROM aid_record "
                    "WHERE dedup_key IN (SELECT value FROM json_each(:keys))"
                ),
                {"keys": json.dumps(list(keys))},
            )
        return {k: rid for k, rid in rows}

    async def live_of_students(
        self,
        session: AsyncSession,
        *,
        student_ids: Sequence[str],
        project_codes: Sequence[str],
        school_year: str,
    ) -> list[tuple[str, str, Term, str]]:
        """(student id, project code, term, record id) of live records of those projects."""
        out: list[tuple[str, str, Term, str]] = []
        live = [
            int(s) for s in RecordStatus if s not in (RecordStatus.DELETED, RecordStatus.REVOKED)
        ]
        for part in chunks(list(dict.fromkeys(student_ids)), 900):
            rows = await session.execute(
                select(_r.c.student_id, _r.c.project_code, _r.c.term, _r.c.record_id).where(
                    and_(
                        _r.c.student_id.in_(part),
                        _r.c.project_code.in_(list(project_codes)),
                        _r.c.school_year == school_year,
                        _r.c.status.in_(live),
                    )
                )
            )
            out.extend((s, p, Term(tm), rid) for s, p, tm, rid in rows)
        return out

    async def live_count(
        self, session: AsyncSession, *, school_org_code: str, project_code: str, period: AidPeriod
    ) -> int:
        """Live records of a school under a project in a period (for its quota)."""
        stmt = (
            select(func.count())
            .select_from(_r)
            .where(
                and_(
                    _r.c.school_org_code == school_org_code,
                    _r.c.project_code == project_code,
                    _r.c.school_year == period.school_year,
                    _r.c.term == int(period.term),
                    _r.c.dedup_key.is_not(None),
                )
            )
        )
        return int((await session.execute(stmt)).scalar() or 0)

    async def has_records(self, session: AsyncSession, project_code: str) -> bool:
        """True when any record (in any state) was entered under the project."""
        stmt = select(_r.c.record_id).where(_r.c.project_code == project_code).limit(1)
        return (await session.execute(stmt)).first() is not None

    async def stats(
        self,
        session: AsyncSession,
        *,
        period: AidPeriod,
        scope_path: str,
        project_code: str,
        categories: Sequence[Category],
        stage: Stage | None,
        dims: Sequence[str],
    ) -> tuple[list[Any], list[Any]]:
        """(counts and sums by school × dims × status, approved students by school × dims)."""
        conds: list[Any] = [
            _r.c.school_year == period.school_year,
            _r.c.term == int(period.term),
            prefix_range(_r.c.school_org_path, scope_path),
            _r.c.status != int(RecordStatus.DELETED),
        ]
        if project_code:
            conds.append(_r.c.project_code == project_code)
        if categories:
            conds.append(_r.c.category.in_([int(c) for c in categories]))
        if stage is not None:
            conds.append(_r.c.stage == int(stage))
        keys = [_r.c.school_org_code, _r.c.school_org_path, *[_r.c[d] for d in dims]]
        totals = await session.execute(
            select(*keys, _r.c.status, func.count(), func.coalesce(func.sum(_r.c.amount_fen), 0))
            .where(and_(*conds))
            .group_by(*keys, _r.c.status)
        )
        approved = await session.execute(
            select(*keys, func.count(func.distinct(_r.c.student_id)))
            .where(and_(*conds, _r.c.status == int(RecordStatus.APPROVED)))
            .group_by(*keys)
        )
        return list(totals), list(approved)

    async def approved_page(
        self,
        session: AsyncSession,
        *,
        period: AidPeriod,
        scope_path: str,
        categories: Sequence[Category],
        project_code: str,
        after: str,
        limit: int,
    ) -> list[AidRecord]:
        """Approved records of a period by record id, after a cursor."""
        conds: list[Any] = [
            _r.c.school_year == period.school_year,
            _r.c.term == int(period.term),
            _r.c.status == int(RecordStatus.APPROVED),
            prefix_range(_r.c.school_org_path, scope_path),
            _r.c.record_id > after if after else true(),
        ]
        if categories:
            conds.append(_r.c.category.in_([int(c) for c in categories]))
        if project_code:
            conds.append(_r.c.project_code == project_code)
        rows = await session.execute(
            select(_r).where(and_(*conds)).order_by(_r.c.record_id).limit(limit)
        )
        return [_record(r) for r in rows]

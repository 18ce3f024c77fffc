"""Queries of the hash-chained audit log (审计日志): appends, queries, chain rows and purges."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    and_,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from identity_service import tables as t
from identity_service.domain.audit import ChainRow
from identity_service.repository.base import (
    CHUNK,
    like_prefix,
    utc,
)

# Audit log
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditColumns:
    """The indexed columns of one entry, extracted from its payload."""

    event_id: str
    occurred_at: datetime
    actor_account_id: str
    actor_org_code: str
    org_path: str
    action: str
    object_type: str
    object_id: str
    outcome: int
    sensitive_read: bool
    correlation_id: str


@dataclass(frozen=True)
class AuditRecord:
    """One stored entry."""

    seq: int
    recorded_at: datetime
    payload: bytes
    prev_hash: str
    hash: str
    columns: AuditColumns


@dataclass(frozen=True)
class AuditFilter:
    """QueryAuditLog filters."""

    scope_path: str
    actor_account_id: str = ""
    action_prefix: str = ""
    object_type: str = ""
    object_id: str = ""
    outcome: int = 0
    sensitive_reads_only: bool = False
    since: datetime | None = None
    until: datetime | None = None
    correlation_id: str = ""


@dataclass(frozen=True)
class AuditHead:
    """The chain head and the purge checkpoint."""

    last_seq: int
    last_hash: str
    purged_through_seq: int
    purged_through_hash: str


def _audit_record(row: Any) -> AuditRecord:
    return AuditRecord(
        seq=int(row.seq),
        recorded_at=utc(row.recorded_at),  # type: ignore[arg-type]
        payload=bytes(row.payload),
        prev_hash=row.prev_hash,
        hash=row.hash,
        columns=AuditColumns(
            event_id=row.event_id,
            occurred_at=utc(row.occurred_at),  # type: ignore[arg-type]
            actor_account_id=row.actor_account_id,
            actor_org_code=row.actor_org_code,
            org_path=row.org_path,
            action=row.action,
            object_type=row.object_type,
            object_id=row.object_id,
            outcome=int(row.outcome),
            sensitive_read=bool(row.sensitive_read),
            correlation_id=row.correlation_id,
        ),
    )


class AuditRepository:
    """The append-only audit_log and its head row."""

    async def head_for_update(self, session: AsyncSession) -> AuditHead:
        """The chain head, locked until commit (appends are serialised so seq stays gap-free)."""
        row = (
            await session.execute(
                select(t.audit_head).where(t.audit_head.c.id == 1).with_for_update()
            )
        ).one()
        return AuditHead(
            row.last_seq, row.last_hash, row.purged_through_seq, row.purged_through_hash
        )

    async def head(self, session: AsyncSession) -> AuditHead:
        """The chain head (unlocked)."""
        row = (await session.execute(select(t.audit_head).where(t.audit_head.c.id == 1))).one()
        return AuditHead(
            row.last_seq, row.last_hash, row.purged_through_seq, row.purged_through_hash
        )

    async def known_event_ids(self, session: AsyncSession, event_ids: Sequence[str]) -> set[str]:
        """Which event ids are already stored."""
        found: set[str] = set()
        for start in range(0, len(event_ids), CHUNK):
            rows = await session.execute(
                select(t.audit_log.c.event_id).where(
                    t.audit_log.c.event_id.in_(event_ids[start : start + CHUNK])
                )
            )
            found.update(rows.scalars())
        return found

    async def append(
        self,
        session: AsyncSession,
        rows: Sequence[tuple[int, datetime, bytes, str, str, AuditColumns]],
        head: AuditHead,
    ) -> None:
        """Insert chained rows (seq, recorded_at, payload, prev_hash, hash, columns) and move the head."""
        await session.execute(
            insert(t.audit_log),
            [
                {
                    "seq": seq,
                    "recorded_at": recorded_at,
                    "payload": payload,
                    "prev_hash": prev_hash,
                    "hash": digest,
                    **cols.__dict__,
                }
                for seq, recorded_at, payload, prev_hash, digest, cols in rows
            ],
        )
        await session.execute(
            update(t.audit_head)
            .where(t.audit_head.c.id == 1)
            .values(last_seq=head.last_seq, last_hash=head.last_hash)
        )

    async def query(
        self, session: AsyncSession, flt: AuditFilter, *, offset: int, limit: int
    ) -> tuple[list[AuditRecord], int]:
        """A page of entries, newest first, and the total matching."""
        c = t.audit_log.c
        conds = [c.org_path.like(like_prefix(flt.scope_path), escape="\\")]
        if flt.actor_account_id:
            conds.append(c.actor_account_id == flt.actor_account_id)
        if flt.action_prefix:
            conds.append(c.action.startswith(flt.action_prefix, autoescape=True))
        if flt.object_type:
            conds.append(c.object_type == flt.object_type)
        if flt.object_id:
            conds.append(c.object_id == flt.object_id)
        if flt.outcome:
            conds.append(c.outcome == flt.outcome)
        if flt.sensitive_reads_only:
            conds.append(c.sensitive_read.is_(True))
        if flt.since is not None:
            conds.append(c.recorded_at >= flt.since)
        if flt.until is not None:
            conds.append(c.recorded_at < flt.until)
        if flt.correlation_id:
            conds.append(c.correlation_id == flt.correlation_id)
        where = and_(*conds)
        total = (
            await session.execute(select(func.count()).select_from(t.audit_log).where(where))
        ).scalar_one()
        rows = await session.execute(
            select(t.audit_log).where(where).order_by(c.seq.desc()).offset(offset).limit(limit)
        )
        return [_audit_record(r) for r in rows], int(total)

    async def chain_rows(
        self, session: AsyncSession, *, from_seq: int, to_seq: int, batch: int = 2000
    ) -> list[AuditRecord]:
        """Entries from_seq..to_seq in order (one batch)."""
        rows = await session.execute(
            select(t.audit_log)
            .where(t.audit_log.c.seq >= from_seq, t.audit_log.c.seq <= to_seq)
            .order_by(t.audit_log.c.seq)
            .limit(batch)
        )
        return [_audit_record(r) for r in rows]

    async def hash_of(self, session: AsyncSession, seq: int) -> str | None:
        """The stored hash of one entry."""
        return (
            await session.execute(select(t.audit_log.c.hash).where(t.audit_log.c.seq == seq))
        ).scalar_one_or_none()

    async def purge_through(self, session: AsyncSession, *, cutoff: datetime, now: datetime) -> int:
        """Delete the oldest entries recorded before cutoff (a prefix of the chain) and move the
        checkpoint to the last deleted one; returns how many were deleted."""
        c = t.audit_log.c
        first_young = (
            await session.execute(select(func.min(c.seq)).where(c.recorded_at >= cutoff))
        ).scalar_one_or_none()
        head = await self.head_for_update(session)
        last = (int(first_young) - 1) if first_young is not None else head.last_seq
        if last <= head.purged_through_seq:
            return 0
        checkpoint = await self.hash_of(session, last)
        if checkpoint is None:
            return 0
        result = await session.execute(delete(t.audit_log).where(c.seq <= last))
        await session.execute(
            update(t.audit_head)
            .where(t.audit_head.c.id == 1)
            .values(purged_through_seq=last, purged_through_hash=checkpoint, purged_at=now)
        )
        return int(result.rowcount or 0)


def chain_row(record: AuditRecord) -> ChainRow:
    """The hashed part of a record."""
    return ChainRow(record.seq, record.payload, record.recorded_at, record.prev_hash, record.hash)

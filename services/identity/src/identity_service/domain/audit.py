"""The audit log's SM3 hash chain and retention rules."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from zizhu_common.crypto import sm3

GENESIS_HASH = "0" * 64
MIN_RETENTION_DAYS = 180


@dataclass(frozen=True)
class ChainRow:
    """The hashed part of one stored entry."""

    seq: int
    payload: bytes
    recorded_at: datetime
    prev_hash: str
    hash: str


def canonical_time(moment: datetime) -> str:
    """UTC, microseconds, no zone suffix: identical on SQLite and PostgreSQL round-trips."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")


def chain_hash(prev_hash: str, payload: bytes, seq: int, recorded_at: datetime) -> str:
    """hex SM3(prev_hash || serialized action || seq || recorded_at)."""
    return sm3(
        bytes.fromhex(prev_hash)
        + payload
        + seq.to_bytes(8, "big")
        + canonical_time(recorded_at).encode()
    ).hex()


@dataclass(frozen=True)
class ChainReport:
    """Outcome of a verification."""

    intact: bool
    checked_count: int
    last_seq: int
    first_broken_seq: int
    message: str


def verify_chain(
    rows: Iterable[ChainRow],
    *,
    anchor_seq: int,
    anchor_hash: str,
    head_seq: int | None = None,
    head_hash: str | None = None,
    consistent: Iterable[int] = (),
) -> ChainReport:
    """Recompute the chain from the entry after anchor_seq (whose hash is anchor_hash).

    Detects edited rows (hash mismatch), deleted or inserted rows (sequence gaps, broken links),
    rows whose indexed columns disagree with their hashed payload (`consistent` lists the seqs
    that disagree), and a truncated tail (head_seq/head_hash of the chain head).
    """
    bad_columns = set(consistent)
    expected_prev, expected_seq, checked, last = anchor_hash, anchor_seq + 1, 0, anchor_seq
    for row in rows:
        if row.seq != expected_seq:
            return ChainReport(False, checked, last, expected_seq, f"第{expected_seq}条记录缺失")
        if row.prev_hash != expected_prev:
            return ChainReport(False, checked, last, row.seq, f"第{row.seq}条记录与前一条不衔接")
        if chain_hash(row.prev_hash, row.payload, row.seq, row.recorded_at) != row.hash:
            return ChainReport(False, checked, last, row.seq, f"第{row.seq}条记录内容被篡改")
        if row.seq in bad_columns:
            return ChainReport(False, checked, last, row.seq, f"第{row.seq}条记录的索引字段被篡改")
        expected_prev, expected_seq, last = row.hash, row.seq + 1, row.seq
        checked += 1
    if head_seq is not None and head_seq > last:
        return ChainReport(False, checked, last, last + 1, f"第{last + 1}条及之后的记录缺失")
    if head_seq is not None and head_seq == last and head_hash not in (None, expected_prev):
        return ChainReport(False, checked, last, last, f"第{last}条记录与链头不一致")
    return ChainReport(True, checked, last, 0, f"审计链完整，共校验{checked}条记录")


def purge_cutoff(now: datetime, retention_days: int) -> datetime:
    """Entries recorded before this instant may be purged; never fewer than 180 days kept."""
    return now - timedelta(days=max(retention_days, MIN_RETENTION_DAYS))

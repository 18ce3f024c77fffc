"""The CPU half of a 学籍 sync: parse, validate, blind-index and encrypt rows — in-process for
batched calls, or in worker processes for large files so that it runs beside the database work
(a million-row file is tens of CPU-seconds of GB 11643 checks and SM4). The same workers check
and blind-index the rows of large special-group issue chunks (check_issued).

This module is what a spawned worker imports: keep it free of SQLAlchemy, gRPC and the service
layer (tests/roster/unit/test_roster_worker_imports.py)."""

from __future__ import annotations

import asyncio
import csv
import io
import pickle
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from multiprocessing import get_context
from operator import attrgetter
from typing import Any

from zizhu_common.crypto import FieldCipher

from roster_service.domain.common import (
    Gender,
    IdType,
    RowError,
    Stage,
    StudentStatus,
)
from roster_service.domain.groups import (
    CheckedIssuedRow,
    IssuedRowInput,
    IssueMode,
    check_issued_row,
)
from roster_service.domain.students import StudentRow, validate_row
from roster_service.event_parts import registered_row_parts

ID_CONTEXT = "person.id_number"
PHONE_CONTEXT = "student.phone"
_ROW_FIELDS = StudentRow.__slots__  # type: ignore[attr-defined]
_row_values = attrgetter(*_ROW_FIELDS)


def id_index_value(id_type: int, number: str) -> str:
    """The text whose HMAC-SM3 is the person key: the number, prefixed by its type unless it is
    a resident ID."""
    return number if id_type in (0, IdType.RESIDENT_ID) else f"{int(id_type)}:{number}"


@dataclass(slots=True)
class Prepared:
    """A row ready for the database: validated, with blind index and ciphertexts, or its errors."""

    number: int
    row: StudentRow | None
    errors: list[RowError] = field(default_factory=list)
    bi: str = ""
    id_enc: str | None = None
    phone_enc: str | None = None
    # The row's parts of its StudentRegistered payload (see event_parts.registered_row_parts).
    person_part: bytes = b""
    enrolment_part: bytes = b""


class Preparer:
    """Validates rows and computes their personal-data columns."""

    def __init__(self, cipher: FieldCipher) -> None:
        self.cipher = cipher

    def one(
        self, number: int, raw: dict[str, str], today: date, *, stripped: bool = False
    ) -> Prepared:
        """Prepare one row (`stripped`: see validate_row)."""
        result = validate_row(number, raw, today=today, stripped=stripped)
        if isinstance(result, list):
            return Prepared(number, None, result)
        c = self.cipher
        r = result
        bi = (
            c.blind_index(id_index_value(r.id_type, r.id_number), context=ID_CONTEXT)
            if r.id_number
            else ""
        )
        person, enrolment = registered_row_parts(
            bi=bi,
            name=r.name,
            id_number_masked=r.id_number_masked,
            gender=int(r.gender),
            birth_date=r.birth_date,
            stage=int(r.stage),
            student_number=r.stored_student_number,
            grade=r.grade,
            class_name=r.class_name,
            major_name=r.major_name,
            status=int(r.status),
            enrolled_on=r.enrolled_on,
            left_on=r.left_on,
            boarder=r.boarder,
            status_date=r.status_date,
        )
        return Prepared(
            number,
            r,
            bi=bi,
            id_enc=c.encrypt(r.id_number, context=ID_CONTEXT) if r.id_number else None,
            phone_enc=c.encrypt(r.phone, context=PHONE_CONTEXT) if r.phone else None,
            person_part=person,
            enrolment_part=enrolment,
        )

    def many(self, rows: Iterable[tuple[int, dict[str, str]]], today: date) -> list[Prepared]:
        """Prepare rows in order."""
        return [self.one(n, raw, today) for n, raw in rows]


# -- worker processes ------------------------------------------------------------------------------

_worker: Preparer | None = None


def _init_worker(secret: str, key_id: str, previous: dict[str, str], index_secret: str) -> None:
    global _worker
    _worker = Preparer(
        FieldCipher(secret, key_id=key_id, previous=previous, index_secret=index_secret)
    )


def _pack(p: Prepared) -> tuple[Any, ...]:
    if p.row is None:
        return (1, p.number, [(e.row, e.column, e.value, e.code, e.message) for e in p.errors])
    values = list(_row_values(p.row))
    for i in _ENUMS:
        values[i] = int(values[i])
    return (
        0,
        tuple(values),
        p.bi,
        p.id_enc,
        p.phone_enc,
        p.person_part,
        p.enrolment_part,
    )


_ENUMS = {
    i: {int(v): v for v in cls}
    for i, cls in (
        (_ROW_FIELDS.index("id_type"), IdType),
        (_ROW_FIELDS.index("gender"), Gender),
        (_ROW_FIELDS.index("stage"), Stage),
        (_ROW_FIELDS.index("status"), StudentStatus),
    )
}
_BOARDER = _ROW_FIELDS.index("boarder")


_ID_TYPE, _GENDER, _STAGE, _STATUS = (
    _ROW_FIELDS.index(f) for f in ("id_type", "gender", "stage", "status")
)
_ID_TYPES, _GENDERS, _STAGES, _STATUSES = (_ENUMS[i] for i in (_ID_TYPE, _GENDER, _STAGE, _STATUS))


def unpack(item: tuple[Any, ...]) -> Prepared:
    """A Prepared from a worker's compact tuple."""
    if item[0] == 1:
        return Prepared(item[1], None, [RowError(*e) for e in item[2]])
    v = list(item[1])
    v[_ID_TYPE] = _ID_TYPES[v[_ID_TYPE]]
    v[_GENDER] = _GENDERS[v[_GENDER]]
    v[_STAGE] = _STAGES[v[_STAGE]]
    v[_STATUS] = _STATUSES[v[_STATUS]]
    v[_BOARDER] = bool(v[_BOARDER])
    row = StudentRow(*v)
    return Prepared(row.row, row, [], item[2], item[3], item[4], item[5], item[6])


def _prepare_lines(
    segment: bytes, first_row: int, fields: Sequence[tuple[int, str]], today: str
) -> bytes:
    """Worker: parse a CSV segment (whole lines, no quoted newlines) and prepare its rows."""
    assert _worker is not None
    day = date.fromisoformat(today)
    out = []
    number = first_row - 1
    for values in csv.reader(io.StringIO(segment.decode("utf-8"))):
        number += 1
        width = len(values)
        raw = {k: v for i, k in fields if i < width and (v := values[i].strip())}
        if not raw:
            continue
        out.append(_pack(_worker.one(number, raw, day, stripped=True)))
    # Pickled here so the parent unpickles in its event loop, not in the executor's result
    # thread, where it would contend for the GIL with the database writes.
    return pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)


def _prepare_rows(rows: list[tuple[int, dict[str, str]]], today: str) -> bytes:
    """Worker: prepare already parsed rows."""
    assert _worker is not None
    day = date.fromisoformat(today)
    out = [_pack(_worker.one(n, raw, day)) for n, raw in rows]
    return pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)


_ISSUED_FIELDS = IssuedRowInput.__slots__  # type: ignore[attr-defined]
_issued_values = attrgetter(*_ISSUED_FIELDS)
_CHECKED_FIELDS = CheckedIssuedRow.__slots__  # type: ignore[attr-defined]
_checked_values = attrgetter(*_CHECKED_FIELDS)


def _check_issued(
    rows: list[tuple[Any, ...]], first_row: int, groups: frozenset[int], mode: int, year: str
) -> bytes:
    """Worker: check issued rows (IssuedRowInput fields as tuples) and blind-index their ID
    numbers; (CheckedIssuedRow fields with the error as a tuple, blind index or None) each."""
    assert _worker is not None
    cipher = _worker.cipher
    issue_mode = IssueMode(mode)
    out = []
    for i, values in enumerate(rows):
        c = check_issued_row(
            first_row + i,
            IssuedRowInput(*values),
            groups=groups,
            mode=issue_mode,
            school_year=year,
        )
        bi = (
            cipher.blind_index(id_index_value(c.id_type, c.id_number), context=ID_CONTEXT)
            if c.id_number
            else None
        )
        e = c.error
        fields = _checked_values(c)
        if e is not None:
            fields = (*fields[:-1], (e.row, e.column, e.value, e.code, e.message))
        out.append((fields, bi))
    return pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)


def _unpack_checked(item: tuple[Any, ...]) -> tuple[CheckedIssuedRow, str | None]:
    fields, bi = item
    error = fields[-1]
    if error is not None:
        fields = (*fields[:-1], RowError(*error))
    return CheckedIssuedRow(*fields), bi


class PreparePool:
    """Worker processes (spawned: the service process has threads) that prepare rows."""

    def __init__(
        self, *, workers: int, secret: str, key_id: str, previous: dict[str, str], index_secret: str
    ) -> None:
        self.workers = workers
        self._args = (secret, key_id, previous, index_secret)
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=get_context("spawn"),
                initializer=_init_worker,
                initargs=self._args,
            )
        return self._pool

    async def prepare_segments(
        self, segments: Iterator[tuple[bytes, int]], fields: Sequence[tuple[int, str]], today: date
    ) -> AsyncIterator[list[Prepared]]:
        """Prepared rows per CSV segment, in order, with a few segments in flight."""
        loop = asyncio.get_running_loop()
        pool = self._executor()
        pending: list[asyncio.Future[bytes]] = []
        depth = self.workers * 2
        for segment, first in segments:
            pending.append(
                loop.run_in_executor(
                    pool, _prepare_lines, segment, first, list(fields), today.isoformat()
                )
            )
            if len(pending) >= depth:
                yield [unpack(x) for x in pickle.loads(await pending.pop(0))]
        while pending:
            yield [unpack(x) for x in pickle.loads(await pending.pop(0))]

    async def prepare_chunks(
        self, chunks: Iterator[list[tuple[int, dict[str, str]]]], today: date
    ) -> AsyncIterator[list[Prepared]]:
        """Prepared rows per chunk of parsed rows, in order, with a few chunks in flight."""
        loop = asyncio.get_running_loop()
        pool = self._executor()
        pending: list[asyncio.Future[bytes]] = []
        depth = self.workers * 2
        for chunk in chunks:
            pending.append(loop.run_in_executor(pool, _prepare_rows, chunk, today.isoformat()))
            if len(pending) >= depth:
                yield [unpack(x) for x in pickle.loads(await pending.pop(0))]
        while pending:
            yield [unpack(x) for x in pickle.loads(await pending.pop(0))]

    async def check_issued(
        self,
        rows: Sequence[IssuedRowInput],
        *,
        first_row: int,
        groups: frozenset[int],
        mode: int,
        school_year: str,
    ) -> list[tuple[CheckedIssuedRow, str | None]]:
        """check_issued_row and the blind index of each row, in the workers (the rows split
        between them), in order."""
        loop = asyncio.get_running_loop()
        pool = self._executor()
        values = [_issued_values(r) for r in rows]
        size = -(-len(values) // self.workers)
        parts = [
            loop.run_in_executor(
                pool, _check_issued, values[i : i + size], first_row + i, groups, mode, school_year
            )
            for i in range(0, len(values), size)
        ]
        out: list[tuple[CheckedIssuedRow, str | None]] = []
        for part in parts:
            out.extend(_unpack_checked(x) for x in pickle.loads(await part))
        return out

    def close(self) -> None:
        """Stop the workers."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def csv_segments(body: bytes, first_row: int, rows_per_segment: int) -> Iterator[tuple[bytes, int]]:
    """Whole-line slices of a CSV body (after the header) with the row number each starts at."""
    start = 0
    row = first_row
    size = len(body)
    while start < size:
        end = start
        for _ in range(rows_per_segment):
            nl = body.find(b"\n", end)
            if nl < 0:
                end = size
                break
            end = nl + 1
        segment = body[start:end]
        yield segment, row
        row += segment.count(b"\n")
        start = end

"""Large imports' inserts into aid_record: part after part in the import's transaction, COPY on
PostgreSQL, executemany on SQLite on the loop's thread with the columns that one part shares
written once into the statement."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from operator import itemgetter
from typing import Any

import asyncpg
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.db import inline_sqlite

from aid_service import tables as t

RECORD_COLUMNS = [c.key for c in t.aid_record.columns]
# SQLite page cache (KiB) of a connection while it inserts a large import.
SQLITE_BULK_CACHE_KIB = 128 * 1024
# Rows per executemany when SQLite inserts on the loop's thread (about 15 ms each).
SQLITE_INLINE_ROWS = 1000
# Columns an import usually gives one value for every row (its project, period, school,
# status, author and times). Where a slice of rows agrees on them they go into the statement
# as literals instead of one bound parameter per row: a quarter of SQLite's insert cost.
SHARED_CANDIDATES = (
    "project_code", "school_year", "term", "id_type", "school_org_code", "school_org_path",
    "stage", "category", "owner_type", "hardship_level", "remark", "status", "pending_level",
    "pending_org_code", "audit_chain", "last_opinion", "entered_by", "entered_at",
    "entry_action", "import_id", "submitted_by", "submitted_at", "approved_at",
    "approved_level", "updated_at", "version",
)  # fmt: skip
_CANDIDATES = [(i, itemgetter(i)) for i in map(RECORD_COLUMNS.index, SHARED_CANDIDATES)]
_PLAIN_INSERT = (
    f"INSERT INTO aid_record ({', '.join(RECORD_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in RECORD_COLUMNS)})"
)
_CONSTRAINT_ERRORS = (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)


def sql_literal(value: Any) -> str | None:
    """value as an SQLite literal, or None when it is not one to write into a statement."""
    if value is None:
        return "NULL"
    if type(value) is int:
        return str(value)
    if type(value) is str and "\x00" not in value:
        return "'" + value.replace("'", "''") + "'"
    return None


class SqliteInserts:
    """executemany of aid_record rows (tuples in RECORD_COLUMNS order) where the columns every
    row of the slice shares are literals of the statement and only the others are bound."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._plans: dict[tuple[tuple[int, str], ...], tuple[str, Callable[[Any], Any]]] = {}

    def insert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert the rows (one statement, many parameter sets)."""
        if not rows:
            return
        first, n = rows[0], len(rows)
        shared = []
        for i, column in _CANDIDATES:
            literal = sql_literal(first[i])
            # Equal values are stored alike (SQLite's column affinity): no type test needed.
            if literal is not None and list(map(column, rows)).count(first[i]) == n:
                shared.append((i, literal))
        key = tuple(shared)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._plan(dict(shared))
        sql, pick = plan
        self.conn.executemany(sql, map(pick, rows))

    @staticmethod
    def _plan(shared: dict[int, str]) -> tuple[str, Callable[[Any], Any]]:
        bound = [i for i in range(len(RECORD_COLUMNS)) if i not in shared]
        values = ", ".join(shared.get(i, "?") for i in range(len(RECORD_COLUMNS)))
        sql = f"INSERT INTO aid_record ({', '.join(RECORD_COLUMNS)}) VALUES ({values})"
        if len(bound) == 1:
            only = bound[0]
            return sql, lambda r: (r[only],)
        return sql, itemgetter(*bound)


class RecordWriter:
    """New records stored part after part in one transaction (a large import): each part is
    handed to the database and the caller goes on producing the next while it is stored
    (PostgreSQL works in its own process; SQLite on the event loop's thread, a slice at a time
    between the caller's steps). A slot already taken raises sqlalchemy's IntegrityError, as
    an ORM insert would."""

    def __init__(
        self,
        store: Callable[[Sequence[tuple[Any, ...]]], Awaitable[Any]],
        restore: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        self._store = store
        self._restore = restore
        self._previous: asyncio.Future[Any] | None = None
        self.stored = 0

    async def add(self, part: Sequence[tuple[Any, ...]]) -> None:
        """Hand over a part (tuples in RECORD_COLUMNS order) once the previous one is stored."""
        await self._wait()
        if part:
            self._previous = asyncio.ensure_future(self._store(part))
            self.stored += len(part)
            await asyncio.sleep(0)  # hand it over before producing the next part

    async def flush(self) -> None:
        """Wait until the part handed over is stored (before other statements in the same
        transaction: a PostgreSQL connection runs one operation at a time)."""
        await self._wait()

    async def close(self) -> None:
        """Wait until everything handed over is stored."""
        try:
            await self._wait()
        finally:
            await self._reset()

    async def abort(self) -> None:
        """Stop storing (the transaction is about to roll back)."""
        previous, self._previous = self._previous, None
        if previous is not None:
            previous.cancel()
            await asyncio.gather(previous, return_exceptions=True)
        await self._reset()

    async def _wait(self) -> None:
        previous, self._previous = self._previous, None
        if previous is None:
            return
        try:
            await previous
        except _CONSTRAINT_ERRORS as exc:
            raise IntegrityError("INSERT INTO aid_record", None, exc) from exc

    async def _reset(self) -> None:
        restore, self._restore = self._restore, None
        if restore is not None:
            await restore()


async def record_writer(session: AsyncSession, *, bulk: bool) -> RecordWriter:
    """A RecordWriter in the session's transaction (bulk: many rows to come). Close it (or
    abort it) before the transaction ends."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    if conn.dialect.name == "postgresql":

        def copy(part: Sequence[tuple[Any, ...]]) -> Awaitable[Any]:
            return driver.copy_records_to_table("aid_record", records=part, columns=RECORD_COLUMNS)

        return RecordWriter(copy)

    # On the loop's thread: in aiosqlite's own thread every row waits for the GIL while the
    # import goes on (measured: about 1 s of CPU more per 100,000 rows, most of it in the
    # kernel). A slice of rows at a time, the loop free between slices.
    inline = await inline_sqlite(session)
    if inline is None:  # not the aiosqlite inline_sqlite knows: plain inserts, awaited

        def executemany(part: Sequence[tuple[Any, ...]]) -> Awaitable[Any]:
            return driver.executemany(_PLAIN_INSERT, part)

        return RecordWriter(executemany)
    inserts = SqliteInserts(inline)

    async def insert(part: Sequence[tuple[Any, ...]]) -> None:
        for start in range(0, len(part), SQLITE_INLINE_ROWS):
            if start:
                await asyncio.sleep(0)
            inserts.insert(part[start : start + SQLITE_INLINE_ROWS])

    if bulk:
        # A bulk insert touches every index page of the table: with SQLite's default 2 MB page
        # cache it rereads them from the file again and again. A bigger cache on this
        # connection while it inserts, then back to what it was (only clean pages go).
        (previous,) = inline.execute("PRAGMA cache_size").fetchone()
        inline.execute(f"PRAGMA cache_size={-SQLITE_BULK_CACHE_KIB}")

        async def restore() -> None:
            inline.execute(f"PRAGMA cache_size={int(previous)}")

        return RecordWriter(insert, restore)
    return RecordWriter(insert)

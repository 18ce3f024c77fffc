"""Async SQLAlchemy engines and sessions for SQLite (aiosqlite) and PostgreSQL (asyncpg).

SQLite allows one writer at a time; write transactions therefore start with BEGIN IMMEDIATE on a
dedicated engine so that two concurrent writers queue instead of failing on a lock upgrade. The
writers of one process take turns first (first come, first served): SQLite's busy handler only
polls, and a writer polling beside others that keep the lock busy could be passed over until its
busy timeout ran out. Reads use a second engine and never block writers (WAL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import BigInteger, Integer, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

log = logging.getLogger(__name__)

# Auto-increment primary keys: BIGINT on PostgreSQL, INTEGER (rowid alias) on SQLite.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


# Reads through a memory map of the database file (up to this many MiB; 0 turns it off):
# index probes then copy nothing through the page cache of each connection (2 MiB by default),
# which halves a batched lookup of thousands of keys in a file larger than that cache.
MMAP_ENV = "SQLITE_MMAP_MB"
DEFAULT_MMAP_MB = 1024


def sqlite_mmap_bytes() -> int:
    """The memory-map size every SQLite connection is opened with (`SQLITE_MMAP_MB`)."""
    raw = os.environ.get(MMAP_ENV, "").strip()
    try:
        mib = int(raw) if raw else DEFAULT_MMAP_MB
    except ValueError:
        raise ValueError(f"{MMAP_ENV} must be a whole number of MiB: {raw!r}") from None
    return max(0, mib) * 1024 * 1024


async def inline_sqlite(session: AsyncSession) -> sqlite3.Connection | None:
    """The sqlite3 connection under a SQLite session, for statements run on the event-loop
    thread inside the session's own transaction; None on PostgreSQL (or if the driver is not
    the aiosqlite this was written for, so that callers take their awaited path).

    aiosqlite hands every statement to the connection's own thread, and sqlite3 releases the GIL
    around each row it steps. While the loop thread is busy (a service answering other calls),
    each row then waits for the GIL to come back: a 5,000-key lookup that costs 8 µs a row on
    its own cost about 27 µs of CPU a row beside a busy loop (roster's CheckEnrollment: 55 µs
    of CPU a check through the thread, 35 µs inline). Use it for bounded work only (a chunk of
    keys probed through an index, a chunk of inserts under a lock already held): the loop waits
    meanwhile, so yield to it between chunks. A session is used by one task at a time, so no
    other statement runs on the connection meanwhile."""
    conn = await session.connection()
    if conn.dialect.name != "sqlite":
        return None
    raw = await conn.get_raw_connection()
    inner = getattr(raw.driver_connection, "_conn", None)  # aiosqlite's sqlite3 connection
    return inner if isinstance(inner, sqlite3.Connection) else None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling is switched off so SQLAlchemy's BEGIN is what runs.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute(f"PRAGMA mmap_size={sqlite_mmap_bytes()}")
    cursor.close()


# SQLite's own defaults, given back to a connection that ran a bulk transaction.
AUTOCHECKPOINT_PAGES = 1000
DEFAULT_CACHE_KIB = 2000
_BULK = "zizhu.bulk_transaction"


async def bulk_transaction(session: AsyncSession, *, cache_kib: int | None = None) -> None:
    """Set up one very large SQLite write transaction (a million-row 学籍 sync):
    - its commit does not copy the write-ahead log into the database file (SQLite's automatic
      checkpoint would, inside the commit: about 4 s for a million rows); Database.write()
      starts a passive checkpoint in the background once it has committed;
    - with cache_kib, a larger page cache for its connection.
    The connection gets SQLite's defaults back when it returns to the pool: ordinary writes
    keep the automatic checkpoint (a log only ever checkpointed beside continuous writes is
    never reset, and grows without end). No effect on PostgreSQL."""
    conn = await session.connection()
    if conn.dialect.name != "sqlite":
        return
    raw = await conn.get_raw_connection()
    raw.info[_BULK] = True  # for the pool's reset
    session.info[_BULK] = True  # for Database.write, once committed
    await conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
    if cache_kib:
        await conn.exec_driver_sql(f"PRAGMA cache_size=-{int(cache_kib)}")


def _end_bulk_transaction(dbapi_connection: Any, record: Any, reset_state: Any) -> None:
    """Pool reset: a connection that ran a bulk transaction gets SQLite's defaults back (or is
    discarded if that fails: never pooled without its automatic checkpoint)."""
    if not record.info.pop(_BULK, False):
        return
    try:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
        cursor.execute(f"PRAGMA cache_size=-{DEFAULT_CACHE_KIB}")
        cursor.close()
    except Exception:
        log.warning("could not restore a bulk connection's defaults; dropping the connection")
        record.invalidate()


def _make_engine(url: str, *, immediate: bool, echo: bool) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "reset", _end_bulk_transaction)

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return create_async_engine(
        url, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True, pool_recycle=1800
    )


# Seconds a SQLite writer waits for its turn among the process's writers before it goes to
# SQLite's busy handler anyway (as every writer did before turns: a task that opened a write
# session and, before its first statement, waits on another task's write must not hang).
WRITE_TURN_WAIT_S = 30.0


class _WriteTurns:
    """First-come, first-served turns of one process's SQLite write transactions (one event loop
    at a time; re-created if the loop changes). A task already holding the turn (a write session
    opened inside another of its own) does not queue behind itself."""

    def __init__(self) -> None:
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._holder: asyncio.Task[Any] | None = None

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            self._lock, self._loop, self._holder = asyncio.Lock(), loop, None
        lock = self._lock
        if task is not None and task is self._holder:
            yield
            return
        try:
            async with asyncio.timeout(WRITE_TURN_WAIT_S):
                await lock.acquire()
        except TimeoutError:
            log.warning("no write turn after %.0f s; writing beside the holder", WRITE_TURN_WAIT_S)
            yield
            return
        self._holder = task
        try:
            yield
        finally:
            self._holder = None
            lock.release()


# WAL size (bytes) above which a committed write starts a background checkpoint (a transaction
# run with bulk_transaction leaves the log larger than that).
CHECKPOINT_WAL_BYTES = AUTOCHECKPOINT_PAGES * 4096


class Database:
    """A service's database: `write()` for transactions that change data, `read()` for queries.

    On SQLite, once a bulk transaction (see bulk_transaction) has committed and left the log
    over 1,000 pages, a passive checkpoint runs in the background on a read connection; the data
    is durable in the log meanwhile, and readers see it. Ordinary commits checkpoint as SQLite
    does by itself."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self._wal_path = (
            f"{parsed.database}-wal"
            if self.is_sqlite and parsed.database and parsed.database != ":memory:"
            else None
        )
        self._checkpointing: asyncio.Task[None] | None = None
        self._turns = _WriteTurns() if self.is_sqlite else None
        self.write_engine = _make_engine(url, immediate=True, echo=echo)
        self.read_engine = (
            _make_engine(url, immediate=False, echo=echo) if self.is_sqlite else self.write_engine
        )
        self._write_sessions = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.write_engine.dialect.name

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session in a write transaction, committed on success and rolled back on error (on
        SQLite, once the process's earlier writers have had their turn)."""
        turn = self._turns.turn() if self._turns is not None else contextlib.nullcontext()
        async with turn, self._write_sessions() as session, session.begin():
            yield session
        if self._wal_path is not None and session.info.get(_BULK):
            self._checkpoint_soon()

    def _checkpoint_soon(self) -> None:
        """Start a background checkpoint if the log is over CHECKPOINT_WAL_BYTES and none runs."""
        if self._checkpointing is not None and not self._checkpointing.done():
            return
        try:
            size = os.stat(self._wal_path or "").st_size
        except OSError:
            return
        if size > CHECKPOINT_WAL_BYTES:
            self._checkpointing = asyncio.get_running_loop().create_task(self._checkpoint())

    async def _checkpoint(self) -> None:
        try:
            async with self.read_engine.connect() as conn:
                raw = await conn.get_raw_connection()
                driver: Any = raw.driver_connection
                # On the driver connection: no transaction is open around it (a checkpoint
                # inside one would fail).
                cursor = await driver.execute("PRAGMA wal_checkpoint(PASSIVE)")
                await cursor.close()
        except Exception:  # a failed checkpoint loses nothing: the next write retries it
            log.warning("background WAL checkpoint failed", exc_info=True)

    async def checkpoint_settled(self) -> None:
        """Wait for a background checkpoint in progress (tests, shutdown)."""
        task = self._checkpointing
        if task is not None:
            await asyncio.shield(task)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for queries; nothing it does is committed."""
        async with self._read_sessions() as session:
            try:
                yield session
            finally:
                await session.rollback()

    async def dispose(self) -> None:
        """Close every pooled connection (after a background checkpoint in progress)."""
        with contextlib.suppress(Exception):
            await self.checkpoint_settled()
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()


def libpq_dsn(url: str, dbname: str | None = None) -> str:
    """A plain libpq DSN (for asyncpg.connect) from a SQLAlchemy PostgreSQL URL
    (`postgresql+asyncpg://…`), optionally for another database (no path: `postgres`)."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    path = f"/{dbname}" if dbname else (parts.path if parts.path not in ("", "/") else "/postgres")
    return urlunsplit(("postgresql", parts.netloc, path, parts.query, ""))

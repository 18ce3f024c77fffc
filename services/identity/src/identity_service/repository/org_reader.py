"""GetOrg's direct reads of the SQLite file, on the event loop thread, with a cache kept while the
file is unchanged."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from identity_service.domain.orgs import Org, OrgStatus
from identity_service.repository.orgs import (
    _ORG_COLUMNS,
    _ORG_TIMESTAMPS,
    _org,
    _OrgRow,
)


class ReaderUnavailable(Exception):
    """The direct SQLite reader could not answer; use the session path instead."""


class SqliteOrgReader:
    """GetOrg's reads straight from the SQLite file, on the calling (event loop) thread.

    Through aiosqlite every statement, fetch and transaction end is handed to the connection's
    thread and back; for a primary-key read (~10 µs with the pages cached) those hand-offs cost
    many times the read and make the threads contend for the GIL. This reader keeps one read-only
    connection of its own and reads an org, its active child count and its ancestors in one
    snapshot without leaving the loop. WAL readers never wait for the writer; anything unusual
    (SQLITE_BUSY after a short timeout, a missing file) raises ReaderUnavailable so that the
    caller uses the ordinary session path. Only for file databases (not `:memory:`).

    Answers are kept in memory while the database file is unchanged: SQLite's `data_version`
    (one pragma on this connection) changes whenever any other connection, of this process or
    another, commits, and the whole cache is dropped then. A hit costs that pragma and a dict
    look-up instead of three statements and five rows turned into Orgs. Cached Orgs are shared
    by every caller that reads them: callers must not modify them.
    """

    def __init__(self, path: str, *, busy_timeout_ms: int = 50, cache_size: int = 4096) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self.cache_size = cache_size
        self._conn: sqlite3.Connection | None = None
        self._cache: dict[str, tuple[Org, dict[str, Org]]] = {}
        self._cache_version: int | None = None
        self.hits = 0
        columns = ", ".join(f"org.{name}" for name in _ORG_COLUMNS)
        self._get_sql = (
            f"SELECT {columns}, (SELECT count(*) FROM org AS child WHERE child.parent_code = "
            "org.org_code AND child.status = ?) FROM org WHERE org.org_code = ?"
        )
        self._many_sql = f"SELECT {columns} FROM org WHERE org.org_code IN (%s)"

    @classmethod
    def for_url(cls, url: str) -> SqliteOrgReader | None:
        """A reader for a `sqlite+aiosqlite:///file` URL; None for other databases."""
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            return None
        if (parsed.query or {}).get("mode") == "memory":
            return None
        return cls(str(parsed.database))

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            uri = Path(self.path).absolute().as_uri() + "?mode=ro"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
            conn.execute("PRAGMA query_only=ON")
            conn.execute("PRAGMA mmap_size=268435456")
            self._conn = conn
        return self._conn

    def close(self) -> None:
        """Close the connection (reopened on next use)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._cache.clear()
        self._cache_version = None

    @staticmethod
    def _org(values: Sequence[Any]) -> Org:
        row = list(values)
        for i in _ORG_TIMESTAMPS:
            if isinstance(row[i], str):
                row[i] = datetime.fromisoformat(row[i])
        return _org(_OrgRow(*row))

    def org_detail(self, code: str) -> tuple[Org | None, dict[str, Org]]:
        """The org with its active child count, and its ancestors by code, in one snapshot
        (from the cache while the database is unchanged; unknown codes are not cached)."""
        try:
            conn = self._connection()
            version = conn.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error as exc:
            self.close()
            raise ReaderUnavailable(str(exc)) from exc
        if version != self._cache_version:
            self._cache.clear()
            self._cache_version = version
        cached = self._cache.get(code)
        if cached is not None:
            self.hits += 1
            return cached
        org, ancestors = self._read_detail(code)
        # Read after the version: a commit in between changes the version again, and the next
        # call drops this entry with the rest.
        if org is not None:
            if len(self._cache) >= self.cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[code] = (org, ancestors)
        return org, ancestors

    def _read_detail(self, code: str) -> tuple[Org | None, dict[str, Org]]:
        try:
            conn = self._connection()
            conn.execute("BEGIN")
            try:
                row = conn.execute(self._get_sql, (OrgStatus.ACTIVE.value, code)).fetchone()
                if row is None:
                    return None, {}
                org = self._org(row[:-1])
                org.child_count = int(row[-1])
                codes = org.ancestor_codes()
                ancestors: dict[str, Org] = {}
                if codes:
                    sql = self._many_sql % ",".join("?" * len(codes))
                    for values in conn.execute(sql, codes).fetchall():
                        ancestor = self._org(values)
                        ancestors[ancestor.code] = ancestor
                return org, ancestors
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self.close()
            raise ReaderUnavailable(str(exc)) from exc

"""`inline_sqlite`: statements on the event-loop thread run in the session's own transaction."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import text
from zizhu_common.db import Database, inline_sqlite


async def test_inline_statements_share_the_sessions_transaction(sqlite_database_url: str) -> None:
    db = Database(sqlite_database_url)
    try:
        async with db.write() as session:
            await session.execute(text("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)"))
        async with db.write() as session:
            await session.execute(text("INSERT INTO t VALUES ('a', 1)"))
            inline = await inline_sqlite(session)
            assert isinstance(inline, sqlite3.Connection)
            # Sees the session's uncommitted row, and writes into the same transaction.
            assert inline.execute("SELECT v FROM t WHERE k = 'a'").fetchall() == [(1,)]
            inline.executemany("INSERT INTO t VALUES (?, ?)", [("b", 2), ("c", 3)])
            count = (await session.execute(text("SELECT count(*) FROM t"))).scalar_one()
            assert count == 3
        with pytest.raises(RuntimeError):
            async with db.write() as session:
                inline = await inline_sqlite(session)
                assert inline is not None
                inline.execute("INSERT INTO t VALUES ('d', 4)")
                raise RuntimeError("the request fails")
        async with db.read() as session:
            inline = await inline_sqlite(session)
            assert inline is not None
            rows = inline.execute("SELECT k FROM t ORDER BY k").fetchall()
            assert rows == [("a",), ("b",), ("c",)]  # the failed transaction left nothing
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_postgresql_sessions_have_no_inline_connection(pg_database_url: str) -> None:
    db = Database(pg_database_url)
    try:
        async with db.read() as session:
            assert await inline_sqlite(session) is None
    finally:
        await db.dispose()

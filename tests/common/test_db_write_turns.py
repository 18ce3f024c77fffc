"""SQLite writers of one process take turns first come, first served: a writer queued behind
others that keep the lock busy is not passed over (SQLite's busy handler only polls), a write
session opened inside another of the same task does not wait for itself, and a writer whose turn
does not come in time still goes to SQLite's busy handler as before."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from zizhu_common import db as db_module
from zizhu_common.db import Database


async def _table(db: Database) -> None:
    async with db.write() as session:
        await session.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY, writer TEXT)"))


async def _rows(db: Database) -> list[str]:
    async with db.read() as session:
        return list((await session.execute(text("SELECT writer FROM t ORDER BY n"))).scalars())


async def test_writers_commit_in_the_order_they_asked(sqlite_database_url: str) -> None:
    db = Database(sqlite_database_url)
    try:
        await _table(db)
        first_holds = asyncio.Event()
        release = asyncio.Event()

        async def first() -> None:
            async with db.write() as session:
                await session.execute(text("INSERT INTO t (writer) VALUES ('first')"))
                first_holds.set()
                await release.wait()  # holds SQLite's write lock meanwhile

        async def writer(name: str) -> None:
            async with db.write() as session:
                await session.execute(text("INSERT INTO t (writer) VALUES (:w)"), {"w": name})
                await asyncio.sleep(0.01)  # each keeps the lock a little while

        holder = asyncio.create_task(first())
        await first_holds.wait()
        names = [f"w{i}" for i in range(8)]
        queued = []
        for name in names:
            queued.append(asyncio.create_task(writer(name)))
            await asyncio.sleep(0.005)  # asked in this order
        release.set()
        await asyncio.gather(holder, *queued)
        assert await _rows(db) == ["first", *names]
    finally:
        await db.dispose()


async def test_a_write_inside_another_of_the_same_task_does_not_wait_for_itself(
    sqlite_database_url: str,
) -> None:
    db = Database(sqlite_database_url)
    try:
        await _table(db)
        async with db.write() as outer:
            # Opened but not begun (no statement yet): the inner write runs and commits first.
            async with db.write() as inner:
                await inner.execute(text("INSERT INTO t (writer) VALUES ('inner')"))
            await outer.execute(text("INSERT INTO t (writer) VALUES ('outer')"))
        assert await _rows(db) == ["inner", "outer"]
    finally:
        await db.dispose()


async def test_a_writer_without_a_turn_in_time_goes_to_the_busy_handler(
    sqlite_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "WRITE_TURN_WAIT_S", 0.2)
    db = Database(sqlite_database_url)
    try:
        await _table(db)
        child_done = asyncio.Event()

        async def child() -> None:
            async with db.write() as session:
                await session.execute(text("INSERT INTO t (writer) VALUES ('child')"))
            child_done.set()

        # A task holds the turn (its session not begun yet) and waits on another task's write:
        # that write gets no turn, waits 0.2 s, then writes as every writer did before turns.
        async with db.write() as session:
            task = asyncio.create_task(child())
            await asyncio.wait_for(child_done.wait(), timeout=10)
            await session.execute(text("INSERT INTO t (writer) VALUES ('parent')"))
        await task
        assert await _rows(db) == ["child", "parent"]
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_postgresql_writers_take_no_turns(pg_database_url: str) -> None:
    db = Database(pg_database_url)
    try:
        async with db.write() as a, db.write() as b:  # two transactions at once
            await a.execute(text("SELECT 1"))
            await b.execute(text("SELECT 1"))
    finally:
        await db.dispose()

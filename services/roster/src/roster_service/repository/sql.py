"""SQL helpers shared by the repositories: subtree tests, chunked IN lists, bulk writes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Column, ColumnElement, LargeBinary, Table, and_, text
from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.db import inline_sqlite

IN_CHUNK = 2000
# Keys per statement when a SQLite lookup runs on the event-loop thread (`inline_sqlite`): a
# few milliseconds each, with the loop free to run other tasks between them.
INLINE_CHUNK = 500


def path_end(path: str) -> str:
    """The smallest string greater than every path below `path` ("/" sorts just before "0")."""
    return path[:-1] + chr(ord(path[-1]) + 1)


def in_subtree(column: Any, path: str) -> ColumnElement[bool]:
    """`column` lies in the subtree at `path`: a byte-order range test an index answers."""
    return and_(column >= path, column < path_end(path))


def chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most size items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def bulk_insert(session: AsyncSession, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows (every dict with the same keys): COPY on PostgreSQL, one executemany of
    plain tuples on SQLite (both in the session's transaction). Skips SQLAlchemy's per-row
    parameter handling, which costs more than the insert itself at 学籍 scale."""
    if not rows:
        return
    columns = list(rows[0].keys())
    await bulk_insert_tuples(session, table, columns, [tuple(r[c] for c in columns) for r in rows])


async def bulk_insert_tuples(
    session: AsyncSession, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """`bulk_insert` of rows already laid out as tuples in `columns` order."""
    if not rows:
        return
    conn = await session.connection()
    dialect = conn.dialect
    if dialect.name == "postgresql":
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.copy_records_to_table(table.name, records=rows, columns=list(columns))
        return
    sql, params = sqlite_insert(dialect, table, columns, rows)
    await conn.exec_driver_sql(sql, params)


def sqlite_insert(
    dialect: Any,
    table: Table,
    columns: Sequence[str],
    rows: list[tuple[Any, ...]],
    *,
    bound: bool = False,
) -> tuple[str, list[tuple[Any, ...]]]:
    """The INSERT statement and driver parameters of rows for SQLite's executemany: values
    converted the way SQLAlchemy binds them, unless `bound` says they already are (see
    `driver_value`)."""
    names = ", ".join(f'"{c}"' for c in columns)
    sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({", ".join("?" for _ in columns)})'
    processors = [
        (i, p)
        for i, c in enumerate(columns)
        if not isinstance(table.c[c].type, LargeBinary)  # sqlite3 takes bytes as they are
        and (p := table.c[c].type.dialect_impl(dialect).bind_processor(dialect)) is not None
    ]
    if bound or not processors:
        return sql, rows
    params = []
    # Rows of one bulk write share their timestamps: convert each distinct value once.
    done: dict[tuple[int, Any], Any] = {}
    for r in rows:
        values = list(r)
        for i, process in processors:
            value = values[i]
            if value is not None:
                key = (i, value)
                converted = done.get(key)
                if converted is None:
                    converted = done[key] = process(value)
                values[i] = converted
        params.append(tuple(values))
    return sql, params


def driver_value(dialect: Any, column: Column[Any], value: Any) -> Any:
    """A value as the driver receives it for `column` on SQLite (a timestamp becomes the text
    SQLAlchemy stores), unchanged elsewhere: rows built with it are `bound`. Booleans and bytes
    need no conversion for sqlite3."""
    if dialect.name != "sqlite":
        return value
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    return process(value) if process is not None else value


async def analyze(session: AsyncSession, *tables: Table) -> None:
    """Refresh PostgreSQL's statistics of tables a transaction has just grown by up to millions
    of rows, before it queries them (inside the transaction, its own rows count): planned on
    the statistics of an empty table, a lookup by index becomes a scan per call. SQLite plans
    without statistics unless told to keep them, so nothing is done there."""
    if session.bind.dialect.name != "postgresql":
        return
    for table in tables:
        await session.execute(text(f"ANALYZE {table.name}"))


async def fetch_rows(session: AsyncSession, sql: str, params: Sequence[Any]) -> list[Any]:
    """Rows of a query with `?` placeholders, as plain tuples, on the driver connection inside
    the session's transaction (numbered `$n` placeholders on PostgreSQL)."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    if conn.dialect.name == "postgresql":
        parts = sql.split("?")
        numbered = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))
        return list(await driver.fetch(numbered, *params))
    return list(await driver.execute_fetchall(sql, tuple(params)))


def ints(text: str) -> list[int]:
    """ "1,5,7" → [1, 5, 7]."""
    return [int(x) for x in text.split(",") if x]


def join_ints(values: Iterable[int]) -> str:
    """[1, 5, 7] → "1,5,7" (sorted, unique)."""
    return ",".join(str(v) for v in sorted(set(int(v) for v in values)))


async def fetch_in(
    session: AsyncSession, sql: str, values: Sequence[Any], *, pg_type: str = "text"
) -> list[Sequence[Any]]:
    """Rows of a query over a list of keys, as plain tuples: `sql` holds one `{keys}` slot after
    the key column, filled with one array parameter joined as a set (`IN (SELECT unnest($1))`:
    index probes per key, where `= ANY($1)` over thousands of keys makes the planner scan the
    whole table) on PostgreSQL, and with chunked `IN (?, …)` lists on SQLite. Runs on the driver
    connection inside the session's transaction: no SQL compilation or row processing per
    call, which dominate lookups of thousands of keys. On SQLite the chunks run on the event
    loop's thread (`inline_sqlite`), yielding to the loop between them."""
    if not values:
        return []
    inline = await inline_sqlite(session)
    out: list[Sequence[Any]] = []
    if inline is not None:
        for n, part in enumerate(chunks(values, INLINE_CHUNK)):
            if n:
                await asyncio.sleep(0)
            marks = ",".join("?" * len(part))
            out.extend(inline.execute(sql.format(keys=f"IN ({marks})"), tuple(part)).fetchall())
        return out
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    if conn.dialect.name == "postgresql":
        keys = f"IN (SELECT unnest($1::{pg_type}[]))"
        return list(await driver.fetch(sql.format(keys=keys), list(values)))
    for part in chunks(values):
        marks = ",".join("?" * len(part))
        out.extend(await driver.execute_fetchall(sql.format(keys=f"IN ({marks})"), tuple(part)))
    return out

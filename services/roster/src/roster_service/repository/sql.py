"""SQL helpers shared by the repositories: subtree tests, chunked IN lists, bulk writes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, and_
from sqlalchemy.ext.asyncio import AsyncSession

IN_CHUNK = 2000


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
    conn = await session.connection()
    dialect = conn.dialect
    if dialect.name == "postgresql":
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.copy_records_to_table(
            table.name, records=[tuple(r[c] for c in columns) for r in rows], columns=columns
        )
        return
    processors = [
        (i, p)
        for i, c in enumerate(columns)
        if (p := table.c[c].type.dialect_impl(dialect).bind_processor(dialect)) is not None
    ]
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    params = []
    # Rows of one bulk write share their timestamps: convert each distinct value once.
    done: dict[tuple[int, Any], Any] = {}
    for r in rows:
        values = [r[c] for c in columns]
        for i, process in processors:
            value = values[i]
            if value is not None:
                key = (i, value)
                converted = done.get(key)
                if converted is None:
                    converted = done[key] = process(value)
                values[i] = converted
        params.append(tuple(values))
    await conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', params)


def ints(text: str) -> list[int]:
    """ "1,5,7" → [1, 5, 7]."""
    return [int(x) for x in text.split(",") if x]


def join_ints(values: Iterable[int]) -> str:
    """[1, 5, 7] → "1,5,7" (sorted, unique)."""
    return ",".join(str(v) for v in sorted(set(int(v) for v in values)))

"""Rows bound as one parameter per column: set-based writes of a whole batch in one statement.

PostgreSQL gets one array per column (`unnest`), SQLite one JSON document (`json_each`); either
way the driver sees a handful of parameters instead of one per row and column, which is what
makes a batch of thousands of events cheap to apply.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from reconcile_service.repository.sql import dialect

# Column kinds: the PostgreSQL array element type of each.
PG_TYPES = {
    "text": "varchar",
    "int": "bigint",
    "small": "smallint",
    "bool": "boolean",
    "ts": "timestamptz",
}


def _sqlite_value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "ts":
        # SQLAlchemy's SQLite DateTime storage format (naive UTC).
        assert isinstance(value, datetime)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if kind == "bool":
        return 1 if value else 0
    return value


def rows_from(
    session: AsyncSession,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Any]],
    *,
    alias: str = "b",
    param: str = "b",
) -> tuple[str, dict[str, Any]]:
    """A FROM item `alias(name, …)` yielding `rows` (tuples in the order of `columns`, each a
    (name, kind) pair), and the parameters it binds."""
    names = [name for name, _ in columns]
    if dialect(session) == "postgresql":
        params = {f"{param}{i}": [r[i] for r in rows] for i in range(len(columns))}
        arrays = ", ".join(
            f"CAST(:{param}{i} AS {PG_TYPES[kind]}[])" for i, (_, kind) in enumerate(columns)
        )
        return f"unnest({arrays}) AS {alias}({', '.join(names)})", params
    kinds = [kind for _, kind in columns]
    doc = json.dumps(
        [[_sqlite_value(k, v) for k, v in zip(kinds, r, strict=True)] for r in rows],
        ensure_ascii=False,
    )
    cols = ", ".join(f"json_extract(value, '$[{i}]') AS {name}" for i, name in enumerate(names))
    return f"(SELECT {cols} FROM json_each(:{param})) AS {alias}", {param: doc}


def in_values(
    session: AsyncSession, column: str, kind: str, values: Sequence[Any], *, param: str = "v"
) -> tuple[str, dict[str, Any]]:
    """The condition `column` is one of `values` (an index probe per value on PostgreSQL)."""
    if dialect(session) == "postgresql":
        return f"{column} = ANY(CAST(:{param} AS {PG_TYPES[kind]}[]))", {param: list(values)}
    doc = json.dumps([_sqlite_value(kind, v) for v in values], ensure_ascii=False)
    return f"{column} IN (SELECT value FROM json_each(:{param}))", {param: doc}


async def insert_absent(
    session: AsyncSession,
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Any]],
) -> list[Sequence[Any]]:
    """SQLite: insert the rows (tuples in the order of `columns`, the first being the table's
    key, distinct) whose key is not in `table` yet; returns those rows. One statement reads the
    keys already there, one executemany straight through the driver inserts the rest — much
    cheaper than `INSERT … SELECT` over json_each, which parses each row's JSON once per column.
    Only for SQLite, whose write transactions (BEGIN IMMEDIATE) exclude any concurrent writer."""
    if not rows:
        return []
    conn = await session.connection()
    key = columns[0][0]
    seen: set[Any] = set()
    for start in range(0, len(rows), 5000):
        doc = json.dumps([r[0] for r in rows[start : start + 5000]], ensure_ascii=False)
        result = await conn.exec_driver_sql(
            f"SELECT {key} FROM {table} WHERE {key} IN (SELECT value FROM json_each(?))", (doc,)
        )
        seen.update(result.scalars())
    new = [r for r in rows if r[0] not in seen] if seen else list(rows)
    if not new:
        return []
    convert = [i for i, (_, kind) in enumerate(columns) if kind in ("ts", "bool")]
    params: Sequence[Sequence[Any]] = new
    if convert:
        kinds = [kind for _, kind in columns]
        params = []
        for r in new:
            values = list(r)
            for i in convert:
                values[i] = _sqlite_value(kinds[i], values[i])
            params.append(tuple(values))
    names = ", ".join(name for name, _ in columns)
    marks = ", ".join("?" for _ in columns)
    await conn.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", params)
    return new

"""SQL helpers shared by the repositories: dialect-aware upserts that add deltas, subtree
ranges on materialised paths, and UTC timestamps from either driver."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    DateTime,
    Integer,
    SmallInteger,
    String,
    Table,
    TextClause,
    and_,
    any_,
    bindparam,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from funding_service.domain.rules import subtree_upper


def utc(moment: datetime | None) -> datetime | None:
    """A timestamp as aware UTC (SQLite returns naive values)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def in_subtree(column: Column[Any], path: str) -> ColumnElement[bool]:
    """column lies in path's subtree: a range on the path (index friendly on both databases)."""
    return and_(column >= path, column < subtree_upper(path))


def one_of(column: Column[Any], values: Sequence[str], dialect: str) -> ColumnElement[bool]:
    """column IN values: one array parameter on PostgreSQL (a cached statement whatever the
    number of values), an expanding IN on SQLite."""
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(String)))
    return column.in_(list(values))


def chunks(rows: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    """Consecutive slices of at most size rows."""
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


async def upsert_add(
    session: AsyncSession,
    dialect: str,
    table: Table,
    rows: list[dict[str, Any]],
    *,
    keys: Sequence[str],
    add: Sequence[str] = (),
    replace: Sequence[str] = (),
    returning: Sequence[str] = (),
) -> list[Any]:
    """Insert rows, or add their `add` columns to (and overwrite `replace` columns of) the rows
    already there. Rows must share their columns and be unique by keys; sorted by keys so that
    concurrent writers lock rows in the same order. One cached statement executed for many
    parameter sets (SQLAlchemy batches them into multi-row VALUES)."""
    if not rows:
        return []
    rows = sorted(rows, key=lambda r: tuple(r[k] for k in keys))
    if dialect == "postgresql":
        return await _upsert_unnest(session, table, rows, keys, add, replace, returning)
    stmt = sqlite_insert(table)
    updates = {c: table.c[c] + stmt.excluded[c] for c in add}
    updates.update({c: stmt.excluded[c] for c in replace})
    if updates:
        stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=updates)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    if not returning:
        await session.execute(stmt, rows)
        return []
    stmt = stmt.returning(*(table.c[c] for c in returning))  # type: ignore[assignment]
    if len(rows) == 1:
        return list((await session.execute(stmt, rows[0])).all())
    return list((await session.execute(stmt, rows)).all())


def _pg_array_type(column: Column[Any]) -> str:
    kind = column.type
    if isinstance(kind, Boolean):
        return "boolean[]"
    if isinstance(kind, DateTime):
        return "timestamptz[]"
    if isinstance(kind, SmallInteger):
        return "int2[]"
    if isinstance(kind, BigInteger):
        return "int8[]"
    if isinstance(kind, Integer):
        return "int4[]"
    return "text[]"


@lru_cache(maxsize=256)
def _unnest_sql(
    table: Table,
    columns: tuple[str, ...],
    keys: tuple[str, ...],
    add: tuple[str, ...],
    replace: tuple[str, ...],
    returning: tuple[str, ...],
) -> TextClause:
    arrays = ", ".join(
        f"CAST(:p{i} AS {_pg_array_type(table.c[c])})" for i, c in enumerate(columns)
    )
    sets = [f"{c} = {table.name}.{c} + EXCLUDED.{c}" for c in add]
    sets += [f"{c} = EXCLUDED.{c}" for c in replace]
    conflict = f"DO UPDATE SET {', '.join(sets)}" if sets else "DO NOTHING"
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) "
        f"ON CONFLICT ({', '.join(keys)}) {conflict}"
    )
    if returning:
        sql += f" RETURNING {', '.join(returning)}"
    return text(sql)


async def _upsert_unnest(
    session: AsyncSession,
    table: Table,
    rows: list[dict[str, Any]],
    keys: Sequence[str],
    add: Sequence[str],
    replace: Sequence[str],
    returning: Sequence[str],
) -> list[Any]:
    # PostgreSQL: one statement whatever the number of rows, each column bound as one array.
    columns = tuple(rows[0])
    stmt = _unnest_sql(table, columns, tuple(keys), tuple(add), tuple(replace), tuple(returning))
    params = {f"p{i}": [r[c] for r in rows] for i, c in enumerate(columns)}
    result = await session.execute(stmt, params)
    return list(result.all()) if returning else []

"""SQLite inserts of large imports: the columns a slice of rows shares go into the statement as
literals, and what is stored is exactly what plain parameter binding stores."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from aid_service import tables
from aid_service.repository import record_writer as record_writer_module
from aid_service.repository.record_writer import (
    RECORD_COLUMNS,
    SHARED_CANDIDATES,
    SqliteInserts,
    record_writer,
    sql_literal,
)
from sqlalchemy import Integer, create_engine
from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.db import Database

PLAIN = (
    f"INSERT INTO aid_record ({', '.join(RECORD_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in RECORD_COLUMNS)})"
)


def _db(path: Path) -> sqlite3.Connection:
    engine = create_engine(f"sqlite:///{path}")
    tables.aid_record.create(engine)
    engine.dispose()
    return sqlite3.connect(path, isolation_level=None)


def _rows(n: int, *, vary: str = "") -> list[tuple[Any, ...]]:
    """n rows: candidates shared (quotes, Chinese and NULLs among them) except `vary`."""
    rows = []
    for k in range(n):
        values = []
        for c in tables.aid_record.columns:
            integer = isinstance(c.type, Integer)
            if c.key in SHARED_CANDIDATES and c.key != vary:
                value: Any = 7 if integer else ("O'Brien 中学" if c.key != "remark" else "")
                if c.nullable and c.key in ("pending_level", "submitted_at", "approved_at"):
                    value = None
            else:
                value = k if integer else f"{c.key}-{k}'"
            values.append(value)
        rows.append(tuple(values))
    return rows


def _stored(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    typed = ", ".join(f"{c}, typeof({c})" for c in RECORD_COLUMNS)
    return conn.execute(f"SELECT {typed} FROM aid_record ORDER BY rowid").fetchall()


def test_shared_columns_are_stored_as_bound_ones_would_be(tmp_path: Path) -> None:
    plain, shared = _db(tmp_path / "plain.db"), _db(tmp_path / "shared.db")
    inserts = SqliteInserts(shared)
    parts = [_rows(50), _rows(30, vary="school_org_path"), _rows(1)]
    for k, part in enumerate(parts):
        # Unique keys across the parts.
        part = [(f"R{k}-{r[0]}", *r[1:-1], f"{k}-{r[-1]}") for r in part]
        plain.executemany(PLAIN, part)
        inserts.insert(part)
    assert _stored(shared) == _stored(plain)
    assert len(_stored(shared)) == 81
    # One statement per set of shared columns: the varying column got its own.
    assert len(inserts._plans) == 2


def test_literals() -> None:
    assert sql_literal(None) == "NULL"
    assert sql_literal(12) == "12"
    assert sql_literal("O'Brien") == "'O''Brien'"
    assert sql_literal("a\x00b") is None  # bound instead
    assert sql_literal(True) is None and sql_literal(1.5) is None and sql_literal(b"x") is None


async def test_the_writer_stores_inline_and_through_the_driver_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [(f"R{r[0]}", *r[1:]) for r in _rows(2500)]
    stored = []
    for name, inline in (("inline", True), ("driver", False)):
        if not inline:

            async def no_inline(session: AsyncSession) -> None:
                return None

            monkeypatch.setattr(record_writer_module, "inline_sqlite", no_inline)
        path = tmp_path / f"{name}.db"
        _db(path).close()
        db = Database(f"sqlite+aiosqlite:///{path}")
        try:
            async with db.write() as session:
                writer = await record_writer(session, bulk=True)
                await writer.add(rows[:1500])
                await writer.add(rows[1500:])
                await writer.close()
            async with db.read() as session:
                conn = await session.connection()
                raw = await conn.get_raw_connection()
                typed = ", ".join(f"{c}, typeof({c})" for c in RECORD_COLUMNS)
                driver: Any = raw.driver_connection
                stored.append(
                    list(
                        await driver.execute_fetchall(
                            f"SELECT {typed} FROM aid_record ORDER BY rowid"
                        )
                    )
                )
        finally:
            await db.dispose()
    assert len(stored[0]) == 2500 and stored[0] == stored[1]

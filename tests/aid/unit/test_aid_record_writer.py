"""SQLite inserts of large imports: the columns a slice of rows shares go into the statement as
literals, and what is stored is exactly what plain parameter binding stores."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from aid_service import tables
from aid_service.repository.record_writer import (
    RECORD_COLUMNS,
    SHARED_CANDIDATES,
    SqliteInserts,
    sql_literal,
)
from sqlalchemy import Integer, create_engine

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

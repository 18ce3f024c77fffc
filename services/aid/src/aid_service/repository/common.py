"""Helpers shared by the repositories."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_

T = TypeVar("T")
CHUNK = 500


def prefix_range(column: Any, path: str) -> ColumnElement[bool]:
    """`column` starts with path (a materialised path ending in "/"), as an index range.

    Paths hold digits and "/" only; every extension of path sorts between path and path with its
    final "/" replaced by "0" (the next character), on SQLite and PostgreSQL alike.
    """
    if path in ("", "/"):
        return column.is_not(None)
    return and_(column >= path, column < path[:-1] + "0")


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most size items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def utc(value: datetime) -> datetime:
    """An aware datetime in UTC (SQLite stores a datetime's fields as given, so convert first)."""
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)

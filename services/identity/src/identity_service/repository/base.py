"""Helpers shared by the identity repositories: the IN-list chunk size, aware UTC datetimes and LIKE
prefixes."""

from __future__ import annotations

from datetime import UTC, datetime

CHUNK = 500


def utc(moment: datetime | None) -> datetime | None:
    """Aware UTC datetimes from either backend (SQLite returns naive values)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def like_prefix(prefix: str) -> str:
    """A LIKE pattern for `startswith(prefix)` (paths hold digits and slashes only)."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"

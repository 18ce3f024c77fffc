"""Org paths and the authority statistics layout: total, directly-run schools, child regions."""

from __future__ import annotations

from dataclasses import dataclass

LEVELS = {"national": 1, "province": 2, "city": 3, "county": 4, "school": 5}
LEVEL_NAMES = {v: k for k, v in LEVELS.items()}
SCHOOL = 5


def child_code(path: str, root_path: str) -> str | None:
    """The code of root's child on the way to path; None when path is root or outside it."""
    if not path.startswith(root_path) or path == root_path:
        return None
    rest = path[len(root_path) :].strip("/")
    return rest.split("/")[0] if rest else None


def parent_path(path: str) -> str:
    """The path of an org's parent ("/" for a root)."""
    parts = [p for p in path.split("/") if p]
    return "/" + "".join(f"{p}/" for p in parts[:-1]) if len(parts) > 1 else "/"


def code_of(path: str) -> str:
    """The last code of a path."""
    parts = [p for p in path.split("/") if p]
    return parts[-1] if parts else ""


@dataclass(frozen=True)
class RowKey:
    """Which statistics row a school's figures fall in."""

    kind: int  # StatsRowKind: 2 direct schools, 3 child region, 4 school
    org_code: str


def row_for_school(
    school_path: str, root_path: str, *, child_is_school: bool, expand_direct: bool
) -> RowKey | None:
    """Row of a school under root: a child region's row, or the directly-run schools' row (or its
    own row when expanded). None when the school is outside root or is root itself."""
    child = child_code(school_path, root_path)
    if child is None:
        return None
    if child_is_school:
        return RowKey(4 if expand_direct else 2, child)
    return RowKey(3, child)

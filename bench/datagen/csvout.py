"""Streaming CSV output (UTF-8, header row) for millions of generated rows."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING

from bench.datagen.model import ORG_HEADER, STUDENT_HEADER, OrgTree

if TYPE_CHECKING:
    from bench.datagen.generator import DataGen


def _student_line(r: Sequence[object]) -> str:
    return f"{r[0]},{r[1]},{r[2]},{r[3]},{r[4]},{r[5]},{r[6]},{r[7]},{r[8]},{r[9]},{r[10]}\n"


def _any_line(r: Sequence[object]) -> str:
    return ",".join(map(str, r)) + "\n"


def write_csv(
    path: str | Path,
    header: Sequence[str],
    rows: Iterable[Sequence[object]] = (),
    *,
    batches: Iterable[Sequence[Sequence[object]]] = (),
    safe: bool = False,
) -> int:
    """Stream rows (or lists of rows) to a UTF-8 CSV with a header row; returns the row count.

    The fast path joins fields with commas and no quoting: right for generator rows, which never
    hold a comma, quote or newline. ``safe=True`` goes through the csv module instead.
    """
    n = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        if safe:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(header)
            for batch in chain(_chunks(rows), batches):
                w.writerows(batch)
                n += len(batch)
            return n
        f.write(",".join(header) + "\n")
        line = _student_line if tuple(header) == STUDENT_HEADER else _any_line
        write = f.write
        for batch in chain(_chunks(rows), batches):
            write("".join(map(line, batch)))
            n += len(batch)
    return n


def _chunks(rows: Iterable[Sequence[object]], size: int = 8192) -> Iterator[list]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def write_students_csv(path: str | Path, gen: DataGen, tree: OrgTree, total: int) -> int:
    """Generate total students over the tree straight into a CSV; returns the row count."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(STUDENT_HEADER) + "\n")
        write = f.write
        for batch in gen.student_lines_for_tree(tree, total):
            write("".join(batch))
            n += len(batch)
    return n


def write_orgs_csv(path: str | Path, tree: OrgTree) -> int:
    """Write every node of the tree (stages joined with |); returns the number of rows."""
    rows = (
        (
            u.code,
            u.name,
            u.level,
            u.parent_code or "",
            u.category or "",
            "|".join(u.stages),
            u.region_code or "",
        )
        for u in tree.units()
    )
    return write_csv(path, ORG_HEADER, rows)

"""datagen: students generated and written to CSV per second (the generator must not be the
bottleneck of the other benchmarks, which make millions of rows with it)."""

from __future__ import annotations

import time
from itertools import islice

from bench.datagen import DataGen, id_number_ok, school_code_ok, write_students_csv
from bench.registry import Context, Result, benchmark


@benchmark(
    "datagen",
    ">=",
    300_000,
    "students/s",
    "synthetic students generated and written to CSV (small 200k rows, full 5M)",
)
def run(ctx: Context) -> Result:
    """Time write_students_csv over a one-province tree of about 600 students per school."""
    n = ctx.rows(small=200_000, full=5_000_000)
    gen = DataGen(ctx.seed)
    t0 = time.perf_counter()
    tree = gen.org_tree(
        provinces=1, counties=max(1, min(100, n // 2_000)), schools=max(1, n // 600)
    )
    tree_s = time.perf_counter() - t0
    path = ctx.workdir / "students.csv"
    t0 = time.perf_counter()
    rows = write_students_csv(path, gen, tree, n)
    elapsed = time.perf_counter() - t0
    if rows != n:
        raise RuntimeError(f"wrote {rows} rows, expected {n}")
    size = path.stat().st_size
    with open(path, encoding="utf-8") as f:
        sample = [line.split(",") for line in islice(f, 1, 10_001)]
    bad = sum(1 for r in sample if not (id_number_ok(r[0]) and school_code_ok(r[6])))
    if bad:
        raise RuntimeError(f"{bad} of the first {len(sample)} rows have a bad ID or school code")
    return Result(
        rows / elapsed,
        [
            f"tree: {len(tree.provinces)} province, {len(tree.cities)} cities, "
            f"{len(tree.counties)} counties, {len(tree.schools)} schools in {tree_s:.2f} s",
            f"students: {rows} rows, {size / 1e6:.1f} MB in {elapsed:.2f} s "
            f"({size / 1e6 / elapsed:.1f} MB/s); first {len(sample)} IDs checked",
        ],
    )

"""The funding-summary benchmark runs end to end at a tiny size, and its summary agrees with the
DuckDB scan of the same records (the benchmark asserts it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.__main__ import load
from bench.registry import Context, bench_line


def test_funding_summary_benchmark_runs_and_matches_its_anchor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BENCH_ROWS", "3000")
    b = load("funding-summary")
    result = b.fn(Context("small", 1, tmp_path))
    assert result.figure > 0
    assert any("equals the scan" in line for line in result.lines)
    assert bench_line(b, result.figure).startswith("BENCH funding-summary ")

"""The benchmark registry: ``@benchmark(...)`` records a function and its target."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

OPS = (">=", "<=")
SCALES = ("small", "full")


@dataclass(slots=True)
class Result:
    """What a benchmark returns: its figure, plus lines printed above the BENCH line."""

    figure: float
    lines: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Context:
    """What a benchmark gets: scale, seed and a scratch directory removed after the run."""

    scale: str
    seed: int
    workdir: Path

    def rows(self, small: int, full: int) -> int:
        """The data size for this scale; the BENCH_ROWS environment variable overrides it."""
        override = os.environ.get("BENCH_ROWS")
        if override:
            return int(override)
        return full if self.scale == "full" else small

    def tempdir(self, name: str) -> Path:
        """A fresh sub-directory of the scratch directory."""
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.workdir))


BenchFn = Callable[[Context], Result]


@dataclass(frozen=True, slots=True)
class Benchmark:
    """A registered benchmark and its target (e.g. ``>= 20000 rows/s``)."""

    name: str
    target_op: str
    target: float
    unit: str
    help: str
    fn: BenchFn

    def passes(self, figure: float) -> bool:
        """True when the figure meets the target."""
        return figure >= self.target if self.target_op == ">=" else figure <= self.target


REGISTRY: dict[str, Benchmark] = {}


def benchmark(
    name: str, target_op: str, target: float, unit: str, help: str
) -> Callable[[BenchFn], BenchFn]:
    """Register fn(ctx) -> Result as benchmark name, judged by ``figure target_op target``."""
    if target_op not in OPS:
        raise ValueError(f"target_op must be one of {OPS}, not {target_op!r}")

    def register(fn: BenchFn) -> BenchFn:
        if name in REGISTRY and REGISTRY[name].fn is not fn:
            raise ValueError(f"benchmark {name!r} registered twice")
        REGISTRY[name] = Benchmark(name, target_op, float(target), unit, help, fn)
        return fn

    return register


def module_name(name: str) -> str:
    """The module that defines benchmark name: ``bench.bench_<name with - as _>``."""
    return "bench.bench_" + name.replace("-", "_")


def format_number(x: float) -> str:
    """A figure as printed: whole numbers from 100 up, three significant digits below."""
    if x != x:  # NaN
        return "nan"
    if abs(x) >= 100 or float(x).is_integer():
        return str(round(x))
    return f"{x:.3g}"


def bench_line(b: Benchmark, figure: float) -> str:
    """The last line of a run: ``BENCH <name> <figure> <unit> target <op> <target> PASS|FAIL``."""
    verdict = "PASS" if b.passes(figure) else "FAIL"
    return (
        f"BENCH {b.name} {format_number(figure)} {b.unit} target {b.target_op} "
        f"{format_number(b.target)} {verdict}"
    )


class Planned(NamedTuple):
    """A benchmark named in an issue, with its target, before or after its module exists."""

    target_op: str
    target: float
    unit: str
    help: str


# The benchmarks the issues ask for; a module's @benchmark registration is authoritative once it
# exists, this table keeps `--list` and bench/README.md honest before then.
# fmt: off
PLANNED: dict[str, Planned] = {
    "datagen": Planned(">=", 300_000, "students/s", "synthetic students generated and written to CSV"),
    "outbox-relay": Planned(">=", 2_000, "events/s", "outbox commit → JetStream ack, sync_interval always"),
    "consumer-apply": Planned(">=", 5_000, "events/s", "JetStream events applied by a durable consumer"),
    "gateway": Planned(">=", 1_500, "req/s", "authenticated REST requests through the gateway"),
    "roster-sync": Planned(">=", 20_000, "rows/s", "students synced into roster (SyncStudents)"),
    "special-group-issue": Planned("<=", 60, "s", "a central special-group batch issued and matched"),
    "aid-import": Planned(">=", 20_000, "rows/s", "aid records imported from an .xlsx template"),
    "aid-audit": Planned("<=", 10, "s", "a bulk multi-level audit of aid records"),
    "funding-summary": Planned("<=", 500, "ms", "a funding summary over the hierarchy"),
    "reconcile": Planned("<=", 60, "s", "the 02:00 special-group vs approved-aid comparison"),
    "reconcile-ingest": Planned(">=", 20_000, "events/s", "aid and roster events ingested by reconcile"),
}
# fmt: on

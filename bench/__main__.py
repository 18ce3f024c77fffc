"""The runner: ``python -m bench NAME [--scale small|full] [--seed N]`` or ``--list``.

The last line printed is ``BENCH <name> <figure> <unit> target <op> <target> PASS|FAIL``. A FAIL
is a measurement, so the exit code is still 0; an error exits 1, an unknown name 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

import bench
from bench.registry import PLANNED, REGISTRY, SCALES, Benchmark, Context, bench_line, module_name
from bench.registry import format_number as fmt


class UnknownBenchmark(LookupError):
    """No module and no planned entry for this name."""


def known_names() -> list[str]:
    """Planned benchmarks plus every bench_*.py module present."""
    found = {
        m.name.removeprefix("bench_").replace("_", "-")
        for m in pkgutil.iter_modules(bench.__path__)
        if m.name.startswith("bench_")
    }
    return sorted(found | set(PLANNED))


def load(name: str) -> Benchmark:
    """Import the benchmark's module (lazily, only this one) and return its registration."""
    mod = module_name(name)
    try:
        importlib.import_module(mod)
    except ModuleNotFoundError as e:
        if e.name != mod:
            raise
        if name in PLANNED:
            raise UnknownBenchmark(f"benchmark {name!r} is planned but not implemented yet") from e
        raise UnknownBenchmark(f"no benchmark {name!r}; known: {', '.join(known_names())}") from e
    if name not in REGISTRY:
        raise UnknownBenchmark(f"{mod} does not register a benchmark named {name!r}")
    return REGISTRY[name]


def list_benchmarks() -> list[str]:
    """One line per benchmark: name, target, and whether it can run here."""
    out = []
    for name in known_names():
        try:
            b = load(name)
            op, target, unit, help_, state = b.target_op, b.target, b.unit, b.help, ""
        except UnknownBenchmark:
            p = PLANNED[name] if name in PLANNED else None
            if p is None:
                continue
            op, target, unit, help_, state = *p, "  [not implemented]"
        except Exception as e:  # a module that fails to import must not hide the others
            p = PLANNED.get(name)
            op, target, unit, help_ = p if p else ("?", float("nan"), "?", "")
            state = f"  [unavailable: {type(e).__name__}: {e}]"
        target_text = f"{op} {fmt(target)} {unit}"
        out.append(f"{name:<20} {target_text:<22} {help_}{state}")
    return out


def run(name: str, *, scale: str, seed: int, workdir: Path | None) -> int:
    """Run one benchmark and print its result; returns the process exit code."""
    b = load(name)
    print(f"bench {name}: scale={scale} seed={seed}", flush=True)
    started = time.perf_counter()
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        result = b.fn(Context(scale, seed, workdir))
    else:
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
            result = b.fn(Context(scale, seed, Path(tmp)))
    print(f"run took {time.perf_counter() - started:.1f} s")
    for line in result.lines:
        print(line)
    print(bench_line(b, result.figure), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run or list benchmarks."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", help="benchmark name, e.g. aid-import")
    parser.add_argument("--list", action="store_true", help="list benchmarks and their targets")
    parser.add_argument("--scale", choices=SCALES, default="small")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, help="keep the generated data here")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(list_benchmarks()))
        return 0
    if not args.name:
        parser.error("a benchmark NAME or --list is required")
    try:
        return run(args.name, scale=args.scale, seed=args.seed, workdir=args.workdir)
    except UnknownBenchmark as e:
        print(f"bench: {e}", file=sys.stderr)
        return 2
    except Exception:
        traceback.print_exc()
        print(f"bench {args.name}: error", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

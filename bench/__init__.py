"""Zizhu benchmarks: ``python -m bench NAME [--scale small|full] [--seed N]`` (see README.md)."""

from bench.registry import REGISTRY, Benchmark, Context, Result, benchmark

__all__ = ["REGISTRY", "Benchmark", "Context", "Result", "benchmark"]

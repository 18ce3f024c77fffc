"""Helpers for the hot loops of bulk work (100,000-row imports)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Keep Python's cyclic garbage collector out of a synchronous loop that allocates many
    short-lived, acyclic objects (rows); reference counting still frees them."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()

"""Helpers for the hot loops of bulk work (100,000-row imports, 5,000-check calls)."""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_pauses = 0
_was_enabled = False


@contextmanager
def paused_gc() -> Iterator[None]:
    """Keep Python's cyclic garbage collector out of work that allocates many long- and
    short-lived acyclic objects (rows): with a million cells alive, every automatic collection
    rescans them all. Reference counting still frees them. Nestable, and safe across
    coroutines of one event loop (an import pauses it for its whole run): the collector comes
    back when the last pause ends, if it was on before the first."""
    global _pauses, _was_enabled
    if _pauses == 0:
        _was_enabled = gc.isenabled()
        gc.disable()
    _pauses += 1
    try:
        yield
    finally:
        _pauses -= 1
        if _pauses == 0 and _was_enabled:
            gc.enable()


def gc_paused(
    fn: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """A coroutine function run under `paused_gc` (batched calls, bulk imports)."""

    @functools.wraps(fn)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        with paused_gc():
            return await fn(*args, **kwargs)

    return run

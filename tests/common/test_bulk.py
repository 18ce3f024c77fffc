"""`gc_paused`: a coroutine function runs with the cyclic collector off, and it comes back on
after, however the coroutine ends."""

from __future__ import annotations

import asyncio
import gc

import pytest
from zizhu_common.bulk import gc_paused


@gc_paused
async def _state(fail: bool = False) -> bool:
    await asyncio.sleep(0)
    if fail:
        raise ValueError("bad input")
    return gc.isenabled()


async def test_the_collector_is_off_inside_and_back_after() -> None:
    assert gc.isenabled()
    assert await _state() is False
    assert gc.isenabled()
    with pytest.raises(ValueError):
        await _state(fail=True)
    assert gc.isenabled()
    # Overlapping calls on one loop: back on only when the last one ends.
    assert await asyncio.gather(_state(), _state()) == [False, False]
    assert gc.isenabled()
    assert _state.__name__ == "_state"

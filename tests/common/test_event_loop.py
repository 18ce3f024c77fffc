"""The services' and the gateway's event loop (EVENT_LOOP): uvloop by default, asyncio's on
request, and SIGTERM still ends a service's main on either."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
import uvloop
from zizhu_common.runtime import event_loop_factory, run_until_signalled
from zizhu_common.settings import ServiceSettings


def test_uvloop_is_the_default_and_asyncio_can_be_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings().event_loop == "uvloop"
    assert event_loop_factory(ServiceSettings().event_loop) is uvloop.new_event_loop
    monkeypatch.setenv("EVENT_LOOP", "asyncio")
    assert event_loop_factory(ServiceSettings().event_loop) is None
    monkeypatch.setenv("EVENT_LOOP", "trio")
    with pytest.raises(ValueError, match="event_loop"):
        ServiceSettings()


@pytest.mark.parametrize("choice", ["uvloop", "asyncio"])
def test_a_service_main_runs_on_the_chosen_loop_until_sigterm(choice: str) -> None:
    seen: list[type] = []

    async def main(stop: asyncio.Event) -> None:
        seen.append(type(asyncio.get_running_loop()))
        asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(stop.wait(), 5)

    run_until_signalled(main, event_loop_factory(choice))
    assert len(seen) == 1
    assert issubclass(seen[0], uvloop.Loop) == (choice == "uvloop")
    assert issubclass(seen[0], asyncio.AbstractEventLoop)

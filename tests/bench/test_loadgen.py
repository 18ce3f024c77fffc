"""The gateway benchmark's h2load driver: its arguments, its reading of h2load's summary, and a
fixed-rate run against a real keep-alive HTTP server (when h2load is installed)."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from pathlib import Path

import pytest

from bench.loadgen import _h2load_args, _h2load_counts, h2load_http_load

SUMMARY = """
finished in 10.00s, 1000.00 req/s, 1.18MB/s
requests: 10000 total, 10000 started, 9998 done, 9990 succeeded, 8 failed, 0 errored, 0 timeout
status codes: 9990 2xx, 0 3xx, 8 4xx, 0 5xx
"""


def test_fixed_rate_spreads_the_sixteen_connections_over_one_period_of_each() -> None:
    args = _h2load_args("h2load", [("authorization", "Bearer t")], 1000.0)
    assert args[:4] == ["h2load", "-c16", "-m1", "-t1"]
    # 62.5 requests a second on each connection; one connection opened every millisecond, so the
    # 16 connections' clocks cover the 16 ms between two requests of one connection.
    assert "--rps=62.5" in args and "-r1" in args and "--rate-period=1ms" in args
    assert args[-2:] == ["-H", "authorization: Bearer t"]
    assert "--rate-period=2ms" in _h2load_args("h2load", [], 500.0)
    # Above 1,000 a second h2load's whole-millisecond period takes connections two at a time.
    fast = _h2load_args("h2load", [], 2000.0)
    assert "-r2" in fast and "--rate-period=1ms" in fast
    assert not any(a.startswith(("--rps", "-r", "--rate")) for a in _h2load_args("h", [], None))


def test_summary_counts_are_read() -> None:
    assert _h2load_counts(SUMMARY) == (9998, 9990, 1000.0)
    with pytest.raises(RuntimeError, match="unexpected h2load output"):
        _h2load_counts("h2load: connection refused")


class ArrivalServer:
    """An HTTP/1.1 keep-alive server on its own thread that answers `{}` and notes when each
    request arrived."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ArrivalServer:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        server = loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        loop.run_forever()
        server.close()
        loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                self.arrivals.append(time.monotonic())
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


@pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load (nghttp2-client) not installed")
def test_fixed_rate_run_sends_at_the_rate_without_bursts(tmp_path: Path) -> None:
    with ArrivalServer() as server:
        load = h2load_http_load(
            "h2load", f"http://127.0.0.1:{server.port}", "t", 2.0, tmp_path, rate=400.0
        )
    assert load.errors == 0 and load.requests == 800
    arrivals = sorted(server.arrivals)
    span = arrivals[-1] - arrivals[0]
    assert 1.5 < span < 3.0  # 800 requests at 400 a second, not as fast as the server answers
    # With every connection's clock started at once, requests come 16 at a time every 40 ms.
    # Staggered, a 2.5-ms period (one request expected) holds only a few.
    most = max(
        sum(1 for t in arrivals[i : i + 16] if t - arrivals[i] < 0.0025)
        for i in range(len(arrivals))
    )
    assert most <= 6, most

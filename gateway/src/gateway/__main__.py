"""`python -m gateway serve`: uvicorn on uvloop (EVENT_LOOP) and httptools, in HTTP_WORKERS
processes.

With HTTP_WORKERS > 1 this process binds the listening socket and runs that many worker processes
(spawned, each with its own app: token cache, Redis, gRPC channels, audit publisher) that accept
on it; a worker that dies is started again, and SIGTERM/SIGINT stop them all gracefully.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import multiprocessing
import signal
import socket
import sys
import time
from collections.abc import Generator
from multiprocessing.connection import wait
from typing import Any

import uvicorn
from zizhu_common.logs import configure_logging
from zizhu_common.runtime import event_loop_factory

from gateway.main import create_app
from gateway.settings import Settings

log = logging.getLogger("gateway")

GRACEFUL_SHUTDOWN_S = 10


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM after a graceful shutdown (exit -15); Zizhu exits 0 instead."""

    signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        loop = asyncio.get_running_loop()
        for sig in self.signals:
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        yield


def _config(settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        http="auto",  # httptools when installed
        # The client IP is the gateway's own business (TRUSTED_PROXIES, gateway.security): uvicorn
        # must not rewrite the peer from X-Forwarded-For behind the gateway's back.
        proxy_headers=False,
        log_config=None,
        access_log=False,
        # No `server: uvicorn` on every answer: it tells clients nothing they need.
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )


def serve(settings: Settings, sockets: list[socket.socket] | None = None) -> None:
    """Serve one uvicorn server (on the given listening sockets, or binding its own)."""
    server = _Server(_config(settings))
    if sockets is not None:
        # A worker: SIGINT (Ctrl-C to the process group) is the supervisor's to handle.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        server.signals = (signal.SIGTERM,)
    # What is alive now (modules, the app, its routes and schemas) lives as long as the process:
    # keep it out of the cyclic collector's generations so that collections stay short.
    gc.collect()
    gc.freeze()
    with asyncio.Runner(loop_factory=event_loop_factory(settings.event_loop)) as runner:
        runner.run(server.serve(sockets=sockets))


def _worker(sock: socket.socket) -> None:
    settings = Settings()
    configure_logging(service="gateway", level=settings.log_level, json_output=settings.log_json)
    serve(settings, [sock])


class Supervisor:
    """Runs HTTP_WORKERS worker processes on one listening socket."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ctx = multiprocessing.get_context("spawn")
        self.stopping = False
        self.workers: list[Any] = []

    def _bind(self) -> socket.socket:
        config = uvicorn.Config(
            "gateway.main:create_app", host=self.settings.http_host, port=self.settings.http_port
        )
        sock = config.bind_socket()
        sock.set_inheritable(True)
        return sock

    def _start(self, sock: socket.socket, index: int) -> Any:
        # Run as `python -m gateway`, this module is `__main__`, which spawned children do not
        # import again: hand them the worker function of the importable `gateway.__main__`.
        target = importlib.import_module("gateway.__main__")._worker
        proc = self.ctx.Process(target=target, args=(sock,), name=f"gateway-worker-{index}")
        proc.start()
        return proc

    def _stop(self, *_: object) -> None:
        self.stopping = True

    def run(self) -> int:
        """Start the workers, restart any that dies, stop them all on SIGTERM/SIGINT."""
        sock = self._bind()
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        n = self.settings.http_workers
        self.workers = [self._start(sock, i) for i in range(n)]
        log.info("gateway serving on %s:%s with %d workers", self.settings.http_host,
                 self.settings.http_port, n)  # fmt: skip
        while not self.stopping:
            wait([w.sentinel for w in self.workers], timeout=0.5)
            for i, w in enumerate(self.workers):
                if not w.is_alive() and not self.stopping:
                    log.error("gateway worker %s exited (%s), starting it again", w.pid, w.exitcode)
                    time.sleep(0.5)
                    self.workers[i] = self._start(sock, i)
        for w in self.workers:
            if w.is_alive():
                w.terminate()  # SIGTERM: a graceful shutdown in the worker
        codes = []
        for w in self.workers:
            w.join(GRACEFUL_SHUTDOWN_S + 5)
            if w.is_alive():
                w.kill()
                w.join(5)
            codes.append(w.exitcode)
        sock.close()
        # A worker still starting up when SIGTERM came dies of the signal before uvicorn installs
        # its handler: that is the stop we asked for, not a failure.
        return 0 if all(c in (0, -signal.SIGTERM) for c in codes) else 1


def main() -> int:
    """Serve the gateway until SIGTERM/SIGINT, then finish in-flight requests."""
    command = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if command != "serve":
        sys.stderr.write("usage: python -m gateway serve\n")
        return 2
    settings = Settings()
    configure_logging(service="gateway", level=settings.log_level, json_output=settings.log_json)
    if settings.http_workers > 1:
        return Supervisor(settings).run()
    serve(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m gateway serve`."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Generator

import uvicorn
from zizhu_common.logs import configure_logging

from gateway.main import create_app
from gateway.settings import Settings


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM after a graceful shutdown (exit -15); Zizhu exits 0 instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        yield


def main() -> int:
    """Serve the gateway with uvicorn until SIGTERM/SIGINT, then finish in-flight requests."""
    command = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if command != "serve":
        sys.stderr.write("usage: python -m gateway serve\n")
        return 2
    settings = Settings()
    configure_logging(service="gateway", level=settings.log_level, json_output=settings.log_json)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    asyncio.run(_Server(config).serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())

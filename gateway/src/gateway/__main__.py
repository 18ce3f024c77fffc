"""`python -m gateway serve`."""

from __future__ import annotations

import sys

import uvicorn
from zizhu_common.logs import configure_logging

from gateway.main import create_app
from gateway.settings import Settings


def main() -> int:
    """Serve the gateway with uvicorn until SIGTERM/SIGINT."""
    command = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if command != "serve":
        sys.stderr.write("usage: python -m gateway serve\n")
        return 2
    settings = Settings()
    configure_logging(service="gateway", level=settings.log_level, json_output=settings.log_json)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

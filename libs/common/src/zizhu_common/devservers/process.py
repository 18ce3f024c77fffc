"""What the dev servers share: free ports, finding binaries, spawning a child process, waiting until
it is ready, stopping it, and stopping every server still running at exit."""

from __future__ import annotations

import atexit
import contextlib
import importlib.metadata
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_LOG_TAIL_LINES = 40


class ServerStartError(RuntimeError):
    """A server process failed to start or become ready; the message ends with its log tail."""


# --------------------------------------------------------------------------- helpers

_ports_lock = threading.Lock()
_ports_given: set[int] = set()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free now and not handed out before by this process."""
    with _ports_lock:
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            if port not in _ports_given:
                _ports_given.add(port)
                return port
    raise RuntimeError("no free TCP port found")


def _log_tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    """Return the last lines of a log file, or a note that it is missing."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    tail = "\n".join(text.splitlines()[-lines:])
    return f"--- last lines of {path} ---\n{tail}"


def _is_executable(path: Path) -> bool:
    """Tell whether path is an executable regular file."""
    return path.is_file() and os.access(path, os.X_OK)


def _find_binary(name: str, candidates: list[Callable[[], Path | None]]) -> Path:
    """Return the first existing executable among lazily computed candidate paths."""
    for candidate in candidates:
        try:
            path = candidate()
        except Exception:  # a broken lookup must not hide the others
            log.debug("lookup for %s failed", name, exc_info=True)
            continue
        if path is not None and _is_executable(path):
            return path
    raise FileNotFoundError(
        f"{name} not found (looked next to {sys.executable}, on PATH, in wheels)"
    )


def _next_to_python(name: str) -> Path:
    """Return the path of name in the directory of the running interpreter (the venv bin)."""
    return Path(sys.executable).parent / name


def _on_path(name: str) -> Path | None:
    """Return name as found on PATH."""
    found = shutil.which(name)
    return Path(found) if found else None


def _package_dir(package: str) -> Path | None:
    """Return the directory of an installed package without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def _spawn(cmd: list[str], *, log_path: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start cmd in its own session with stdout and stderr appended to log_path."""
    with open(log_path, "ab") as logf:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )


def _wait_ready(
    check: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    log_path: Path,
    proc: subprocess.Popen[bytes] | None = None,
) -> None:
    """Poll check() until it returns True; raise ServerStartError if proc exits or time runs out."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        if proc is not None and proc.poll() is not None:
            raise ServerStartError(
                f"{what} exited with code {proc.returncode} while starting\n{_log_tail(log_path)}"
            )
        with contextlib.suppress(OSError):
            if check():
                return
        if time.monotonic() >= deadline:
            if proc is not None:
                _terminate(proc, timeout=2.0)
            raise ServerStartError(f"{what} not ready within {timeout:.0f}s\n{_log_tail(log_path)}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


def _terminate(proc: subprocess.Popen[bytes], *, timeout: float) -> None:
    """Send SIGTERM, wait up to timeout, then SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log.warning("pid %s ignored SIGTERM for %.0fs; killing it", proc.pid, timeout)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()


class ChildServer:
    """A server run as one child process of ours: its process, pid, liveness and graceful stop.
    Subclasses set `name` (for the log), `port`, `pid_file` and `_proc` and start it."""

    name = "server"
    port: int
    pid_file: Path
    _proc: subprocess.Popen[bytes] | None

    @property
    def pid(self) -> int | None:
        """The server process id while it runs."""
        return self._proc.pid if self._proc is not None and self.running else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the server (SIGTERM, then SIGKILL after timeout); idempotent."""
        if self._proc is not None:
            _terminate(self._proc, timeout=timeout)
            log.info("%s on port %s stopped", self.name, self.port)
            self.pid_file.unlink(missing_ok=True)
        self._proc = None
        _unregister(self)


def _tcp_greeting(port: int, *, send: bytes | None, expect: bytes) -> bool:
    """Connect to 127.0.0.1:port, optionally send bytes, and check the reply starts with expect."""
    with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
        if send:
            sock.sendall(send)
        data = b""
        while len(data) < len(expect):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.startswith(expect)


def _pid_alive(pid: int) -> bool:
    """Whether pid is a live (not zombie) process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return state != "Z"


def _kill_leftover(pid_file: Path, *, binary: Path, data_dir: Path) -> None:
    """Stop a server left running on data_dir by a process that died without stopping it."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:  # gone, not ours to inspect, or no /proc
        pid_file.unlink(missing_ok=True)
        return
    if Path(exe.removesuffix(" (deleted)")).name != binary.name or Path(cwd) != data_dir:
        pid_file.unlink(missing_ok=True)
        return
    log.warning("%s (pid %s) still runs on %s; stopping it", binary.name, pid, data_dir)
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not _pid_alive(pid):
            break
    pid_file.unlink(missing_ok=True)


# Servers still running, stopped when the interpreter exits.
_live: set[Any] = set()
_live_lock = threading.Lock()


def _register(server: Any) -> None:
    """Remember a running server so that it is stopped at interpreter exit."""
    with _live_lock:
        _live.add(server)


def _unregister(server: Any) -> None:
    """Forget a stopped server."""
    with _live_lock:
        _live.discard(server)


@atexit.register
def _stop_all() -> None:
    """Stop every server still running (interpreter exit)."""
    with _live_lock:
        servers = list(_live)
    for server in servers:
        try:
            server.stop(timeout=5.0)
        except Exception:
            log.exception("could not stop %r at exit", server)

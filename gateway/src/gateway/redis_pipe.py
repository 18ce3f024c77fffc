"""One Redis connection shared by all requests of a gateway process, for the per-request check.

For each command redis-py takes a connection from its pool, runs it inside retry and
observability layers and gives the connection back: for the one script that every request runs
(revocation and both rate limits, gateway.security) that costs several times the round trip
itself. This client keeps a single connection and writes each command as it comes; Redis answers
a connection's commands in order, so a queue of futures hands each answer to its caller, and the
requests in flight share the reads and writes.

Failures are redis-py's exceptions (`redis.exceptions.RedisError`), so that callers treat both
clients alike: a connection that fails or stays silent past the timeout fails every command
waiting on it, and the next command connects again. Only `redis://` and `unix://` URLs (with
user, password and database); anything else stays with redis-py (`PipelinedRedis.supports`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any
from urllib.parse import unquote, urlsplit

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

CRLF = b"\r\n"


class _Incomplete(Exception):
    """The buffer does not hold a whole reply yet."""


def encode_command(args: tuple[Any, ...]) -> bytes:
    """A command in RESP: an array of bulk strings (str as UTF-8, numbers as their decimal text)."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            value = arg
        elif isinstance(arg, str):
            value = arg.encode()
        elif isinstance(arg, int | float) and not isinstance(arg, bool):
            value = repr(arg).encode()
        else:
            raise TypeError(f"cannot send {type(arg).__name__} to Redis")
        out.append(b"$%d\r\n%s\r\n" % (len(value), value))
    return b"".join(out)


def _error(message: str) -> ResponseError:
    if message.startswith("NOSCRIPT"):
        return NoScriptError(message)
    return ResponseError(message)


def parse_reply(buf: bytearray | bytes, pos: int) -> tuple[Any, int]:
    """One RESP2 reply starting at pos, and where the next one starts; _Incomplete if the buffer
    ends first. Simple and bulk strings as bytes, nil as None, errors as ResponseError values."""
    end = buf.find(CRLF, pos)
    if end < 0:
        raise _Incomplete
    kind = buf[pos]
    line = bytes(buf[pos + 1 : end])
    pos = end + 2
    if kind == 36:  # $ bulk string
        size = int(line)
        if size < 0:
            return None, pos
        if len(buf) < pos + size + 2:
            raise _Incomplete
        return bytes(buf[pos : pos + size]), pos + size + 2
    if kind == 58:  # : integer
        return int(line), pos
    if kind == 42:  # * array
        count = int(line)
        if count < 0:
            return None, pos
        items = []
        for _ in range(count):
            item, pos = parse_reply(buf, pos)
            items.append(item)
        return items, pos
    if kind == 43:  # + simple string
        return line, pos
    if kind == 45:  # - error
        return _error(line.decode(errors="replace")), pos
    raise RedisConnectionError(f"unexpected Redis reply type {chr(kind)!r}")


class PipelinedRedis:
    """A single pipelined connection: `await execute("GET", key)`, `await run_script(...)`."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 2.0,
        connect_timeout_s: float = 2.0,
        reconnect_after_s: float = 1.0,
    ):
        if not self.supports(url):
            raise ValueError("PipelinedRedis takes redis:// and unix:// URLs")
        parts = urlsplit(url)
        self._unix_path = parts.path if parts.scheme == "unix" else None
        self._host = parts.hostname or "localhost"
        self._port = parts.port or 6379
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        db = parts.path.strip("/") if parts.scheme == "redis" else ""
        query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
        self._db = int(db or query.get("db", "0") or 0)
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        # After a failed connection attempt, commands fail at once for this long instead of each
        # trying (and perhaps waiting for) a connection of its own.
        self.reconnect_after_s = reconnect_after_s
        self._down_until = 0.0
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: deque[asyncio.Future[Any]] = deque()
        self._outgoing: list[bytes] = []
        self._connecting: asyncio.Lock | None = None
        self._closed = False

    @staticmethod
    def supports(url: str) -> bool:
        """True for the URLs this client connects to itself (plain TCP or a Unix socket)."""
        return urlsplit(url).scheme in ("redis", "unix")

    async def execute(self, *args: Any) -> Any:
        """Send one command and wait for its reply (an error reply is raised)."""
        if self._writer is None:
            await self._connect()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append(future)
        # Commands of the same loop iteration leave in one write (one system call).
        self._outgoing.append(encode_command(args))
        if len(self._outgoing) == 1:
            loop.call_soon(self._flush)
        timer = loop.call_later(self.timeout_s, self._time_out, future)
        try:
            return await future
        finally:
            timer.cancel()

    async def run_script(self, sha: str, script: str, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA, or EVAL when the server does not hold the script yet (EVAL caches it)."""
        try:
            return await self.execute("EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self.execute("EVAL", script, len(keys), *keys, *args)

    async def aclose(self) -> None:
        """Close the connection; commands still waiting fail."""
        self._closed = True
        self._fail(RedisConnectionError("Redis client closed"))

    # ------------------------------------------------------------------ connection

    async def _connect(self) -> asyncio.StreamWriter:
        if self._closed:
            raise RedisConnectionError("Redis client closed")
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._writer is not None:
                return self._writer
            loop = asyncio.get_running_loop()
            if loop.time() < self._down_until:
                raise RedisConnectionError("Redis unavailable (the last connection attempt failed)")
            try:
                reader, writer = await asyncio.wait_for(self._open(), self.connect_timeout_s)
            except (TimeoutError, OSError) as exc:
                self._down_until = loop.time() + self.reconnect_after_s
                raise RedisConnectionError(f"cannot connect to Redis: {exc}") from exc
            self._writer = writer
            self._reader_task = asyncio.get_running_loop().create_task(
                self._read_replies(reader, writer)
            )
            try:
                if self._password is not None:
                    auth = (self._username, self._password) if self._username else (self._password,)
                    await self.execute("AUTH", *auth)
                if self._db:
                    await self.execute("SELECT", self._db)
            except Exception:
                self._fail(RedisConnectionError("Redis refused the connection's set-up"))
                raise
            return writer

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._unix_path is not None:
            return await asyncio.open_unix_connection(self._unix_path)
        return await asyncio.open_connection(self._host, self._port)

    async def _read_replies(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        buf = bytearray()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    raise RedisConnectionError("Redis closed the connection")
                buf += data
                pos = 0
                while pos < len(buf):
                    try:
                        reply, pos_after = parse_reply(buf, pos)
                    except _Incomplete:
                        break
                    pos = pos_after
                    if not self._pending:
                        raise RedisConnectionError("a Redis reply that nobody asked for")
                    future = self._pending.popleft()
                    if future.done():  # its caller gave up (cancelled): the reply is dropped
                        continue
                    if isinstance(reply, ResponseError):
                        future.set_exception(reply)
                    else:
                        future.set_result(reply)
                del buf[:pos]
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = exc if isinstance(exc, RedisConnectionError) else RedisConnectionError(str(exc))
            if self._writer is writer:
                self._fail(error)

    def _flush(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        if self._writer is not None and outgoing:
            self._writer.write(b"".join(outgoing))

    def _time_out(self, future: asyncio.Future[Any]) -> None:
        if not future.done():
            # Unknown state: the answer may still come, after others'. Start again.
            self._fail(RedisTimeoutError(f"no answer from Redis in {self.timeout_s:g} s"))

    def _fail(self, error: Exception) -> None:
        """Drop the connection and fail every command waiting on it."""
        writer, self._writer = self._writer, None
        task, self._reader_task = self._reader_task, None
        pending, self._pending = self._pending, deque()
        self._outgoing = []
        for future in pending:
            if not future.done():
                future.set_exception(error)
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
        if task is not None and task is not asyncio.current_task():
            task.cancel()

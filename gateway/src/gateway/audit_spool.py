"""A local append-only spool that keeps the gateway's audit events until JetStream has them.

The gateway has no database, so it cannot use a transactional outbox. Instead each worker process
appends every audit event to its own segment file (`audit-<pid>-<nonce>.spool` in
AUDIT_SPOOL_DIR) before queueing it for publication, and empties the segment whenever everything
written to it has been acknowledged by JetStream. A worker that dies leaves its segment behind;
the next worker to start (any worker sharing the directory) takes it over, copies its events into
its own segment and publishes them again. With a spool, the segment is the publication queue: the
publisher reads records from its read offset and advances past each acknowledged one, so memory
use does not grow while NATS is away, only the file does. JetStream's duplicate window (the event id is the
`Nats-Msg-Id`) and identity's idempotent audit consumer make such a re-publication harmless.

Segments are owned through `flock`: a live worker holds an exclusive lock on its segment, so
another worker never takes over a live one; a segment is created under a temporary name and only
renamed into view once locked. Records are `<4-byte big-endian length><ActionAudited bytes>`; a
record cut short by a crash is ignored. Appends reach the kernel at once (they survive the process
dying); `sync()` (called by the publisher about once a second) makes them survive a machine crash.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "audit-"
SUFFIX = ".spool"
_LEN = struct.Struct(">I")
MAX_RECORD = 4 * 1024 * 1024


def decode(data: bytes) -> list[bytes]:
    """The complete records of a segment's bytes (a torn last record is dropped)."""
    records, pos = [], 0
    while pos + _LEN.size <= len(data):
        (size,) = _LEN.unpack_from(data, pos)
        end = pos + _LEN.size + size
        if size > MAX_RECORD or end > len(data):
            break
        records.append(data[pos + _LEN.size : end])
        pos = end
    return records


class AuditSpool:
    """This process's segment in the spool directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path: Path | None = None
        self._fd: int | None = None
        self._dirty = False
        self.size = 0
        self.read_offset = 0

    def open(self) -> list[bytes]:
        """Create and lock this process's segment; take over dead workers' segments.

        Returns the recovered records, already copied into this process's segment."""
        self.directory.mkdir(parents=True, exist_ok=True)
        nonce = uuid.uuid4().hex[:12]
        tmp = self.directory / f".tmp-{nonce}"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.path = self.directory / f"{PREFIX}{os.getpid()}-{nonce}{SUFFIX}"
        os.rename(tmp, self.path)
        self._fd = fd
        recovered: list[bytes] = []
        for other in sorted(self.directory.glob(f"{PREFIX}*{SUFFIX}")):
            if other != self.path:
                recovered += self._take_over(other)
        if recovered:
            self.sync()
            log.warning("audit spool: recovered %d unpublished events", len(recovered))
        return recovered

    def _take_over(self, segment: Path) -> list[bytes]:
        try:
            ofd = os.open(segment, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return []  # another worker took it over first
        try:
            try:
                fcntl.flock(ofd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return []  # its worker is alive
            if not segment.exists():
                return []  # taken over and removed while we waited for the lock
            records = decode(segment.read_bytes())
            for record in records:
                self.append(record)
            if records:
                self.sync()  # our copy is durable before the original goes
            segment.unlink()
            return records
        finally:
            os.close(ofd)

    def append(self, record: bytes) -> None:
        """Append one event (before it is queued for publication)."""
        if self._fd is None:
            return
        os.write(self._fd, _LEN.pack(len(record)) + record)
        self._dirty = True
        self.size += _LEN.size + len(record)

    def sync(self) -> None:
        """Make what was appended durable (fsync) if anything was."""
        if self._fd is not None and self._dirty:
            self._dirty = False
            os.fsync(self._fd)

    @property
    def dirty(self) -> bool:
        """Whether appends are waiting for `sync()`."""
        return self._dirty

    @property
    def pending(self) -> bool:
        """Whether records wait behind the read offset."""
        return self.read_offset < self.size

    def peek(self) -> tuple[int, bytes] | None:
        """The next unpublished record with the offset just after it (None when none is)."""
        if self._fd is None or self.size - self.read_offset < _LEN.size:
            return None
        (length,) = _LEN.unpack(os.pread(self._fd, _LEN.size, self.read_offset))
        end = self.read_offset + _LEN.size + length
        if length > MAX_RECORD or end > self.size:
            return None
        return end, os.pread(self._fd, length, self.read_offset + _LEN.size)

    def advance(self, offset: int) -> None:
        """Records before offset are published; an all-published segment is emptied."""
        self.read_offset = offset
        if self.read_offset >= self.size:
            self.clear()

    def clear(self) -> None:
        """Everything appended so far is published: empty the segment."""
        if self._fd is not None and self.size:
            os.ftruncate(self._fd, 0)
            self.size = 0
            self.read_offset = 0
            self._dirty = False

    def close(self) -> None:
        """Release the segment: removed when empty, otherwise left for the next worker."""
        if self._fd is None:
            return
        if self.size == 0 and self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        else:
            with contextlib.suppress(OSError):
                os.fsync(self._fd)
            log.error("audit spool: %s keeps unpublished events for the next start", self.path)
        os.close(self._fd)
        self._fd = None

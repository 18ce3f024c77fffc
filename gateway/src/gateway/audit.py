"""Request audit: `gateway.audit.recorded` events (ActionAudited) published to JetStream.

The gateway has no database, so there is no transactional outbox. Each event is appended to this
worker's segment of a local spool (`AUDIT_SPOOL_DIR`, see `audit_spool.py`), which is the queue the
publisher reads. Events are published with `Nats-Msg-Id` = event id (JetStream drops duplicates of
a retry) and retried with backoff while NATS is away. The segment is emptied whenever all of it
has been published, and a dead worker's unpublished events are published by the next worker that
starts. Without a spool directory (AUDIT_SPOOL_DIR empty, or a failed write to it) events wait in
a bounded in-memory queue instead: lost with the process, the oldest dropped when it is full
(counted in `dropped`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from zizhu_common.logs import request_id_var
from zizhu_common.messaging import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    connect_nats,
    ensure_producer_stream,
)
from zizhu_common.outbox import new_event_id
from zizhu_contracts.common.v1 import common_pb2

from gateway.audit_spool import AuditSpool

if TYPE_CHECKING:
    from starlette.requests import Request

    from gateway.deps import Caller

log = logging.getLogger(__name__)

AUDIT_SCOPE_KEY = "zizhu.audit"
SUBJECT = "gateway.audit.recorded"
PRODUCER = "gateway"
EVENT_TYPE = common_pb2.ActionAudited.DESCRIPTOR.full_name
SPOOL_SYNC_INTERVAL_S = 1.0

OUTCOME_SUCCEEDED = common_pb2.AUDIT_OUTCOME_SUCCEEDED
OUTCOME_DENIED = common_pb2.AUDIT_OUTCOME_DENIED
OUTCOME_FAILED = common_pb2.AUDIT_OUTCOME_FAILED


@dataclass
class AuditNote:
    """What a request adds to its audit entry; the middleware fills in the rest."""

    caller: Caller | None = None
    object_type: str = ""
    object_id: str = ""
    detail: str = ""
    sensitive_read: bool = False
    export: bool = False
    # Set by routes that must be audited even when they are reads (e.g. refusals found locally).
    force: bool = False
    # Overrides the outcome read from the HTTP status (e.g. a login still waiting for TOTP).
    outcome: int | None = None
    # For logins: whom the request authenticated (or tried to).
    actor_account_id: str = ""
    actor_org_code: str = ""
    actor_org_path: str = ""
    actor_roles: tuple[str, ...] = ()


def audit_note(request: Request) -> AuditNote:
    """The audit note of this request (a throwaway one outside /api/v1)."""
    note = request.scope.get(AUDIT_SCOPE_KEY)
    return note if isinstance(note, AuditNote) else AuditNote()


def outcome_for(status: int) -> int:
    """SUCCEEDED for 2xx/3xx, DENIED for 401/403/404-by-scope/429, FAILED otherwise."""
    if status < 400:
        return OUTCOME_SUCCEEDED
    if status in (401, 403, 429):
        return OUTCOME_DENIED
    return OUTCOME_FAILED


def role_values(roles: tuple[str, ...] | frozenset[str]) -> list[int]:
    """Role names (`admin`) as common.v1.Role values; unknown names are left out."""
    values = []
    for role in sorted(roles):
        value = common_pb2.Role.DESCRIPTOR.values_by_name.get(f"ROLE_{role.upper()}")
        if value is not None:
            values.append(value.number)
    return values


def build_event(
    *,
    action: str,
    status: int,
    note: AuditNote,
    client_ip: str,
    user_agent: str,
) -> common_pb2.ActionAudited:
    """The ActionAudited message for one finished request."""
    caller = note.caller
    account_id = caller.account_id if caller else note.actor_account_id
    org_code = caller.org_code if caller else note.actor_org_code
    org_path = caller.org_path if caller else note.actor_org_path
    roles = tuple(caller.roles) if caller else note.actor_roles
    event = common_pb2.ActionAudited(
        action=action,
        object_type=note.object_type,
        object_id=note.object_id,
        outcome=note.outcome or outcome_for(status),  # type: ignore[arg-type]
        status_code=str(status),
        actor_org_code=org_code,
        actor_org_path=org_path,
        actor_roles=role_values(roles),  # type: ignore[arg-type]
        client_ip=client_ip,
        user_agent=user_agent[:256],
        sensitive_read=note.sensitive_read,
        detail=note.detail[:500],
    )
    event.meta.event_id = new_event_id()
    event.meta.occurred_at.FromDatetime(datetime.now(UTC))
    event.meta.producer = PRODUCER
    event.meta.correlation_id = request_id_var.get() or ""
    event.meta.actor_account_id = account_id
    event.meta.org_path = org_path
    return event


class AuditPublisher:
    """Publishes audit events from a bounded queue; connects and reconnects in the background."""

    def __init__(
        self,
        nats_url: str,
        *,
        queue_size: int,
        publish_timeout_s: float,
        duplicate_window_s: float,
        replicas: int,
        spool_dir: str = "",
    ) -> None:
        self.nats_url = nats_url
        # (event id, ActionAudited bytes), oldest first
        self.queue: deque[tuple[str, bytes]] = deque(maxlen=queue_size)
        self.spool = AuditSpool(Path(spool_dir)) if spool_dir else None
        self.publish_timeout_s = publish_timeout_s
        self.duplicate_window_s = duplicate_window_s
        self.replicas = replicas
        self.dropped = 0
        self.published = 0
        self._wakeup = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sync_task: asyncio.Task[None] | None = None
        self._nc: NatsClient | None = None

    def record(self, event: common_pb2.ActionAudited) -> None:
        """Spool (or queue in memory) an event without waiting."""
        payload = event.SerializeToString()
        if self.spool is not None:
            try:
                self.spool.append(payload)
                self._wakeup.set()
                return
            except OSError as exc:
                log.error("audit spool write failed, event kept in memory only: %s", exc)
        self._enqueue(event.meta.event_id, payload)

    def _enqueue(self, event_id: str, payload: bytes) -> None:
        if len(self.queue) == self.queue.maxlen:
            self.dropped += 1
            log.error("audit queue full, dropping the oldest event (dropped=%d)", self.dropped)
        self.queue.append((event_id, payload))
        self._wakeup.set()

    def start(self) -> None:
        """Open the spool (publishing what dead workers left in it) and start publishing."""
        if self.spool is not None:
            self.spool.open()
            self._sync_task = asyncio.create_task(self._sync_spool(), name="audit-spool-sync")
        self._task = asyncio.create_task(self._run(), name="audit-publisher")

    async def _sync_spool(self) -> None:
        assert self.spool is not None
        while True:
            await asyncio.sleep(SPOOL_SYNC_INTERVAL_S)
            if self.spool.dirty:
                try:
                    await asyncio.to_thread(self.spool.sync)
                except OSError as exc:
                    log.error("audit spool fsync failed: %s", exc)

    async def stop(self, *, flush_timeout_s: float = 5.0) -> None:
        """Try to publish what is queued, then disconnect."""
        deadline = asyncio.get_running_loop().time() + flush_timeout_s
        while self._backlog() and self._nc is not None and self._nc.is_connected:
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.05)
        self._stop.set()
        self._wakeup.set()
        for task in (self._task, self._sync_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self.queue:
            log.error("gateway stopping with %d audit events unpublished", len(self.queue))
        # An unpublished spool segment stays on disk for the next worker that starts.
        if self.spool is not None:
            self.spool.close()
        if self._nc is not None and not self._nc.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.close(), timeout=2)

    async def _connect(self) -> JetStreamContext:
        backoff = 0.2
        while True:
            try:
                self._nc = await connect_nats(self.nats_url, name="gateway")
                js = self._nc.jetstream(timeout=self.publish_timeout_s)
                await ensure_producer_stream(
                    js,
                    producer=PRODUCER,
                    duplicate_window_s=self.duplicate_window_s,
                    replicas=self.replicas,
                )
                return js
            except Exception as exc:
                log.warning("audit: cannot reach NATS yet (%s), retrying", exc)
                if self._nc is not None:
                    with contextlib.suppress(Exception):
                        await self._nc.close()
                    self._nc = None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _backlog(self) -> bool:
        return bool(self.queue) or (self.spool is not None and self.spool.pending)

    def _next(self) -> tuple[str, bytes, int] | None:
        """The oldest unpublished event: (event id, bytes, spool offset after it or -1)."""
        if self.queue:  # memory first: events the spool could not take
            event_id, payload = self.queue[0]
            return event_id, payload, -1
        if self.spool is not None:
            nxt = self.spool.peek()
            if nxt is not None:
                end, payload = nxt
                return common_pb2.ActionAudited.FromString(payload).meta.event_id, payload, end
        return None

    async def _run(self) -> None:
        js = await self._connect()
        backoff = 0.2
        while not self._stop.is_set():
            item = self._next()
            if item is None:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            event_id, payload, spool_end = item
            try:
                await js.publish(
                    SUBJECT,
                    payload,
                    timeout=self.publish_timeout_s,
                    headers={EVENT_ID_HEADER: event_id, EVENT_TYPE_HEADER: EVENT_TYPE},
                )
            except Exception as exc:  # NATS away or slow: keep the event, retry it
                log.warning("audit publish failed, will retry: %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.2
            self.published += 1
            if spool_end < 0:
                if self.queue and self.queue[0][0] == event_id:
                    self.queue.popleft()
            elif self.spool is not None:
                # record() only appends (on this same event loop), so the offset stays valid.
                self.spool.advance(spool_end)

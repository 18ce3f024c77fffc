"""Pure ASGI middleware: request id, body size limits, request audit, idempotency capture.

Order (outermost first): RequestId → Audit → BodyLimit → Idempotency → FastAPI's routing. Pure
ASGI rather than `@app.middleware("http")` because each of these runs on every request.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import logging
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from zizhu_common.logs import request_id_var

from gateway.audit import AUDIT_SCOPE_KEY, AuditNote, AuditPublisher, build_event
from gateway.errors import HTTP_CODES, error_body
from gateway.security import client_ip

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
IDEMPOTENCY_SCOPE_KEY = "zizhu.idem"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: Any = ()) -> None:
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})


class RequestIds:
    """Request ids for requests that bring none: a random prefix per process and a counter, so
    that ids are unique without reading the system's random source on every request."""

    def __init__(self) -> None:
        self.prefix = uuid.uuid4().hex[:16]
        self.count = itertools.count(1)

    def next(self) -> str:
        """A new 32-hex-digit id."""
        return f"{self.prefix}{next(self.count):016x}"


def route_template(scope: Scope) -> str:
    """The request path with its path parameters put back as `{name}` (the route's template)."""
    params = {str(v): k for k, v in (scope.get("path_params") or {}).items()}
    if not params:
        return str(scope["path"])
    return "/".join(
        "{" + params[part] + "}" if part in params else part for part in scope["path"].split("/")
    )


class RequestIdMiddleware:
    """Sets the request id (X-Request-ID in and out) and answers unhandled errors in the one
    error shape, so that no traceback and no request without an id ever leaves the gateway."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.ids = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = (_header(scope, b"x-request-id") or "")[:128] or self.ids.next()
        token = request_id_var.set(rid)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            log.exception("unhandled error: %s", exc)
            if started:
                raise
            code, message = HTTP_CODES[500]
            await _send_json(send_with_id, 500, error_body(500, code, message, None))
        finally:
            request_id_var.reset(token)


class BodyLimitMiddleware:
    """413 in the one error shape for bodies over the limit (uploads have a larger one)."""

    def __init__(self, app: ASGIApp, *, max_json_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_json = max_json_bytes
        self.max_upload = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        content_type = _header(scope, b"content-type") or ""
        limit = self.max_upload if content_type.startswith("multipart/") else self.max_json
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await self._too_large(send, limit)
            return
        received = 0
        too_large = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if too_large:
                if message["type"] == "http.response.start" and not response_started:
                    response_started = True
                    await self._too_large(send, limit)
                return
            await send(message)

        await self.app(scope, counting_receive, guarded_send)

    @staticmethod
    async def _too_large(send: Send, limit: int) -> None:
        code, _ = HTTP_CODES[413]
        message = f"请求内容超过上限 {limit // (1024 * 1024) or 1} MB"
        body = error_body(413, code, message, None, {"limit_bytes": limit})
        await _send_json(send, 413, body)


class AuditMiddleware:
    """Publishes an audit event for every write request, every refusal (403) and every read that
    a route marks as sensitive (export, full-ID read) under /api/v1."""

    def __init__(self, app: ASGIApp, *, publisher: AuditPublisher, trusted_proxies: list[str]):
        self.app = app
        self.publisher = publisher
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        note = AuditNote()
        scope[AUDIT_SCOPE_KEY] = note
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            method = scope["method"]
            if (
                method in WRITE_METHODS
                or status == 403
                or note.force
                or note.sensitive_read
                or note.export
            ):
                self._record(scope, method, status, note)

    def _record(self, scope: Scope, method: str, status: int, note: AuditNote) -> None:
        path = route_template(scope)
        peer = scope.get("client")
        ip = client_ip(
            peer[0] if peer else None, _header(scope, b"x-forwarded-for"), self.trusted_proxies
        )
        try:
            event = build_event(
                action=f"{method} {path}",
                status=status,
                note=note,
                client_ip=ip,
                user_agent=_header(scope, b"user-agent") or "",
            )
            self.publisher.record(event)
        except Exception:  # auditing must never turn an answered request into an error
            log.exception("could not build the audit event for %s %s", method, path)


class IdempotencyState:
    """Per request: the body fingerprint being computed and the Redis key once claimed."""

    __slots__ = ("claimed_key", "fingerprint", "hasher", "key")

    def __init__(self, key: str, method: str, path: str, query: bytes) -> None:
        self.key = key
        self.hasher = hashlib.sha256(f"{method} {path}?".encode() + query + b"\n")
        self.claimed_key: str | None = None
        self.fingerprint = ""


# Refusals before the request ran, and server-side failures whose effect is unknown: not stored,
# so the client may retry with the same key.
_NOT_STORED = frozenset({401, 413, 429})


class IdempotencyMiddleware:
    """Hashes the body of POSTs that carry an Idempotency-Key, and stores the answer of those
    whose key the `idempotent` dependency claimed (see gateway.idempotency)."""

    def __init__(self, app: ASGIApp, *, redis_getter: Any, ttl_s: int) -> None:
        self.app = app
        self.redis_getter = redis_getter
        self.ttl_s = ttl_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, b"idempotency-key") if scope["type"] == "http" else None
        if key is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        state = IdempotencyState(
            key, scope["method"], scope["path"], scope.get("query_string", b"")
        )
        scope[IDEMPOTENCY_SCOPE_KEY] = state

        async def hashing_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state.hasher.update(message.get("body", b""))
            return message

        status = 0
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, hashing_receive, capture)
        except BaseException:
            await self._release(state)
            raise
        if state.claimed_key is None:
            return
        if status in _NOT_STORED or status == 0 or status >= 500:
            await self._release(state)
            return
        record = {
            "state": "done",
            "fp": state.fingerprint,
            "status": status,
            "content_type": next(
                (v.decode("latin-1") for k, v in headers if k == b"content-type"),
                "application/json",
            ),
            "body": base64.b64encode(b"".join(chunks)).decode(),
        }
        try:
            await self.redis_getter().set(state.claimed_key, json.dumps(record), ex=self.ttl_s)
        except Exception:
            log.exception("could not store the idempotent response")

    async def _release(self, state: IdempotencyState) -> None:
        if state.claimed_key is None:
            return
        try:
            await self.redis_getter().delete(state.claimed_key)
        except Exception:
            log.exception("could not release the idempotency key")

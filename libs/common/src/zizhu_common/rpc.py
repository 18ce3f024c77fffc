"""gRPC plumbing: the caller context carried in metadata, the server with health and reflection,
and an interceptor that maps domain errors to status codes."""

from __future__ import annotations

import contextvars
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from zizhu_common.errors import ERROR_TRAILER, DomainError, Unauthenticated
from zizhu_common.logs import request_id_var

log = logging.getLogger(__name__)

LEVELS = ("national", "province", "city", "county", "school")

MD_ACCOUNT = "x-zizhu-account-id"
MD_ORG = "x-zizhu-org-code"
MD_ORG_PATH = "x-zizhu-org-path"
MD_LEVEL = "x-zizhu-level"
MD_ROLES = "x-zizhu-roles"
MD_REQUEST_ID = "x-request-id"

CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
]

# The server must accept the clients' keepalive pings, also during long calls
# that send no data (a bulk import, a comparison run): with gRPC's defaults a
# ping every 30 s earns "too many pings" strikes and the call dies UNAVAILABLE.
SERVER_OPTIONS = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 0),
]


@dataclass(frozen=True)
class CallerContext:
    """Who is calling: account, organisation (code, materialised path, level), roles, request id."""

    account_id: str
    org_code: str
    org_path: str
    level: str
    roles: frozenset[str] = field(default_factory=frozenset)
    request_id: str = ""

    def in_scope(self, org_path: str) -> bool:
        """True when an object at org_path lies inside the caller's subtree."""
        return org_path.startswith(self.org_path)

    def has_role(self, *roles: str) -> bool:
        """True when the caller holds any of the roles."""
        return any(r in self.roles for r in roles)

    def to_metadata(self) -> list[tuple[str, str]]:
        """gRPC metadata for a downstream call."""
        return [
            (MD_ACCOUNT, self.account_id),
            (MD_ORG, self.org_code),
            (MD_ORG_PATH, self.org_path),
            (MD_LEVEL, self.level),
            (MD_ROLES, ",".join(sorted(self.roles))),
            (MD_REQUEST_ID, self.request_id or uuid.uuid4().hex),
        ]

    @classmethod
    def from_metadata(cls, metadata: Iterable[tuple[str, Any]] | None) -> CallerContext | None:
        """Read the caller from call metadata; None when the call carries no caller."""
        md = {k: v for k, v in (metadata or ()) if isinstance(v, str)}
        if not md.get(MD_ACCOUNT) or not md.get(MD_ORG_PATH) or md.get(MD_LEVEL) not in LEVELS:
            return None
        roles = frozenset(r for r in md.get(MD_ROLES, "").split(",") if r)
        return cls(
            account_id=md[MD_ACCOUNT],
            org_code=md.get(MD_ORG, ""),
            org_path=md[MD_ORG_PATH],
            level=md[MD_LEVEL],
            roles=roles,
            request_id=md.get(MD_REQUEST_ID, ""),
        )

    @classmethod
    def system(cls, *, job: str, request_id: str | None = None) -> CallerContext:
        """The caller for scheduled jobs and consumers: national scope, no user roles."""
        return cls(
            account_id=f"system:{job}",
            org_code="",
            org_path="/",
            level="national",
            roles=frozenset({"system"}),
            request_id=request_id or uuid.uuid4().hex,
        )


caller_var: contextvars.ContextVar[CallerContext | None] = contextvars.ContextVar(
    "zizhu_caller", default=None
)


def current_caller() -> CallerContext:
    """The caller of the RPC being served; refuses calls that carry none."""
    caller = caller_var.get()
    if caller is None:
        raise Unauthenticated("调用缺少身份信息", code="CALLER_CONTEXT_MISSING")
    return caller


class ContextInterceptor(grpc.aio.ServerInterceptor):
    """Sets caller and request id for each call; turns DomainError into a status with a trailer.

    The wrapped handler of each method is built once and kept: the servicer's handlers do not
    change while the server runs, so a call costs a dict look-up instead of a new handler."""

    def __init__(self) -> None:
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        wrapped = self._handlers.get(method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler  # unknown method: not cached, gRPC answers UNIMPLEMENTED
        if handler.request_streaming or handler.response_streaming:
            wrapped = handler
        else:
            wrapped = grpc.unary_unary_rpc_method_handler(
                _with_context(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        self._handlers[method] = wrapped
        return wrapped


def _with_context(
    method: str, inner: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
    """A unary handler that runs inner with the call's caller and request id set, and answers
    DomainError as its status with the error trailer (anything else as INTERNAL)."""

    async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        metadata = context.invocation_metadata()
        caller = CallerContext.from_metadata(metadata)
        if caller is not None:
            rid = caller.request_id
        else:
            rid = next((v for k, v in metadata or () if k == MD_REQUEST_ID and v), "")
            rid = str(rid) if rid else uuid.uuid4().hex
        rid_token = request_id_var.set(rid)
        caller_token = caller_var.set(caller)
        try:
            return await inner(request, context)
        except DomainError as err:
            await context.abort(
                err.grpc_status,
                err.message,
                trailing_metadata=((ERROR_TRAILER, err.to_trailer()),),
            )
        except grpc.aio.AbortError:
            raise
        except Exception:
            log.exception("unhandled error in %s", method)
            await context.abort(grpc.StatusCode.INTERNAL, "服务内部错误")
        finally:
            caller_var.reset(caller_token)
            request_id_var.reset(rid_token)

    return unary_unary


class GrpcServer:
    """A grpc.aio server with the standard health service and reflection."""

    def __init__(self, *, host: str, port: int, service_names: Sequence[str]) -> None:
        self.host = host
        self.requested_port = port
        self.service_names = list(service_names)
        self.port = 0
        self.health = HealthServicer()
        self.server = grpc.aio.server(
            interceptors=[ContextInterceptor()],
            options=[*SERVER_OPTIONS, ("grpc.so_reuseport", 0)],
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)

    def add(self, add_to_server: Callable[[Any, grpc.aio.Server], None], servicer: Any) -> None:
        """Register a generated `add_XServicer_to_server` with its servicer."""
        add_to_server(servicer, self.server)

    async def start(self) -> int:
        """Bind, start serving and report SERVING; returns the bound port."""
        names = [*self.service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name]
        reflection.enable_server_reflection([*names, reflection.SERVICE_NAME], self.server)
        self.port = self.server.add_insecure_port(f"{self.host}:{self.requested_port}")
        await self.server.start()
        for name in ["", *self.service_names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("gRPC serving on %s:%s", self.host, self.port)
        return self.port

    async def stop(self, grace: float = 5.0) -> None:
        """Report NOT_SERVING, then finish in-flight calls within grace seconds."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


def open_channel(target: str) -> grpc.aio.Channel:
    """An insecure in-cluster channel with keepalive and 64 MiB messages."""
    return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)


async def check_health(
    channel: grpc.aio.Channel, *, service: str = "", deadline_s: float = 2.0
) -> str:
    """The health status name of a service (`SERVING`, `NOT_SERVING`, `UNREACHABLE`, …)."""
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        resp = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=deadline_s)
    except grpc.RpcError as exc:
        code = exc.code() if hasattr(exc, "code") else None
        return "UNKNOWN_SERVICE" if code == grpc.StatusCode.NOT_FOUND else "UNREACHABLE"
    return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

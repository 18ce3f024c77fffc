"""Domain errors with a stable code, a Chinese message and the field at fault.

They travel over gRPC as the status code plus a JSON trailer (`zizhu-error-bin`) and become one
JSON error shape at the gateway.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import grpc

ERROR_TRAILER = "zizhu-error-bin"


class DomainError(Exception):
    """A refusal the caller can act on; never carries a traceback to the client."""

    grpc_status: ClassVar[grpc.StatusCode] = grpc.StatusCode.INVALID_ARGUMENT
    default_code: ClassVar[str] = "INVALID_ARGUMENT"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.field = field
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body (without the HTTP status)."""
        body: dict[str, Any] = {"code": self.code, "message": self.message, "field": self.field}
        if self.details:
            body["details"] = self.details
        return body

    def to_trailer(self) -> bytes:
        """Encode for the gRPC trailing metadata."""
        return json.dumps(self.to_dict(), ensure_ascii=False).encode()


class InvalidArgument(DomainError):
    """Malformed or unacceptable input (格式错误、校验不通过)."""


class NotFound(DomainError):
    """Missing object, or an object outside the caller's subtree (answered the same way)."""

    grpc_status = grpc.StatusCode.NOT_FOUND
    default_code = "NOT_FOUND"


class AlreadyExists(DomainError):
    """Duplicate of an existing object."""

    grpc_status = grpc.StatusCode.ALREADY_EXISTS
    default_code = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    """The object's state forbids the action (closed window, wrong status, …)."""

    grpc_status = grpc.StatusCode.FAILED_PRECONDITION
    default_code = "FAILED_PRECONDITION"


class Conflict(DomainError):
    """Concurrent change or request already in flight."""

    grpc_status = grpc.StatusCode.ABORTED
    default_code = "CONFLICT"


class PermissionDenied(DomainError):
    """The caller's role or level may not do this."""

    grpc_status = grpc.StatusCode.PERMISSION_DENIED
    default_code = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    """No valid credentials."""

    grpc_status = grpc.StatusCode.UNAUTHENTICATED
    default_code = "UNAUTHENTICATED"


class ResourceExhausted(DomainError):
    """Rate or size limits exceeded."""

    grpc_status = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_code = "RESOURCE_EXHAUSTED"


class Unavailable(DomainError):
    """A dependency is down; the caller may retry."""

    grpc_status = grpc.StatusCode.UNAVAILABLE
    default_code = "SERVICE_UNAVAILABLE"


_BY_STATUS: dict[grpc.StatusCode, type[DomainError]] = {
    cls.grpc_status: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        Conflict,
        PermissionDenied,
        Unauthenticated,
        ResourceExhausted,
        Unavailable,
    )
}

HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 422,
    grpc.StatusCode.OUT_OF_RANGE: 422,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.UNIMPLEMENTED: 501,
}


def error_from_rpc(exc: grpc.RpcError) -> DomainError:
    """Rebuild the DomainError a service raised from the gRPC error it answered with."""
    status = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    trailers = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    for key, value in trailers or ():
        if key == ERROR_TRAILER:
            try:
                body = json.loads(value)
            except (ValueError, TypeError):
                break
            cls = _BY_STATUS.get(status, DomainError)
            return cls(
                body.get("message") or "请求失败",
                code=body.get("code"),
                field=body.get("field"),
                details=body.get("details"),
            )
    if status == grpc.StatusCode.DEADLINE_EXCEEDED:
        return Unavailable("后端服务响应超时，请稍后重试", code="UPSTREAM_TIMEOUT")
    if status == grpc.StatusCode.UNAVAILABLE:
        return Unavailable("后端服务暂不可用，请稍后重试", code="SERVICE_UNAVAILABLE")
    if status == grpc.StatusCode.UNIMPLEMENTED:
        return _with_status(DomainError("该功能尚未提供", code="NOT_IMPLEMENTED"), status)
    return _with_status(
        DomainError("服务内部错误，请稍后重试", code="INTERNAL"), grpc.StatusCode.INTERNAL
    )


def _with_status(err: DomainError, status: grpc.StatusCode) -> DomainError:
    err.grpc_status = status  # type: ignore[misc]
    return err


def http_status(err: DomainError) -> int:
    """The HTTP status the gateway answers for this error."""
    return HTTP_STATUS.get(err.grpc_status, 500)

"""One JSON error shape for every failure: {"error": {code, message, field, request_id}}.

gRPC errors from services come back as DomainErrors; validation errors from FastAPI are rewritten
in Chinese; anything unexpected is logged and answered without a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from zizhu_common.errors import DomainError, error_from_rpc, http_status
from zizhu_common.logs import request_id_var

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """What went wrong: HTTP status, stable code, Chinese message, the field at fault."""

    status: int
    code: str
    message: str
    field: str | None
    request_id: str | None
    details: Any = None


class ErrorRead(BaseModel):
    """The one error shape of every failed request."""

    error: ErrorBody


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorRead, "description": "未登录、令牌无效/过期/已撤销（TOKEN_*）"},
    403: {"model": ErrorRead, "description": "角色或层级无权执行（ACTION_NOT_ALLOWED 等）"},
    404: {"model": ErrorRead, "description": "不存在或不在本辖区内"},
    422: {"model": ErrorRead, "description": "参数不合法（含 Idempotency-Key 冲突）"},
    429: {"model": ErrorRead, "description": "请求过于频繁（带 Retry-After）"},
}

HTTP_CODES: dict[int, tuple[str, str]] = {
    400: ("BAD_REQUEST", "请求格式错误"),
    401: ("UNAUTHENTICATED", "未登录或登录已失效"),
    403: ("PERMISSION_DENIED", "无权执行该操作"),
    404: ("NOT_FOUND", "请求的资源不存在"),
    405: ("METHOD_NOT_ALLOWED", "不支持该请求方法"),
    409: ("CONFLICT", "请求与当前状态冲突"),
    413: ("PAYLOAD_TOO_LARGE", "上传内容过大"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "不支持的内容类型"),
    422: ("INVALID_ARGUMENT", "请求参数不合法"),
    429: ("RATE_LIMITED", "请求过于频繁，请稍后重试"),
    500: ("INTERNAL", "服务内部错误，请稍后重试"),
    503: ("SERVICE_UNAVAILABLE", "服务暂不可用，请稍后重试"),
}

_VALIDATION_MESSAGES: dict[str, str] = {
    "missing": "缺少必填项",
    "string_too_short": "长度不足",
    "string_too_long": "长度超出限制",
    "string_pattern_mismatch": "格式不正确",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "float_parsing": "应为数字",
    "bool_parsing": "应为布尔值",
    "date_from_datetime_parsing": "日期格式不正确",
    "date_parsing": "日期格式不正确",
    "enum": "取值不在允许范围内",
    "literal_error": "取值不在允许范围内",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "greater_than": "数值过小",
    "less_than": "数值过大",
    "json_invalid": "JSON 格式错误",
    "model_attributes_type": "应为对象",
    "list_type": "应为列表",
    "string_type": "应为字符串",
    "extra_forbidden": "不允许的字段",
}


def error_body(
    status: int, code: str, message: str, field: str | None, details: Any = None
) -> dict[str, Any]:
    """The error JSON for a response."""
    body: dict[str, Any] = {
        "status": status,
        "code": code,
        "message": message,
        "field": field,
        "request_id": request_id_var.get(),
    }
    if details:
        body["details"] = details
    return {"error": body}


def error_response(
    status: int, code: str, message: str, field: str | None = None, **kw: Any
) -> JSONResponse:
    """A JSONResponse in the one error shape."""
    headers = kw.pop("headers", None)
    return JSONResponse(
        error_body(status, code, message, field, kw.get("details")), status, headers=headers
    )


def domain_error_response(err: DomainError) -> JSONResponse:
    """Map a DomainError (raised locally or rebuilt from gRPC) to HTTP."""
    status = http_status(err)
    headers: dict[str, str] | None = None
    if status == 429 or "retry_after" in err.details:
        headers = {"Retry-After": str(err.details.get("retry_after", 1))}
    elif status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="zizhu"'}
    return error_response(
        status, err.code, err.message, err.field, details=err.details, headers=headers
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register handlers so every failure answers in the one shape, in Chinese."""

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return domain_error_response(exc)

    @app.exception_handler(grpc.RpcError)
    async def _rpc(_: Request, exc: grpc.RpcError) -> JSONResponse:
        return domain_error_response(error_from_rpc(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
        field = ".".join(loc) or None
        reason = _VALIDATION_MESSAGES.get(first.get("type", ""), "取值不合法")
        message = f"字段 {field} {reason}" if field else reason
        details = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query")),
                "reason": _VALIDATION_MESSAGES.get(e.get("type", ""), "取值不合法"),
            }
            for e in errors[:50]
        ]
        return error_response(422, "INVALID_ARGUMENT", message, field, details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, message = HTTP_CODES.get(exc.status_code, ("HTTP_ERROR", "请求失败"))
        return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error: %s", exc)
        code, message = HTTP_CODES[500]
        return error_response(500, code, message)

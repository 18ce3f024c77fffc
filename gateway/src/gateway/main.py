"""`create_app(settings)`: the gateway's composition root."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import Response

from gateway.errors import ERROR_RESPONSES, install_error_handlers
from gateway.idempotency import IdempotentReplay
from gateway.middleware import (
    API_PREFIX,
    AuditMiddleware,
    BodyLimitMiddleware,
    IdempotencyMiddleware,
    RequestIdMiddleware,
)
from gateway.routes import accounts, aid, audit, auth, funding, health, orgs, reconcile, roster
from gateway.runtime import GatewayRuntime
from gateway.settings import Settings

DESCRIPTION = """全国学生资助管理信息系统（Zizhu 开源实现）网关 API。

所有错误以统一结构返回：`{"error": {"status", "code", "message", "field", "request_id"}}`，
`message` 为中文说明，`code` 为稳定的机器可读代码。

认证：`Authorization: Bearer <access_token>`（SM2 签名令牌，15 分钟有效）。权限由五级
（国家、省、市、县、校）× 角色的策略表决定，且只能访问本级及下辖机构的数据；辖区外的对象
一律返回 404。会改变数据的 POST 请求可带 `Idempotency-Key`（同一账号内 24 小时有效）。"""


def create_app(settings: Settings) -> FastAPI:
    """Build the FastAPI app; connections open at start-up and close at shutdown."""
    runtime = GatewayRuntime(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        yield
        await runtime.stop()

    app = FastAPI(
        title="资助 Zizhu API",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        # Zizhu configures no OpenTelemetry: FastAPI need not look for it on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.clients = runtime.clients
    install_error_handlers(app)

    @app.exception_handler(IdempotentReplay)
    async def _replay(_: Request, exc: IdempotentReplay) -> Response:
        return exc.response()

    # Added innermost first: the last one added runs first.
    app.add_middleware(
        IdempotencyMiddleware, redis_getter=lambda: runtime.redis, ttl_s=settings.idempotency_ttl_s
    )
    app.add_middleware(
        BodyLimitMiddleware,
        max_json_bytes=settings.max_json_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    app.add_middleware(
        AuditMiddleware, publisher=runtime.audit, trusted_proxies=settings.trusted_proxies
    )
    app.add_middleware(RequestIdMiddleware)

    # Each area's router is included in the app itself, not in a /api/v1 router of its own:
    # FastAPI matches a request against every router level on its path twice (match, then
    # handle), so one level less is cheaper on every request. The OpenAPI document is the same.
    # The org reads come first: they are the most frequent request (routes do not overlap, so
    # the order changes nothing else).
    app.include_router(health.router)
    for module in (orgs, auth, accounts, audit, aid, funding, reconcile, roster):
        app.include_router(module.router, prefix=API_PREFIX, responses=ERROR_RESPONSES)
    return app

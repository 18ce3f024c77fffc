"""`create_app(settings)`: the gateway's composition root."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from zizhu_common.logs import request_id_var

from gateway.clients import Clients
from gateway.errors import install_error_handlers
from gateway.routes import health
from gateway.settings import Settings

API_PREFIX = "/api/v1"
DESCRIPTION = """全国学生资助管理信息系统（Zizhu 开源实现）网关 API。

所有错误以统一结构返回：`{"error": {"status", "code", "message", "field", "request_id"}}`，
`message` 为中文说明，`code` 为稳定的机器可读代码。"""


def create_app(settings: Settings) -> FastAPI:
    """Build the FastAPI app; gRPC channels open at start-up and close at shutdown."""
    clients = Clients(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        clients.open()
        yield
        await clients.close()

    app = FastAPI(
        title="资助 Zizhu API",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.clients = clients
    install_error_handlers(app)

    @app.middleware("http")
    async def request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        token = request_id_var.set(rid)
        try:
            response = await call_next(request)
        finally:
            request_id_var.reset(token)
        response.headers["X-Request-ID"] = rid
        return response

    app.include_router(health.router)
    return app

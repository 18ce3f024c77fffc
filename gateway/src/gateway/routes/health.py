"""Liveness and the five services' gRPC health."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from zizhu_common.rpc import check_health

from gateway.clients import SERVICES, Clients

router = APIRouter(tags=["运维 health"])


class LiveRead(BaseModel):
    """The gateway process answers."""

    status: str


class HealthRead(BaseModel):
    """Overall status and each backend service's gRPC health status."""

    status: str
    services: dict[str, str]


@router.get("/livez", response_model=LiveRead, summary="进程存活检查")
async def livez() -> LiveRead:
    """The gateway process is up (no backend calls)."""
    return LiveRead(status="ok")


@router.get(
    "/healthz",
    response_model=HealthRead,
    summary="服务健康检查",
    responses={503: {"model": HealthRead, "description": "至少一个后端服务不可用"}},
)
async def healthz(request: Request) -> JSONResponse:
    """Each service's grpc.health.v1 status; 200 only when all five are SERVING."""
    clients: Clients = request.app.state.clients
    deadline = request.app.state.settings.health_deadline_s
    statuses = await asyncio.gather(
        *(check_health(clients.channel(name), deadline_s=deadline) for name in SERVICES)
    )
    services = dict(zip(SERVICES, statuses, strict=True))
    ok = all(s == "SERVING" for s in statuses)
    body = HealthRead(status="SERVING" if ok else "DEGRADED", services=services)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

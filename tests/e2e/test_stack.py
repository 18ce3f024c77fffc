"""The whole stack as real processes: five services (`python -m <svc>_service serve`) and the
gateway over HTTP, on real nats-server and redis-server; clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from zizhu_common.devservers import free_port

SERVICES = ("identity", "roster", "aid", "funding", "reconcile")
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Stack:
    gateway_url: str
    procs: dict[str, subprocess.Popen[bytes]]
    logs: Path


def _get(url: str) -> tuple[int, dict, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read()), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


@pytest.fixture(scope="module")
def stack(nats_server, redis_server, tmp_path_factory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("stack")
    env = {**os.environ, "ZIZHU_ENV": "test", "NATS_URL": nats_server.url,
           "REDIS_URL": redis_server.url, "LOG_LEVEL": "INFO"}  # fmt: skip
    ports = {svc: free_port() for svc in SERVICES}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for svc in SERVICES:
        svc_env = {**env, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/{svc}.db",
                   "GRPC_HOST": "127.0.0.1", "GRPC_PORT": str(ports[svc])}  # fmt: skip
        procs[svc] = subprocess.Popen(
            [sys.executable, "-m", f"{svc}_service", "serve"], env=svc_env, cwd=ROOT,
            stdout=open(tmp / f"{svc}.log", "wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
    http_port = free_port()
    # Two HTTP workers behind the supervisor, as deployed (HTTP_WORKERS).
    gw_env = {**env, "HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(http_port), "HTTP_WORKERS": "2",
              **{f"{s.upper()}_ADDR": f"127.0.0.1:{p}" for s, p in ports.items()}}  # fmt: skip
    procs["gateway"] = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve"], env=gw_env, cwd=ROOT,
        stdout=open(tmp / "gateway.log", "wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    stack = Stack(f"http://127.0.0.1:{http_port}", procs, tmp)
    deadline = time.monotonic() + 90
    try:
        while True:
            dead = {n: p.returncode for n, p in procs.items() if p.poll() is not None}
            assert not dead, f"processes exited early: {dead}; logs in {tmp}: " + "".join(
                (tmp / f"{n}.log").read_text()[-2000:] for n in dead
            )
            try:
                status, _, _ = _get(f"{stack.gateway_url}/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "stack did not become healthy in 90 s"
            time.sleep(0.2)
        yield stack
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()


def test_healthz_reports_all_five_services_serving(stack: Stack) -> None:
    status, body, headers = _get(f"{stack.gateway_url}/healthz")
    assert status == 200
    assert body == {"status": "SERVING", "services": dict.fromkeys(SERVICES, "SERVING")}
    assert headers.get("x-request-id")


def test_unknown_route_answers_the_one_error_shape_in_chinese(stack: Stack) -> None:
    status, body, _ = _get(f"{stack.gateway_url}/api/v1/nope")
    assert status == 404
    assert body["error"]["code"] == "NOT_FOUND"
    assert body["error"]["message"] == "请求的资源不存在"
    assert set(body["error"]) >= {"status", "code", "message", "field", "request_id"}


def test_openapi_is_served(stack: Stack) -> None:
    status, body, _ = _get(f"{stack.gateway_url}/api/v1/openapi.json")
    assert status == 200 and body["info"]["title"].startswith("资助")


def _gateway_workers(supervisor_pid: int) -> set[int]:
    children = Path(f"/proc/{supervisor_pid}/task/{supervisor_pid}/children").read_text().split()
    return {
        int(pid)
        for pid in children
        if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    }


def test_gateway_supervisor_serves_with_two_workers_and_restarts_a_dead_one(stack: Stack) -> None:
    workers = _gateway_workers(stack.procs["gateway"].pid)
    assert len(workers) == 2, workers
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    # The other worker keeps answering on the shared socket while the supervisor replaces the
    # dead one (it checks every 0.5 s).
    deadline = time.monotonic() + 30
    while True:
        status, _, _ = _get(f"{stack.gateway_url}/livez")
        assert status == 200
        current = _gateway_workers(stack.procs["gateway"].pid)
        if len(current) == 2 and victim not in current:
            break
        assert time.monotonic() < deadline, f"dead worker not replaced: {current}"
        time.sleep(0.2)
    for _ in range(20):
        assert _get(f"{stack.gateway_url}/healthz")[0] == 200


def test_services_stop_cleanly_on_sigterm_and_health_degrades(stack: Stack) -> None:
    proc = stack.procs["funding"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0, (stack.logs / "funding.log").read_text()[-3000:]
    funding_log = (stack.logs / "funding.log").read_text()
    assert "never retrieved" not in funding_log and "Traceback" not in funding_log, funding_log[
        -3000:
    ]
    status, body, _ = _get(f"{stack.gateway_url}/healthz")
    assert status == 503
    assert body["status"] == "DEGRADED"
    assert body["services"]["funding"] in {"UNREACHABLE", "NOT_SERVING"}
    assert body["services"]["aid"] == "SERVING"
    for name in ("identity", "roster", "aid", "reconcile", "gateway"):
        stack.procs[name].send_signal(signal.SIGTERM)
    for name in ("identity", "roster", "aid", "reconcile", "gateway"):
        assert stack.procs[name].wait(timeout=15) == 0, (stack.logs / f"{name}.log").read_text()[
            -3000:
        ]

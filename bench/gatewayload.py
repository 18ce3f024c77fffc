"""The gateway benchmark's servers: nats-server, redis-server, identity and the gateway as real
processes (production-like), their CPU time, and the demo national admin's login."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
import pyotp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from zizhu_common import devservers
from zizhu_common.rpc import CallerContext
from zizhu_contracts.identity.v1 import identity_pb2

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 16
ORG_CODE = "2144010601"  # 广州市天河区华阳小学: school → county → city → province → nation
USERNAME = "nat_admin"
PATH = f"/api/v1/orgs/{ORG_CODE}"
GRPC_METHOD = "/{}/GetOrg".format(
    identity_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name
)
LOG_ENV = {"LOG_LEVEL": "WARNING", "LOG_JSON": "true"}
UNLIMITED = str(10**9)


# --------------------------------------------------------------------------- processes


@dataclass
class Proc:
    """A server process started by the benchmark, with its log."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self, chars: int = 3000) -> str:
        """The end of its log."""
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def alive(self) -> None:
        """Raise with the log when the process has exited."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def _spawn(name: str, args: list[str], env: Mapping[str, str], workdir: Path) -> Proc:
    log = workdir / f"{name}.log"
    proc = subprocess.Popen(
        [sys.executable, *args],
        env={**os.environ, **env},
        cwd=workdir,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return Proc(name, proc, log)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants (threads included)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in _descendants(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


@dataclass
class Identity:
    """The identity service: its gRPC address, process and the demo logins it printed."""

    addr: str
    proc: Proc
    logins: dict[str, dict[str, str]]


def start_identity(workdir: Path, *, database_url: str, nats_url: str, redis_url: str) -> Identity:
    """Seed the demo data, then serve identity until it reports SERVING."""
    port = devservers.free_port()
    env = {
        "ZIZHU_ENV": "dev",
        **LOG_ENV,
        "DATABASE_URL": database_url,
        "NATS_URL": nats_url,
        "REDIS_URL": redis_url,
        "GRPC_HOST": "127.0.0.1",
        "GRPC_PORT": str(port),
        "TOKEN_KEY_FILE": str(workdir / "token_signing_key.pem"),
    }
    seeded = subprocess.run(
        [sys.executable, "-m", "identity_service", "seed-demo"],
        env={**os.environ, **env},
        cwd=workdir,
        capture_output=True,
        timeout=600,
    )
    if seeded.returncode != 0:
        raise RuntimeError(f"identity seed-demo failed:\n{seeded.stderr.decode()[-3000:]}")
    logins = json.loads(seeded.stdout.decode().strip().splitlines()[-1])
    proc = _spawn("identity", ["-m", "identity_service", "serve"], env, workdir)
    addr = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    with grpc.insecure_channel(addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            proc.alive()
            try:
                resp = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if resp.status == health_pb2.HealthCheckResponse.SERVING:
                    break
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"identity not serving in 60 s:\n{proc.tail()}")
            time.sleep(0.1)
    return Identity(addr, proc, {login["username"]: login for login in logins})


def start_gateway(
    workdir: Path, *, identity_addr: str, nats_url: str, redis_url: str, workers: int
) -> tuple[str, Proc]:
    """Serve the gateway; returns its base URL once /livez answers."""
    port = devservers.free_port()
    env = {
        "ZIZHU_ENV": "dev",
        **LOG_ENV,
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(port),
        "HTTP_WORKERS": str(workers),
        "NATS_URL": nats_url,
        "REDIS_URL": redis_url,
        "IDENTITY_ADDR": identity_addr,
        "RATE_LIMIT_PER_ACCOUNT": UNLIMITED,
        "RATE_LIMIT_PER_IP": UNLIMITED,
    }
    proc = _spawn("gateway", ["-m", "gateway", "serve"], env, workdir)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        proc.alive()
        try:
            with urllib.request.urlopen(f"{url}/livez", timeout=1) as resp:
                if resp.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"gateway not up in 60 s:\n{proc.tail()}")
        time.sleep(0.1)
    return url, proc


# --------------------------------------------------------------------------- the caller


def http_json(method: str, url: str, *, body: object = None, token: str = "") -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def login(url: str, login: Mapping[str, str]) -> dict:
    """Log a demo user in with password and TOTP; the login answer (tokens and principal)."""
    body = {"username": login["username"], "password": login["password"]}
    if login.get("totp_secret"):
        body["totp_code"] = pyotp.TOTP(login["totp_secret"]).now()
    status, data = http_json("POST", f"{url}/api/v1/auth/login", body=body)
    if status != 200 or data.get("status") != "authenticated":
        raise RuntimeError(f"login of {login['username']} failed: {status} {data}")
    return data


def caller_metadata(principal: Mapping[str, object]) -> list[tuple[str, str]]:
    """The gRPC metadata the gateway sends for this caller (caller context and session)."""
    ctx = CallerContext(
        account_id=str(principal["account_id"]),
        org_code=str(principal["org_code"]),
        org_path=str(principal["org_path"]),
        level=str(principal["level"]),
        roles=frozenset(str(r) for r in principal["roles"]),  # type: ignore[attr-defined]
        request_id="bench-gateway",
    )
    return [*ctx.to_metadata(), ("x-zizhu-session-id", str(principal.get("session_id", "")))]


# --------------------------------------------------------------------------- measurements

"""Real processes for gateway tests: the five services (gRPC) and gateways (HTTP), plus an HTTP
client that logs users in the way a browser would (password change, TOTP enrolment, TOTP codes).

Shared by tests/gateway and tests/e2e (loaded by path: the test folders are not packages).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pyotp
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from zizhu_common.devservers import free_port
from zizhu_common.messaging import EVENT_ID_HEADER, connect_nats, ensure_producer_stream
from zizhu_common.outbox import stamp

ROOT = Path(__file__).resolve().parents[2]
API = "/api/v1"
NATIONAL_CODE = "000000"
# The national admin of identity's demo data (`identity_service seed-demo`, run before serving).
BOOTSTRAP_USERNAME = "nat_admin"
DEMO_LOGINS: dict[str, dict[str, str]] = {}
SERVICES = ("identity", "roster", "aid", "funding", "reconcile")
START_TIMEOUT_S = 90
# What a server logs when the free port chosen for it was taken before it could bind.
BIND_ERRORS = ("Failed to bind", "Address already in use", "address already in use")


@dataclass
class Proc:
    """A child process and its log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self, chars: int = 4000) -> str:
        """The end of the process log."""
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s."""
        stop_all([self])


def stop_all(procs: list[Proc]) -> None:
    """SIGTERM to every process at once (each takes seconds to drain), then SIGKILL whatever
    still runs 15 s later."""
    for p in procs:
        if p.proc.poll() is None:
            p.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for p in procs:
        try:
            p.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.proc.kill()
            p.proc.wait(timeout=5)


def _spawn(name: str, module: str, env: Mapping[str, str], tmp: Path) -> Proc:
    log = tmp / f"{name}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "serve"],
        env={**os.environ, **env},
        cwd=tmp,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return Proc(name, proc, log)


def service_env(
    svc: str, *, port: int, nats_url: str, redis_url: str, tmp: Path,
    addrs: Mapping[str, str] | None = None,
) -> dict[str, str]:  # fmt: skip
    """The environment of `python -m <svc>_service serve` on its own SQLite file."""
    env = {
        "ZIZHU_ENV": "test",
        "LOG_LEVEL": "INFO",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/{svc}.db",
        "NATS_URL": nats_url,
        "REDIS_URL": redis_url,
        "GRPC_HOST": "127.0.0.1",
        "GRPC_PORT": str(port),
        **{f"{s.upper()}_ADDR": addr for s, addr in (addrs or {}).items()},
    }
    if svc == "identity":
        env |= {"PASSWORD_ITERATIONS": "1000", "TOKEN_KEY_FILE": str(tmp / "token_signing_key.pem")}
    if svc == "reconcile":
        env["DAILY_RUN_ENABLED"] = "false"  # no comparison run starting in the middle of a test
    return env


def seed_identity(env: Mapping[str, str], tmp: Path) -> None:
    """`identity_service seed-demo` (demo tree and accounts); remembers the demo logins."""
    seeded = subprocess.run(
        [sys.executable, "-m", "identity_service", "seed-demo"], env={**os.environ, **env},
        cwd=tmp, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    logins = json.loads(seeded.stdout.decode().strip().splitlines()[-1])
    DEMO_LOGINS.update({login["username"]: login for login in logins})


def wait_serving(servers: Mapping[str, tuple[str, Proc]], timeout: float = START_TIMEOUT_S) -> None:
    """Wait until every gRPC server (name → (address, process)) answers SERVING to health."""
    deadline = time.monotonic() + timeout
    waiting = dict(servers)
    channels = {name: grpc.insecure_channel(addr) for name, (addr, _) in waiting.items()}
    try:
        while waiting:
            for name, (_, proc) in list(waiting.items()):
                assert proc.proc.poll() is None, f"{name} exited early:\n{proc.tail()}"
                try:
                    resp = health_pb2_grpc.HealthStub(channels[name]).Check(
                        health_pb2.HealthCheckRequest(), timeout=1
                    )
                    if resp.status == health_pb2.HealthCheckResponse.SERVING:
                        del waiting[name]
                except grpc.RpcError:
                    pass
            assert time.monotonic() < deadline or not waiting, (
                f"not serving in {timeout} s: {sorted(waiting)}\n"
                + "\n".join(f"--- {n}:\n{p.tail(2000)}" for n, (_, p) in waiting.items())
            )
            if waiting:
                time.sleep(0.1)
    finally:
        for channel in channels.values():
            channel.close()


def start_identity(
    *, nats_url: str, redis_url: str, tmp: Path, env: Mapping[str, str] | None = None
) -> tuple[str, Proc]:
    """Run `python -m identity_service serve` on SQLite; returns (grpc address, process)."""
    port = free_port()
    proc_env = {**service_env("identity", port=port, nats_url=nats_url, redis_url=redis_url,
                              tmp=tmp), **(env or {})}  # fmt: skip
    seed_identity(proc_env, tmp)
    proc = _spawn("identity", "identity_service", proc_env, tmp)
    addr = f"127.0.0.1:{port}"
    wait_serving({"identity": (addr, proc)}, timeout=60)
    return addr, proc


def lost_its_port(proc: Proc) -> bool:
    """True when the process exited because its port was taken after we chose it (free ports are
    only free when chosen; other test runs share the machine)."""
    return proc.proc.poll() is not None and any(e in proc.tail() for e in BIND_ERRORS)


def start_services(
    *, nats_url: str, redis_url: str, tmp: Path,
    env: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[dict[str, str], dict[str, Proc]]:  # fmt: skip
    """Start the five services side by side, identity seeded with its demo data first, each on
    its own SQLite file and every one knowing the others' addresses; returns (addresses,
    processes) once all serve. `env` adds variables per service. A service whose port was taken
    meanwhile starts again on another (with those that call it)."""
    addrs: dict[str, str] = {}
    procs: dict[str, Proc] = {}

    def spawn(svc: str) -> None:
        port = int(addrs[svc].rsplit(":", 1)[1])
        svc_env = {**service_env(svc, port=port, nats_url=nats_url, redis_url=redis_url,
                                 tmp=tmp, addrs=addrs), **(env or {}).get(svc, {})}  # fmt: skip
        if svc == "identity" and "identity" not in procs:
            seed_identity(svc_env, tmp)
        procs[svc] = _spawn(svc, f"{svc}_service", svc_env, tmp)

    try:
        addrs.update({svc: f"127.0.0.1:{free_port()}" for svc in SERVICES})
        for svc in (*SERVICES[1:], SERVICES[0]):  # the others start while identity seeds
            spawn(svc)
        for attempt in range(3):
            try:
                wait_serving({svc: (addrs[svc], procs[svc]) for svc in SERVICES})
                break
            except AssertionError:
                lost = [svc for svc, proc in procs.items() if lost_its_port(proc)]
                if not lost or attempt == 2:
                    raise
            addrs.update({svc: f"127.0.0.1:{free_port()}" for svc in lost})
            # aid calls roster: it restarts with roster's new address.
            again = set(lost) | ({"aid"} if "roster" in lost else set())
            stop_all([procs[svc] for svc in again])
            for svc in again:
                spawn(svc)
    except BaseException:
        stop_all(list(procs.values()))
        raise
    return addrs, procs


def bootstrap_admin(username: str = BOOTSTRAP_USERNAME) -> User:
    """A demo account of the seeded identity (national admin by default), ready to log in."""
    login = DEMO_LOGINS[username]
    return User(username, login["password"], totp_secret=login["totp_secret"])


def spawn_gateway(
    *,
    identity_addr: str,
    nats_url: str,
    redis_url: str,
    tmp: Path,
    env: Mapping[str, str] | None = None,
    name: str = "gateway",
) -> tuple[str, Proc]:
    """Start `python -m gateway serve` without waiting; returns (base URL, process)."""
    port = free_port()
    proc_env = {
        "ZIZHU_ENV": "test",
        "LOG_LEVEL": "INFO",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(port),
        "NATS_URL": nats_url,
        "REDIS_URL": redis_url,
        "IDENTITY_ADDR": identity_addr,
        "RATE_LIMIT_PER_ACCOUNT": "100000",
        "RATE_LIMIT_PER_IP": "100000",
        "LOGIN_LIMIT_PER_IP": "100000",
        **(env or {}),
    }
    tmp.mkdir(parents=True, exist_ok=True)
    return f"http://127.0.0.1:{port}", _spawn(name, "gateway", proc_env, tmp)


def wait_live(url: str, proc: Proc, timeout: float = 60) -> None:
    """Wait until the gateway at url answers /livez."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.proc.poll() is None, f"{proc.name} exited early:\n{proc.tail()}"
        try:
            if httpx.get(f"{url}/livez", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{proc.name} not up in {timeout} s:\n{proc.tail()}"
        time.sleep(0.1)


def start_gateway(
    *,
    identity_addr: str,
    nats_url: str,
    redis_url: str,
    tmp: Path,
    env: Mapping[str, str] | None = None,
    name: str = "gateway",
) -> tuple[str, Proc]:
    """Run `python -m gateway serve`; returns (base URL, process) once /livez answers (on another
    port when the one chosen was taken meanwhile)."""
    for attempt in range(3):
        url, proc = spawn_gateway(identity_addr=identity_addr, nats_url=nats_url,
                                  redis_url=redis_url, tmp=tmp, env=env, name=name)  # fmt: skip
        try:
            wait_live(url, proc)
            return url, proc
        except BaseException:
            proc.stop()
            if not lost_its_port(proc) or attempt == 2:
                raise
    raise AssertionError("unreachable")


def publish_events(nats_url: str, events: list[tuple[str, Message]]) -> None:
    """Publish events into their producers' streams exactly as the producers' outbox relays do
    (for facts of a service whose routes do not exist yet)."""

    async def send() -> None:
        nc = await connect_nats(nats_url, name="test-publisher")
        try:
            js = nc.jetstream(timeout=10)
            for subject, msg in events:
                producer = subject.split(".", 1)[0]
                await ensure_producer_stream(
                    js, producer=producer, duplicate_window_s=120, replicas=1
                )
                event_id = stamp(msg, producer=producer)
                await js.publish(
                    subject, msg.SerializeToString(), headers={EVENT_ID_HEADER: event_id}
                )
        finally:
            await nc.close()

    asyncio.run(send())


@dataclass
class User:
    """An account the tests act as, with what it needs to log in again."""

    username: str
    password: str
    account_id: str = ""
    org_code: str = ""
    org_path: str = ""
    level: str = ""
    roles: tuple[str, ...] = ()
    totp_secret: str = ""
    last_step: int = 0
    token: str = ""
    refresh_token: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def headers(self, **more: str) -> dict[str, str]:
        """Authorization (and any other) headers."""
        return {"Authorization": f"Bearer {self.token}", **more}

    def totp_code(self) -> str:
        """A TOTP code of a step not used before: the current step, or the next one (identity
        accepts ±1 step of drift), waiting when both are used up. Never the previous step: a
        request that reaches identity just after a step boundary would find it outside the
        window (a login failed that way in CI)."""
        totp = pyotp.TOTP(self.totp_secret)
        while True:
            current = int(time.time()) // 30
            step = max(current, self.last_step + 1)
            if step <= current + 1:
                self.last_step = step
                return totp.at(step * 30)
            time.sleep(1)


class Api:
    """HTTP client of one gateway, with the login dance of a real user."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=30)

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def request(
        self, method: str, path: str, user: User | None = None, **kw: Any
    ) -> httpx.Response:
        """A request to `/api/v1<path>` (as user when given)."""
        headers = dict(kw.pop("headers", {}) or {})
        if user is not None:
            headers = user.headers(**headers)
        return self.http.request(method, API + path, headers=headers, **kw)

    def ok(self, method: str, path: str, user: User | None = None, **kw: Any) -> Any:
        """The JSON of a 2xx answer; fails the test with the error otherwise."""
        resp = self.request(method, path, user, **kw)
        assert resp.status_code < 300, f"{method} {path} → {resp.status_code} {resp.text}"
        return resp.json()

    def login(self, user: User, *, expect_restricted: bool = False) -> dict[str, Any]:
        """Log in fully: change a temporary password, enrol TOTP when required, send TOTP codes."""
        for _ in range(4):
            body: dict[str, Any] = {"username": user.username, "password": user.password}
            if user.totp_secret:
                body["totp_code"] = user.totp_code()
            resp = self.request("POST", "/auth/login", json=body)
            assert resp.status_code == 200, f"login {user.username}: {resp.status_code} {resp.text}"
            data = resp.json()
            if data["status"] == "totp_required":
                assert not user.totp_secret, f"TOTP refused for {user.username}: {data}"
                raise AssertionError(f"{user.username} needs TOTP but has none enrolled")
            user.token, user.refresh_token = data["access_token"], data["refresh_token"]
            principal = data["principal"]
            user.account_id = principal["account_id"]
            user.org_code, user.org_path = principal["org_code"], principal["org_path"]
            user.level, user.roles = principal["level"], tuple(principal["roles"])
            if data["status"] == "password_change_required":
                if expect_restricted:
                    return data
                new_password = f"Zz-{uuid.uuid4().hex[:12]}-9!"
                self.ok("POST", "/auth/password", user,
                        json={"current_password": user.password, "new_password": new_password})  # fmt: skip
                user.password = new_password
                continue
            if data["status"] == "totp_enrollment_required":
                if expect_restricted:
                    return data
                self.enrol_totp(user)
                continue
            assert data["status"] == "authenticated", data
            return data
        raise AssertionError(f"could not log {user.username} in")

    def enrol_totp(self, user: User) -> None:
        """Enrol and confirm TOTP for the user's current session."""
        data = self.ok("POST", "/auth/totp/enroll", user)
        user.totp_secret = data["secret"]
        user.last_step = 0
        self.ok("POST", "/auth/totp/confirm", user, json={"totp_code": user.totp_code()})

    def create_account(
        self, admin: User, *, username: str, org_code: str, roles: list[str], id_number: str,
        phone: str = "13800138000", real_name: str = "测试用户",
    ) -> User:  # fmt: skip
        """Create an account as admin; returns the new user with its initial password."""
        data = self.ok(
            "POST", "/accounts", admin,
            json={"username": username, "real_name": real_name, "id_type": "resident_id",
                  "id_number": id_number, "phone": phone, "org_code": org_code, "roles": roles},
        )  # fmt: skip
        account = data["account"]
        return User(
            username=username,
            password=data["initial_password"],
            account_id=account["account_id"],
            org_code=account["org_code"],
            org_path=account["org_path"],
            level=account["level"],
            roles=tuple(account["roles"]),
        )

    def import_orgs(self, admin: User, rows: list[dict[str, str]], *, dry_run: bool = False) -> Any:
        """Import orgs from a CSV made of rows (keys: 机构代码, 名称, 级别, 上级代码, 学段)."""
        return self.request(
            "POST", "/orgs/import", admin,
            files={"file": ("orgs.csv", orgs_csv(rows), "text/csv")},
            data={"dry_run": json.dumps(dry_run)},
        )  # fmt: skip


def orgs_csv(rows: list[dict[str, str]]) -> bytes:
    """A CSV with the template's Chinese headers."""
    headers = ["机构代码", "名称", "级别", "上级代码", "学段"]
    lines = [",".join(headers)] + [",".join(r.get(h, "") for h in headers) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def resident_id(serial: int, *, region: str = "110105", birth: str = "19800101") -> str:
    """A valid GB 11643 resident ID number (checksum computed)."""
    body = f"{region}{birth}{serial % 1000:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(d) * w for d, w in zip(body, weights, strict=True))
    return body + "10X98765432"[total % 11]


class PausableProxy:
    """A TCP forwarder in front of a service; `pause()` holds traffic so calls stay in flight."""

    def __init__(self, target: str) -> None:
        import socket
        import threading

        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.addr = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.running = threading.Event()
        self.running.set()
        self.closed = False
        self._threading = threading
        threading.Thread(target=self._accept, daemon=True).start()

    def pause(self) -> None:
        """Stop forwarding (data waits)."""
        self.running.clear()

    def resume(self) -> None:
        """Forward again, including what waited."""
        self.running.set()

    def close(self) -> None:
        """Stop accepting."""
        self.closed = True
        self.running.set()
        self.listener.close()

    def _accept(self) -> None:
        import socket

        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for src, dst in ((client, upstream), (upstream, client)):
                self._threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: Any, dst: Any) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self.running.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.close()
                except OSError:
                    pass

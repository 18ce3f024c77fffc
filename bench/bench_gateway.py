"""gateway: an authorized GET through the gateway that makes one gRPC call, against the same gRPC
call made directly, both with 16 concurrent clients for the same time in the same run.

`GET /api/v1/orgs/2144010601` as the demo national admin (logged in with password and TOTP): the
gateway verifies the SM2 token (cache of verified tokens), checks revocation and counts the
per-account and per-IP rate limits in Redis (one round trip, on the worker's pipelined
connection), checks the policy table, calls identity's `GetOrg` (the school and its four
ancestors; identity keeps the answer while its database is unchanged, SQLite's data_version) and
answers JSON. Direct: the same `GetOrg` request with the same caller metadata, straight to
identity.

Everything runs as real processes, production-like: nats-server, redis-server, `python -m
identity_service serve` (SQLite, the embedded default; `ZIZHU_ENV=dev`, so the real password KDF
iterations) and `python -m gateway serve` (uvloop, httptools, `HTTP_WORKERS`). Both log JSON at
WARNING so that log writing is not what is measured. The rate limits are raised to 10^9 per
window so that they count every request without refusing the benchmark's one account.

Load generators are separate processes written in C so that they do not take the servers' CPU:
`wrk` (HTTP/1.1 keep-alive, 16 connections; installed with apt-get when missing and root) and
`h2load` (HTTP/2, 16 connections of one stream each, gRPC framing; package nghttp2-client).
Without them (or with BENCH_GATEWAY_LOADGEN=python) a multi-process Python client does the same;
it costs several times their CPU per request, taken from the servers' two cores.

Environment: BENCH_SECONDS (seconds per measurement; small 5, full 30), BENCH_GATEWAY_WORKERS
(gateway HTTP_WORKERS; default 2), BENCH_GATEWAY_POSTGRES=1 to measure on PostgreSQL as well
(default: only with --scale full).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pyotp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from zizhu_common import devservers
from zizhu_common.rpc import CallerContext
from zizhu_contracts.identity.v1 import identity_pb2, identity_pb2_grpc

from bench.registry import Context, Result, benchmark

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 16
ORG_CODE = "2144010601"  # 广州市天河区华阳小学: school → county → city → province → nation
USERNAME = "nat_admin"
PATH = f"/api/v1/orgs/{ORG_CODE}"
GRPC_METHOD = "/{}/GetOrg".format(
    identity_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name
)
P50_MARGIN_MS = 2.0
P99_MARGIN_MS = 15.0
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


def _http(method: str, url: str, *, body: object = None, token: str = "") -> tuple[int, dict]:
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
    status, data = _http("POST", f"{url}/api/v1/auth/login", body=body)
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


@dataclass
class Load:
    """One measurement: requests answered, seconds, latency percentiles (ms), CPU used."""

    tool: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int = 0
    tool_cpu_s: float = 0.0
    server_cpu_s: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    def line(self, label: str) -> str:
        """`label: 1,234 req/s, p50 .. ms, p99 .. ms (...)`."""
        cpu = ", ".join(
            f"{name} {100 * s / self.seconds:.0f}% = {1e6 * s / max(1, self.requests):.0f} µs/request"
            for name, s in self.server_cpu_s.items()
        )
        per_req = 1e6 * self.tool_cpu_s / max(1, self.requests)
        return (
            f"{label}: {self.rate:,.0f} req/s, p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms"
            f" ({self.requests:,} requests in {self.seconds:.1f} s, {self.errors} errors; CPU:"
            f" {cpu}; load generator {self.tool} {per_req:.0f} µs/request)"
        )


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _measured(fn, servers: Mapping[str, Proc]):  # type: ignore[no-untyped-def]
    before = {name: cpu_seconds(p.proc.pid) for name, p in servers.items()}
    tool_before = _children_cpu()
    load: Load = fn()
    load.tool_cpu_s = load.tool_cpu_s or (_children_cpu() - tool_before)
    load.server_cpu_s = {
        name: cpu_seconds(p.proc.pid) - before[name] for name, p in servers.items()
    }
    return load


WRK_SCRIPT = """
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer %s"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\\"requests\\":%%d,\\"duration_us\\":%%d,\\"status\\":%%d,\\"other\\":%%d," ..
    "\\"p50\\":%%d,\\"p99\\":%%d}\\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def ensure_wrk() -> str | None:
    """The wrk binary; installed with apt-get when missing and running as root."""
    found = shutil.which("wrk")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    for args in (["apt-get", "install", "-y", "wrk"], ["apt-get", "update"],
                 ["apt-get", "install", "-y", "wrk"]):  # fmt: skip
        subprocess.run(args, capture_output=True, timeout=600, check=False)
        if shutil.which("wrk"):
            break
    return shutil.which("wrk")


def ensure_h2load() -> str | None:
    """The h2load binary (Debian nghttp2-client); installed with apt-get like wrk."""
    found = shutil.which("h2load")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    subprocess.run(["apt-get", "install", "-y", "nghttp2-client"], capture_output=True,
                   timeout=600, check=False)  # fmt: skip
    return shutil.which("h2load")


def wrk_load(wrk: str, url: str, token: str, seconds: float, workdir: Path) -> Load:
    """wrk, one thread, 16 keep-alive connections, for `seconds`."""
    script = workdir / "auth.lua"
    script.write_text(WRK_SCRIPT % token)
    out = subprocess.run(
        [
            wrk,
            "-t1",
            f"-c{CLIENTS}",
            f"-d{seconds:g}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url + PATH,
        ],  # fmt: skip
        capture_output=True,
        timeout=seconds + 60,
        check=True,
    ).stdout.decode()
    m = re.search(r"WRKJSON (\{.*\})", out)
    if not m:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    r = json.loads(m.group(1))
    return Load(
        "wrk",
        requests=r["requests"],
        seconds=r["duration_us"] / 1e6,
        p50_ms=r["p50"] / 1000,
        p99_ms=r["p99"] / 1000,
        errors=r["status"] + r["other"],
    )


def grpc_frame(message: bytes) -> bytes:
    """A gRPC length-prefixed message (uncompressed)."""
    return struct.pack(">BI", 0, len(message)) + message


def h2load_load(
    h2load: str,
    addr: str,
    metadata: list[tuple[str, str]],
    request: bytes,
    expected_response: bytes,
    seconds: float,
    workdir: Path,
    *,
    warm_up: bool = False,
) -> Load | None:
    """h2load: 16 HTTP/2 connections of one stream each sending the gRPC request for `seconds`
    (or for one second, unmeasured, with warm_up).

    h2load does not read gRPC trailers, so every response is checked by size instead: an error
    answers trailers only (no DATA), a success exactly the framed expected response."""
    body = workdir / "grpc-request.bin"
    body.write_bytes(grpc_frame(request))
    log = workdir / "h2load.tsv"
    headers = [("content-type", "application/grpc"), ("te", "trailers"), *metadata]
    args = [h2load, f"-c{CLIENTS}", "-m1", "-t1", "-d", str(body)]
    for name, value in headers:
        args += ["-H", f"{name}: {value}"]
    target = f"http://{addr}{GRPC_METHOD}"
    if warm_up:  # a run of its own, so that the measured run's byte count checks every answer
        subprocess.run([*args, "-D1", target], capture_output=True, timeout=60, check=True)
        return None
    log.unlink(missing_ok=True)
    out = subprocess.run(
        [*args, f"-D{seconds:g}", f"--log-file={log}", target],
        capture_output=True,
        timeout=seconds + 60,
        check=True,
    ).stdout.decode()
    finished = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", out)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    data = re.search(r"traffic: .*\((\d+)\) data", out)
    if not finished or not done or not data:
        raise RuntimeError(f"unexpected h2load output:\n{out}")
    latencies = sorted(
        int(line.split("\t")[2]) / 1000 for line in log.read_text().splitlines() if line.strip()
    )
    answered, succeeded = int(done.group(1)), int(done.group(2))
    answers_with_data = int(data.group(1)) // len(grpc_frame(expected_response))
    rate = float(finished.group(2))
    return Load(
        "h2load",
        requests=answered,
        seconds=answered / rate if rate else seconds,
        p50_ms=_pct(latencies, 0.50),
        p99_ms=_pct(latencies, 0.99),
        errors=answered - min(succeeded, answers_with_data),
    )


def _pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("nan")


# Python fallbacks: 2 processes of 8 clients each; each client a coroutine on its own connection.


async def _http_clients(port: int, token: str, n: int, until: float) -> list[float]:
    raw = f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    latencies: list[float] = []

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.time() < until:
            t0 = time.perf_counter()
            writer.write(raw.encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: (\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            ok = head.startswith(b"HTTP/1.1 200")
            latencies.append((time.perf_counter() - t0) * 1000 if ok else -1.0)
        writer.close()

    await asyncio.gather(*(client() for _ in range(n)))
    return latencies


async def _grpc_clients(
    addr: str, metadata: list[tuple[str, str]], n: int, until: float
) -> list[float]:
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(addr) as channel:
        stub = identity_pb2_grpc.IdentityServiceStub(channel)
        req = identity_pb2.GetOrgRequest(org_code=ORG_CODE)

        async def client() -> None:
            while time.time() < until:
                t0 = time.perf_counter()
                try:
                    await stub.GetOrg(req, metadata=metadata, timeout=10)
                except grpc.RpcError:
                    latencies.append(-1.0)
                    continue
                latencies.append((time.perf_counter() - t0) * 1000)

        await asyncio.gather(*(client() for _ in range(n)))
    return latencies


def _python_worker(
    kind: str, target: str, secret: object, n: int, start: float, until: float
) -> tuple[list[float], float, float]:
    time.sleep(max(0.0, start - time.time()))
    began = time.time()
    if kind == "http":
        latencies = asyncio.run(_http_clients(int(target), str(secret), n, until))
    else:
        latencies = asyncio.run(_grpc_clients(target, secret, n, until))  # type: ignore[arg-type]
    return latencies, began, time.time()


def python_load(kind: str, target: str, secret: object, seconds: float) -> Load:
    """The Python load generator: 2 processes of 8 clients each, started together."""
    procs = 2
    start = time.time() + 3  # time for the spawned processes to import
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(procs) as pool:
        parts = pool.starmap(
            _python_worker,
            [(kind, target, secret, CLIENTS // procs, start, start + seconds)] * procs,
        )
        pool.close()
        pool.join()
    latencies = [x for part, _, _ in parts for x in part]
    span = max(end for _, _, end in parts) - min(began for _, began, _ in parts)
    ok = sorted(x for x in latencies if x >= 0)
    return Load(
        f"python-{kind}",
        requests=len(latencies),
        seconds=max(1e-9, span),
        p50_ms=_pct(ok, 0.5),
        p99_ms=_pct(ok, 0.99),
        errors=len(latencies) - len(ok),
    )


# --------------------------------------------------------------------------- one database


@dataclass
class Pair:
    """Direct and gateway measurements on one database."""

    database: str
    direct: Load
    gateway: Load


def measure(
    ctx: Context, *, label: str, database_url: str, nats_url: str, redis_url: str, seconds: float,
    workers: int,
) -> Pair:  # fmt: skip
    """Start identity on database_url and a gateway, log in, measure direct then gateway."""
    workdir = ctx.tempdir(f"gateway-{label}")
    identity = start_identity(
        workdir, database_url=database_url, nats_url=nats_url, redis_url=redis_url
    )
    procs = [identity.proc]
    try:
        url, gateway = start_gateway(
            workdir, identity_addr=identity.addr, nats_url=nats_url, redis_url=redis_url,
            workers=workers,
        )  # fmt: skip
        procs.append(gateway)
        answer = login(url, identity.logins[USERNAME])
        token = answer["access_token"]
        metadata = caller_metadata(answer["principal"])
        status, body = _http("GET", url + PATH, token=token)
        if status != 200 or body.get("org_code") != ORG_CODE or len(body["ancestors"]) != 4:
            raise RuntimeError(f"GET {PATH} answered {status} {body}")

        with grpc.insecure_channel(identity.addr) as channel:
            stub = identity_pb2_grpc.IdentityServiceStub(channel)
            request = identity_pb2.GetOrgRequest(org_code=ORG_CODE)
            expected = stub.GetOrg(request, metadata=metadata, timeout=10)
        if len(expected.ancestors) != 4:
            raise RuntimeError(f"GetOrg answered {expected}")

        if os.environ.get("BENCH_GATEWAY_LOADGEN") == "python":
            wrk, h2load = None, None
        else:
            wrk, h2load = ensure_wrk(), ensure_h2load()
        warm = min(3.0, seconds)

        def direct(*, warm_up: bool = False) -> Load | None:
            if h2load:
                return h2load_load(h2load, identity.addr, metadata, request.SerializeToString(),
                                   expected.SerializeToString(), seconds, workdir,
                                   warm_up=warm_up)  # fmt: skip
            return python_load("grpc", identity.addr, metadata, 1 if warm_up else seconds)

        def through(duration: float) -> Load:
            if wrk:
                return wrk_load(wrk, url, token, duration, workdir)
            return python_load("http", url.rsplit(":", 1)[1], token, duration)

        servers = {"identity": identity.proc}
        direct(warm_up=True)  # warm identity (connections, caches) before measuring
        direct_load = _measured(direct, servers)
        through(warm)  # and the gateway
        gateway_load = _measured(lambda: through(seconds), {"gateway": gateway, **servers})
        for p in procs:
            p.alive()
        return Pair(label, direct_load, gateway_load)
    finally:
        for p in reversed(procs):
            p.stop()


def verdict(ok: bool) -> str:
    """PASS or FAIL."""
    return "PASS" if ok else "FAIL"


def report(pair: Pair) -> list[str]:
    """The lines of one database's measurement."""
    d, g = pair.direct, pair.gateway
    p50_over, p99_over = g.p50_ms - d.p50_ms, g.p99_ms - d.p99_ms
    return [
        f"[{pair.database}] " + d.line("direct gRPC GetOrg"),
        f"[{pair.database}] " + g.line(f"through the gateway GET {PATH}"),
        f"[{pair.database}] p50 overhead {p50_over:+.2f} ms (gateway {g.p50_ms:.2f} vs direct "
        f"{d.p50_ms:.2f}; target <= +{P50_MARGIN_MS:g} ms) {verdict(p50_over <= P50_MARGIN_MS)}",
        f"[{pair.database}] p99 overhead {p99_over:+.2f} ms (gateway {g.p99_ms:.2f} vs direct "
        f"{d.p99_ms:.2f}; target <= +{P99_MARGIN_MS:g} ms) {verdict(p99_over <= P99_MARGIN_MS)}",
        f"[{pair.database}] ratio gateway/direct: throughput {g.rate / d.rate:.2f}x, "
        f"p50 {g.p50_ms / d.p50_ms:.2f}x, p99 {g.p99_ms / d.p99_ms:.2f}x",
    ]


@benchmark(
    "gateway",
    ">=",
    1_500,
    "req/s",
    "authorized GET through the gateway (token, revocation, rate limits, one GetOrg), 16 clients",
)
def run(ctx: Context) -> Result:
    """Direct GetOrg, then the same through the gateway; SQLite (and PostgreSQL at full scale)."""
    seconds = float(os.environ.get("BENCH_SECONDS") or (30 if ctx.scale == "full" else 5))
    workers = int(os.environ.get("BENCH_GATEWAY_WORKERS") or 2)
    with_pg = os.environ.get("BENCH_GATEWAY_POSTGRES", "1" if ctx.scale == "full" else "0") == "1"
    nats = devservers.start_nats(data_dir=ctx.tempdir("nats"))
    redis = devservers.start_redis(data_dir=ctx.tempdir("redis"))
    pg = None
    pairs: list[Pair] = []
    try:
        pairs.append(
            measure(ctx, label="SQLite", database_url=f"sqlite+aiosqlite:///{ctx.workdir}/id.db",
                    nats_url=nats.url, redis_url=redis.url, seconds=seconds, workers=workers)
        )  # fmt: skip
        if with_pg:
            pg = devservers.start_postgres(data_dir=ctx.tempdir("pg"))
            pg.create_database("bench_gateway")
            pairs.append(
                measure(ctx, label="PostgreSQL", database_url=pg.url("bench_gateway"),
                        nats_url=nats.url, redis_url=redis.url, seconds=seconds, workers=workers)
            )  # fmt: skip
    finally:
        if pg is not None:
            pg.stop()
        redis.stop()
        nats.stop()
    load = os.getloadavg()
    lines = [
        f"{CLIENTS} concurrent clients, {seconds:g} s each; gateway HTTP_WORKERS={workers}, "
        f"ZIZHU_ENV=dev, logs JSON at WARNING; rate limits counted in Redis (limit 10^9); "
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
    ]
    for pair in pairs:
        lines += report(pair)
    head = pairs[0]
    if len(pairs) > 1:
        lines.append("figure: the embedded default (SQLite)")
    errors = sum(p.direct.errors + p.gateway.errors for p in pairs)
    if errors:
        lines.append(f"WARNING: {errors} failed requests in the measurements")
    return Result(head.gateway.rate if not head.gateway.errors else 0.0, lines)

"""Load generators of the gateway benchmark: `wrk` (HTTP/1.1) and `h2load` (HTTP/2 with gRPC
framing), C programs in their own processes so that they do not take the servers' CPU, and a
multi-process Python client when they are missing; each returns a `Load` (requests, latencies,
CPU seconds of the servers)."""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import os
import re
import resource
import shutil
import struct
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from zizhu_contracts.identity.v1 import identity_pb2, identity_pb2_grpc

from bench.gatewayload import CLIENTS, GRPC_METHOD, ORG_CODE, PATH, Proc, cpu_seconds


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


def measured(fn, servers: Mapping[str, Proc]):  # type: ignore[no-untyped-def]
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
    rate: float | None = None,
) -> Load | None:
    """h2load: 16 HTTP/2 connections of one stream each sending the gRPC request for `seconds`
    (or for one second, unmeasured, with warm_up); with `rate`, at that many requests per second
    in all (each connection rate/16) instead of as fast as answers come.

    h2load does not read gRPC trailers, so every response is checked by size instead: an error
    answers trailers only (no DATA), a success exactly the framed expected response."""
    body = workdir / "grpc-request.bin"
    body.write_bytes(grpc_frame(request))
    headers = [("content-type", "application/grpc"), ("te", "trailers"), *metadata]
    args = _h2load_args(h2load, headers, rate) + ["-d", str(body)]
    target = f"http://{addr}{GRPC_METHOD}"
    if warm_up:  # a run of its own, so that the measured run's byte count checks every answer
        subprocess.run([*args, "-D1", target], capture_output=True, timeout=60, check=True)
        return None
    out, latencies = _run_h2load(args, target, seconds, workdir)
    answered, succeeded, rate_done = _h2load_counts(out)
    data = re.search(r"traffic: .*\((\d+)\) data", out)
    if not data:
        raise RuntimeError(f"unexpected h2load output:\n{out}")
    answers_with_data = int(data.group(1)) // len(grpc_frame(expected_response))
    return _h2load_result(
        answered, rate_done, seconds, latencies, answered - min(succeeded, answers_with_data)
    )


def h2load_http_load(
    h2load: str, url: str, token: str, seconds: float, workdir: Path, *, rate: float
) -> Load:
    """h2load over HTTP/1.1 keep-alive: 16 connections sending the gateway GET at `rate`
    requests per second in all (rate/16 each); answers other than 2xx count as errors."""
    args = _h2load_args(h2load, [("authorization", f"Bearer {token}")], rate) + ["--h1"]
    out, latencies = _run_h2load(args, url + PATH, seconds, workdir)
    answered, _succeeded, rate_done = _h2load_counts(out)
    ok = re.search(r"status codes: (\d+) 2xx", out)
    if not ok:
        raise RuntimeError(f"unexpected h2load output:\n{out}")
    return _h2load_result(answered, rate_done, seconds, latencies, answered - int(ok.group(1)))


def _h2load_args(h2load: str, headers: list[tuple[str, str]], rate: float | None) -> list[str]:
    args = [h2load, f"-c{CLIENTS}", "-m1", "-t1"]
    if rate is not None:
        # Each connection sends rate/16 a second. The connections are opened one about every
        # 1/rate seconds (h2load counts that period in whole milliseconds), so that their clocks
        # are staggered and requests arrive spread out, not in bursts of 16 (h2load starts every
        # connection's clock at once otherwise).
        per_period = math.ceil(rate / 1000)
        period_ms = max(1, round(1000 * per_period / rate))
        args += [f"--rps={rate / CLIENTS:g}", f"-r{per_period}", f"--rate-period={period_ms}ms"]
    for name, value in headers:
        args += ["-H", f"{name}: {value}"]
    return args


def _run_h2load(args: list[str], target: str, seconds: float, workdir: Path
                ) -> tuple[str, list[float]]:  # fmt: skip
    """h2load's printed summary and the latencies (ms, sorted) from its per-request log."""
    log = workdir / "h2load.tsv"
    log.unlink(missing_ok=True)
    rps = next((float(a[6:]) for a in args if a.startswith("--rps=")), None)
    # At a fixed rate the run is a number of requests (h2load takes no duration with -r).
    length = f"-D{seconds:g}" if rps is None else f"-n{round(rps * CLIENTS * seconds)}"
    out = subprocess.run(
        [*args, length, f"--log-file={log}", target],
        capture_output=True,
        timeout=seconds + 60,
        check=True,
    ).stdout.decode()
    latencies = sorted(
        int(line.split("\t")[2]) / 1000 for line in log.read_text().splitlines() if line.strip()
    )
    return out, latencies


def _h2load_counts(out: str) -> tuple[int, int, float]:
    """Requests answered, succeeded and the rate, from h2load's summary."""
    finished = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", out)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    if not finished or not done:
        raise RuntimeError(f"unexpected h2load output:\n{out}")
    return int(done.group(1)), int(done.group(2)), float(finished.group(2))


def _h2load_result(
    answered: int, rate: float, seconds: float, latencies: list[float], errors: int
) -> Load:
    return Load(
        "h2load",
        requests=answered,
        seconds=answered / rate if rate else seconds,
        p50_ms=_pct(latencies, 0.50),
        p99_ms=_pct(latencies, 0.99),
        errors=errors,
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

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

The issue's figures come from that closed loop: 16 clients each sending its next request as soon
as the last is answered. There every request waits for the 15 others, so p50 is close to
16 / throughput: it measures the machine's capacity more than what the gateway adds. So, for
information (not the issue's figure), both are then measured again at fixed offered rates
(BENCH_GATEWAY_RATES, default 500 and 1,000 req/s, with h2load only): the 16 connections each
send rate/16 a second on clocks staggered so that requests arrive spread out, and the lines say
what the gateway adds to p50 and p99 at that load. h2load times a request from when it is sent,
so a request held back behind a late answer on its connection is not counted as waiting.

Environment: BENCH_SECONDS (seconds per measurement; small 5, full 30; the fixed-rate ones at
most 15), BENCH_GATEWAY_WORKERS (gateway HTTP_WORKERS; default 2), BENCH_GATEWAY_POSTGRES=1 to
measure on PostgreSQL as well (default: only with --scale full), BENCH_GATEWAY_RATES (comma-
separated; empty for none).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import partial

import grpc
from zizhu_common import devservers
from zizhu_contracts.identity.v1 import identity_pb2, identity_pb2_grpc

from bench.gatewayload import (
    CLIENTS,
    ORG_CODE,
    PATH,
    USERNAME,
    caller_metadata,
    http_json,
    login,
    start_gateway,
    start_identity,
)
from bench.loadgen import (
    Load,
    ensure_h2load,
    ensure_wrk,
    h2load_http_load,
    h2load_load,
    measured,
    python_load,
    wrk_load,
)
from bench.registry import Context, Result, benchmark

P50_MARGIN_MS = 2.0
P99_MARGIN_MS = 15.0


@dataclass
class Pair:
    """Direct and gateway measurements on one database: as fast as 16 clients go, then at each
    fixed rate (rate, direct, gateway)."""

    database: str
    direct: Load
    gateway: Load
    fixed: list[tuple[float, Load, Load]] = field(default_factory=list)


def measure(
    ctx: Context, *, label: str, database_url: str, nats_url: str, redis_url: str, seconds: float,
    workers: int, rates: list[float], fixed_seconds: float,
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
        status, body = http_json("GET", url + PATH, token=token)
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
        direct_load = measured(direct, servers)
        through(warm)  # and the gateway
        gateway_load = measured(lambda: through(seconds), {"gateway": gateway, **servers})
        pair = Pair(label, direct_load, gateway_load)
        for rate in rates if h2load else ():
            direct_at = partial(h2load_load, h2load, identity.addr, metadata,
                                request.SerializeToString(), expected.SerializeToString(),
                                fixed_seconds, workdir, rate=rate)  # fmt: skip
            through_at = partial(h2load_http_load, h2load, url, token, fixed_seconds, workdir,
                                 rate=rate)  # fmt: skip
            pair.fixed.append(
                (rate, measured(direct_at, servers),
                 measured(through_at, {"gateway": gateway, **servers}))
            )  # fmt: skip
        for p in procs:
            p.alive()
        return pair
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
        *(line for fixed in pair.fixed for line in report_fixed(pair.database, *fixed)),
    ]


def report_fixed(database: str, rate: float, d: Load, g: Load) -> list[str]:
    """The lines of one fixed-rate measurement (informational: not the issue's figure)."""
    p50_over, p99_over = g.p50_ms - d.p50_ms, g.p99_ms - d.p99_ms
    within = p50_over <= P50_MARGIN_MS and p99_over <= P99_MARGIN_MS
    head = f"[{database}] fixed {rate:,.0f} req/s offered"
    return [
        f"{head}, direct: " + d.line("answered"),
        f"{head}, gateway: " + g.line("answered"),
        f"{head}: added by the gateway p50 {p50_over:+.2f} ms, p99 {p99_over:+.2f} ms "
        f"({'within' if within else 'outside'} the +{P50_MARGIN_MS:g} / +{P99_MARGIN_MS:g} ms "
        "margins)",
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
    rates = [float(r) for r in os.environ.get("BENCH_GATEWAY_RATES", "500,1000").split(",") if r]
    fixed_seconds = min(seconds, 15.0)
    nats = devservers.start_nats(data_dir=ctx.tempdir("nats"))
    redis = devservers.start_redis(data_dir=ctx.tempdir("redis"))
    pg = None
    pairs: list[Pair] = []
    try:
        pairs.append(
            measure(ctx, label="SQLite", database_url=f"sqlite+aiosqlite:///{ctx.workdir}/id.db",
                    nats_url=nats.url, redis_url=redis.url, seconds=seconds, workers=workers,
                    rates=rates, fixed_seconds=fixed_seconds)
        )  # fmt: skip
        if with_pg:
            pg = devservers.start_postgres(data_dir=ctx.tempdir("pg"))
            pg.create_database("bench_gateway")
            pairs.append(
                measure(ctx, label="PostgreSQL", database_url=pg.url("bench_gateway"),
                        nats_url=nats.url, redis_url=redis.url, seconds=seconds, workers=workers,
                        rates=rates, fixed_seconds=fixed_seconds)
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

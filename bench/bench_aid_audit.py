"""aid-audit: seconds for one authority to approve 10,000 records in one bulk decision over a
filtered set (the county's queue), on the embedded default (SQLite) and on PostgreSQL; and the
p95 of one record's single-level transition measured server-side (the audit use case itself).
Records are made the way schools make them: a template import checked by the real roster, one
submission, one school-level bulk approval."""

from __future__ import annotations

import asyncio
import statistics
import time

from zizhu_common import devservers
from zizhu_contracts.aid.v1 import aid_pb2
from zizhu_contracts.common.v1 import common_pb2

from bench.aidload import (
    PERIOD,
    PROJECT,
    AidEnv,
    Province,
    RosterProcess,
    chunked,
    load_roster,
    province,
    start_aid,
    students,
    template_file,
)
from bench.registry import Context, Result, benchmark

SINGLES = 200
P95_TARGET_MS = 50.0


async def _records(env: AidEnv, prov: Province, content: bytes) -> list[str]:
    """Import, list and submit: DRAFT → PENDING_SCHOOL_AUDIT."""
    operator = prov.caller(prov.school.code, "operator", account="bench-operator")
    md = operator.to_metadata()
    resp = await env.stub.ImportRecords(
        aid_pb2.ImportRecordsRequest(
            project_code=PROJECT, period=PERIOD, dry_run=False, submit=False,
            file=common_pb2.FileContent(file_name="名单.xlsx", content=content),
        ),
        metadata=md, timeout=900,
    )  # fmt: skip
    assert resp.summary.committed, list(resp.summary.errors)[:3]
    ids: list[str] = []
    token = ""
    while True:
        page = await env.stub.ListRecords(
            aid_pb2.ListRecordsRequest(
                project_code=PROJECT, period=PERIOD,
                page=common_pb2.PageRequest(page_size=1000, page_token=token),
            ),
            metadata=md, timeout=60,
        )  # fmt: skip
        ids += [r.record_id for r in page.records]
        token = page.page.next_page_token
        if not token:
            break
    for part in chunked(ids, 10_000):
        await env.stub.SubmitRecords(
            aid_pb2.SubmitRecordsRequest(record_ids=part), metadata=md, timeout=900
        )
    return ids


async def _measure(url: str, roster_addr: str, prov: Province, content: bytes, n: int) -> dict:  # type: ignore[type-arg]
    env = await start_aid(url, roster_addr, prov)
    try:
        ids = await _records(env, prov, content)
        assert len(ids) == n + SINGLES, (len(ids), n)
        bulk_ids, single_ids = ids[:n], ids[n:]
        school_aud = prov.caller(prov.school.code, "auditor", account="bench-school-auditor")
        started = time.perf_counter()
        await env.stub.AuditRecords(
            aid_pb2.AuditRecordsRequest(
                record_ids=bulk_ids, decision=aid_pb2.AUDIT_DECISION_APPROVE, opinion="同意"
            ),
            metadata=school_aud.to_metadata(),
            timeout=900,
        )
        school_s = time.perf_counter() - started
        # One record at a time, timed inside the server (the use case, no transport).
        latencies = []
        for rid in single_ids:
            t0 = time.perf_counter()
            await env.services.audit.decide(
                school_aud,
                decision=int(aid_pb2.AUDIT_DECISION_APPROVE),
                opinion="同意",
                record_ids=[rid],
            )
            latencies.append((time.perf_counter() - t0) * 1000)
        county = prov.school.parent_code or ""
        county_aud = prov.caller(county, "auditor", account="bench-county-auditor")
        flt = aid_pb2.ListRecordsRequest(
            project_code=PROJECT, period=PERIOD, org_code=prov.school.code
        )
        queue = await env.stub.ListRecords(
            aid_pb2.ListRecordsRequest(
                project_code=PROJECT, period=PERIOD, pending_org_code=county
            ),
            metadata=county_aud.to_metadata(),
            timeout=60,
        )
        waiting = queue.page.total
        started = time.perf_counter()
        out = await env.stub.AuditRecords(
            aid_pb2.AuditRecordsRequest(
                filter=flt, decision=aid_pb2.AUDIT_DECISION_APPROVE, opinion="同意",
                expected_count=waiting,
            ),
            metadata=county_aud.to_metadata(),
            timeout=900,
        )  # fmt: skip
        county_s = time.perf_counter() - started
        assert out.forwarded_count == waiting >= n, (out.forwarded_count, waiting, n)
    finally:
        await env.close()
    latencies.sort()
    return {
        "school_s": school_s,
        "county_s": county_s,
        "county_n": waiting,
        "p50": statistics.median(latencies),
        "p95": latencies[int(len(latencies) * 0.95) - 1],
    }


@benchmark(
    "aid-audit",
    "<=",
    10,
    "s",
    "10,000 records approved at one level in one bulk decision",
)
def run(ctx: Context) -> Result:
    """Records through import, submission and the school audit; time the county's bulk approval."""
    n = ctx.rows(small=2_000, full=10_000)
    prov = province(ctx.seed)
    rows = students(ctx.seed, prov, n + SINGLES)
    content = template_file(rows)
    roster = RosterProcess(ctx.tempdir("roster"), prov)
    pg = devservers.start_postgres(data_dir=ctx.tempdir("pg"))
    try:
        asyncio.run(load_roster(roster.addr, prov, rows))
        lite = asyncio.run(
            _measure(
                f"sqlite+aiosqlite:///{ctx.tempdir('aid')}/aid.db", roster.addr, prov, content, n
            )
        )
        pg.create_database("bench_aid_audit")
        post = asyncio.run(_measure(pg.url("bench_aid_audit"), roster.addr, prov, content, n))
    finally:
        pg.stop()
        roster.stop()
    p95 = max(lite["p95"], post["p95"])
    lines = [
        f"records: {n} in one bulk decision (+{SINGLES} decided one at a time), project {PROJECT}",
        f"SQLite: county bulk approval of {lite['county_n']} (filter) {lite['county_s']:.2f} s; "
        f"school bulk approval {lite['school_s']:.2f} s; single transition p50 {lite['p50']:.1f} ms, "
        f"p95 {lite['p95']:.1f} ms",
        f"PostgreSQL: county bulk approval of {post['county_n']} (filter) {post['county_s']:.2f} s; "
        f"school bulk approval {post['school_s']:.2f} s; single transition p50 {post['p50']:.1f} ms, "
        f"p95 {post['p95']:.1f} ms",
        f"single-level transition p95 (server-side, slower database): {p95:.1f} ms "
        f"(target <= {P95_TARGET_MS:.0f} ms: {'PASS' if p95 <= P95_TARGET_MS else 'FAIL'})",
        "figure: the slower database's bulk decision",
    ]
    return Result(max(lite["county_s"], post["county_s"]), lines)

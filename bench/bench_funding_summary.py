"""funding-summary: the fund summary of a province (100 counties, 5,000 schools, 2,000,000
approved records) answered over gRPC by the funding service on PostgreSQL.

Setup goes through the service's own code paths: identity org events and aid project events are
applied by the consumers' handlers, the 2M approved-record events are applied in consumer-sized
batches by the same handler (maintaining the per org × project × year rollups), and the funds are
allocated down the tree (nation → province → cities → counties → schools) through the allocation
use case. The figure is the slowest of all timed FundSummary calls (all projects, by source,
one project, directly-run schools expanded); the anchor is DuckDB scanning the same 2M records
per request, and the summary's execution per child region is checked against it.
"""

from __future__ import annotations

import asyncio
import csv
import statistics
import time
from collections import defaultdict
from collections.abc import Iterator
from itertools import cycle, islice
from pathlib import Path

import duckdb
from zizhu_common import devservers
from zizhu_common.consumer import Event
from zizhu_common.db import Database
from zizhu_common.outbox import Outbox, stamp
from zizhu_common.rpc import CallerContext, GrpcServer, open_channel
from zizhu_contracts.aid.v1 import aid_pb2
from zizhu_contracts.aid.v1 import events_pb2 as aid_events
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.funding.v1 import funding_pb2, funding_pb2_grpc
from zizhu_contracts.identity.v1 import events_pb2 as identity_events
from zizhu_contracts.identity.v1 import identity_pb2

from bench.datagen import AID_PROJECTS, DataGen, OrgTree, OrgUnit
from bench.registry import Context, Result, benchmark

FISCAL_YEAR = "2024"  # autumn of 2024-2025 counts towards 2024
INGEST_BATCH = 2_000
TIMED_CALLS = 10
LEVELS = {
    "national": common_pb2.ORG_LEVEL_NATIONAL,
    "province": common_pb2.ORG_LEVEL_PROVINCE,
    "city": common_pb2.ORG_LEVEL_CITY,
    "county": common_pb2.ORG_LEVEL_COUNTY,
    "school": common_pb2.ORG_LEVEL_SCHOOL,
}
TERMS = {"autumn": common_pb2.TERM_AUTUMN, "spring": common_pb2.TERM_SPRING}
STAGES = {"学前": 1, "义务教育": 2, "普高": 3, "中职": 4, "本专科": 5, "研究生": 6}


def org_paths(tree: OrgTree) -> dict[str, str]:
    """Materialised path of every org (parents come before children in tree.units())."""
    paths: dict[str, str] = {}
    for u in tree.units():
        paths[u.code] = (paths[u.parent_code] if u.parent_code else "/") + u.code + "/"
    return paths


def org_events(tree: OrgTree, paths: dict[str, str]) -> list[Event]:
    """identity.org.created for every org of the tree."""
    out = []
    for i, u in enumerate(tree.units()):
        msg = identity_events.OrgCreated(
            org_code=u.code,
            org=identity_pb2.Org(
                org_code=u.code, name=u.name, level=LEVELS[u.level], parent_code=u.parent_code or "",
                org_path=paths[u.code], status=identity_pb2.ORG_STATUS_ACTIVE, version=1,
            ),
        )  # fmt: skip
        out.append(
            Event(
                stamp(msg, producer="identity"), "identity.org.created", msg.SerializeToString(), i
            )
        )
    return out


def project_events() -> list[Event]:
    """aid.project.created for the national projects of the generator."""
    out = []
    for i, p in enumerate(AID_PROJECTS):
        project = aid_pb2.Project(
            project_code=p.code, name=p.name, owner_org_code="000000", owner_org_path="/000000/",
            owner_level=common_pb2.ORG_LEVEL_NATIONAL, stage=STAGES[p.stage],  # type: ignore[arg-type]
            status=aid_pb2.PROJECT_STATUS_ACTIVE,
        )  # fmt: skip
        msg = aid_events.ProjectCreated(project_code=p.code, project=project)
        out.append(
            Event(stamp(msg, producer="aid"), "aid.project.created", msg.SerializeToString(), i)
        )
    return out


def approved_batches(
    gen: DataGen, tree: OrgTree, paths: dict[str, str], n: int, csv_path: Path
) -> Iterator[list[Event]]:
    """n aid.record.approved events in batches; also written to a CSV for the DuckDB anchor."""
    students = gen.students_for_tree(tree, max(len(tree.schools) * 20, min(n // 3, 600_000)))
    records = islice(cycle(gen.aid_records(students)), n)
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(("school", "project", "term", "amount"))
        batch: list[Event] = []
        for i, rec in enumerate(records):
            msg = aid_events.RecordApproved(
                record_id=f"R{i:010d}", student_id=f"S{i:010d}", school_org_code=rec.school_code,
                school_org_path=paths[rec.school_code], project_code=rec.project_code,
                project_category=common_pb2.AID_CATEGORY_NEED_BASED, amount_fen=rec.amount_fen,
                period=common_pb2.AidPeriod(school_year=rec.period, term=TERMS[rec.term]),  # type: ignore[arg-type]
            )  # fmt: skip
            msg.approved_at.GetCurrentTime()
            batch.append(
                Event(stamp(msg, producer="aid"), "aid.record.approved", msg.SerializeToString(), i)
            )
            out.writerow((rec.school_code, rec.project_code, TERMS[rec.term], rec.amount_fen))
            if len(batch) >= INGEST_BATCH:
                yield batch
                batch = []
        if batch:
            yield batch


async def allocate_tree(services, tree: OrgTree, needs: dict[tuple[str, str], int]) -> int:  # type: ignore[no-untyped-def]
    """Fund every school's autumn execution down the tree (most a little above it, every 29th
    school a little below, so some are overspent); returns the documents written."""
    from funding_service.demo import system_caller
    from funding_service.domain.model import AllocationInput, AllocationLineInput

    units = tree.by_code()
    children: dict[str, list[OrgUnit]] = defaultdict(list)
    for u in tree.units():
        if u.parent_code:
            children[u.parent_code].append(u)
    province = tree.provinces[0].code
    caller = system_caller()
    docs = 0
    for project in sorted({p for _, p in needs}):
        want: dict[str, int] = {}

        def need(code: str, project: str = project, want: dict[str, int] = want) -> int:
            if code not in want:
                u = units[code]
                if u.level == "school":
                    e = needs.get((code, project), 0)
                    want[code] = e * 97 // 100 if int(code) % 29 == 0 else e * 102 // 100
                else:
                    want[code] = sum(need(c.code) for c in children[code]) * 101 // 100
            return want[code]

        total = need(province)
        if not total:
            continue
        plan = [("000000", [("000000", 1, total), (province, 1, total)])]
        for code in [province, *(u.code for u in tree.cities), *(u.code for u in tree.counties)]:
            lines = [(c.code, 1, need(c.code)) for c in children[code] if need(c.code)]
            plan += [(code, lines[i : i + 1000]) for i in range(0, len(lines), 1000)]
        for from_org, lines in plan:
            if not lines:
                continue
            await services.allocations.allocate(
                caller,
                AllocationInput(
                    project_code=project, fiscal_year=FISCAL_YEAR, from_org_code=from_org,
                    document_number=f"财教〔{FISCAL_YEAR}〕{docs + 1}号", document_date="2024-03-01",
                    allocated_on="", note="",
                    lines=tuple(AllocationLineInput(to, src, amt) for to, src, amt in lines),
                ),
            )  # fmt: skip
            docs += 1
    return docs


async def timed_summaries(
    port: int, province: str, paths: dict[str, str]
) -> tuple[list[float], funding_pb2.FundSummaryResponse]:
    """Time the summary variants over a real gRPC channel; returns ms per call and one answer."""
    channel = open_channel(f"127.0.0.1:{port}")
    stub = funding_pb2_grpc.FundingServiceStub(channel)
    md = CallerContext(
        account_id="bench-province-viewer", org_code=province, org_path=paths[province],
        level="province", roles=frozenset({"viewer"}),
    ).to_metadata()  # fmt: skip
    variants = [
        funding_pb2.FundSummaryRequest(fiscal_year=FISCAL_YEAR),
        funding_pb2.FundSummaryRequest(fiscal_year=FISCAL_YEAR, by_source=True),
        funding_pb2.FundSummaryRequest(fiscal_year=FISCAL_YEAR, project_code="YW01"),
        funding_pb2.FundSummaryRequest(fiscal_year=FISCAL_YEAR, expand_direct_schools=True),
    ]
    times: list[float] = []
    first = None
    for _ in range(TIMED_CALLS):
        for req in variants:
            t = time.perf_counter()
            resp = await stub.FundSummary(req, metadata=md, timeout=30)
            times.append((time.perf_counter() - t) * 1000)
            first = first or resp
    await channel.close()
    assert first is not None
    return times, first


async def _run(ctx: Context, n: int, counties: int, schools: int) -> Result:
    from funding_service import tables
    from funding_service.grpc_api import SERVICE_NAME, FundingServicer
    from funding_service.settings import Settings
    from funding_service.wiring import build_services, migrate

    pg = devservers.start_postgres(data_dir=ctx.tempdir("pg"))
    pg.create_database("funding")
    url = pg.url("funding")
    lines: list[str] = []
    try:
        await asyncio.to_thread(migrate, Settings(zizhu_env="test", database_url=url))
        db = Database(url)
        services = build_services(db=db, outbox=Outbox(tables.outbox_event, producer="funding"))
        gen = DataGen(ctx.seed)
        tree = gen.org_tree(provinces=1, counties=counties, schools=schools)
        paths = org_paths(tree)
        async with db.write() as session:
            await services.feeds.apply_identity_events(session, org_events(tree, paths))
            await services.feeds.apply_aid_events(session, project_events())

        csv_path = ctx.workdir / "approved.csv"
        t = time.perf_counter()
        for batch in approved_batches(gen, tree, paths, n, csv_path):
            async with db.write() as session:
                await services.feeds.apply_aid_events(session, batch)
        ingest_s = time.perf_counter() - t

        con = duckdb.connect()
        con.execute(
            "CREATE TABLE rec AS SELECT * FROM read_csv(?, header = true, columns = "
            "{'school': 'VARCHAR', 'project': 'VARCHAR', 'term': 'INTEGER', 'amount': 'BIGINT'})",
            [str(csv_path)],
        )
        needs = {
            (s, p): int(a)
            for s, p, a in con.execute(
                "SELECT school, project, SUM(amount) FROM rec WHERE term = 1 GROUP BY 1, 2"
            ).fetchall()
        }
        t = time.perf_counter()
        docs = await allocate_tree(services, tree, needs)
        alloc_s = time.perf_counter() - t

        server = GrpcServer(host="127.0.0.1", port=0, service_names=[SERVICE_NAME])
        server.add(funding_pb2_grpc.add_FundingServiceServicer_to_server, FundingServicer(services))
        port = await server.start()
        province = tree.provinces[0].code
        times, answer = await timed_summaries(port, province, paths)
        await server.stop(grace=0.5)
        await db.dispose()

        # Anchor: DuckDB scanning all records per request, grouped by the province's children.
        ppath = paths[province]
        child_of = {
            u.code: paths[u.code][len(ppath) :].split("/")[0]
            for u in tree.schools
            if paths[u.code].startswith(ppath)
        }
        con.execute("CREATE TABLE m (school VARCHAR, child VARCHAR)")
        con.executemany("INSERT INTO m VALUES (?, ?)", list(child_of.items()))
        scans = []
        for _ in range(5):
            t = time.perf_counter()
            rows = con.execute(
                "SELECT child, SUM(amount) FROM rec JOIN m USING (school) WHERE term = 1 "
                "GROUP BY child"
            ).fetchall()
            scans.append((time.perf_counter() - t) * 1000)
        duck = {c: int(a) for c, a in rows}
        got = {r.org.org_code: r.executed_fen for r in answer.rows if r.org.org_code != province}
        direct = sum(v for c, v in duck.items() if tree.by_code()[c].level == "school")
        subtotal = next(
            r.executed_fen
            for r in answer.rows
            if r.kind == common_pb2.STATS_ROW_KIND_DIRECT_SCHOOLS
        )
        regions_ok = all(
            got.get(c, 0) == v for c, v in duck.items() if tree.by_code()[c].level != "school"
        )
        assert regions_ok and subtotal == direct, "summary execution differs from the DuckDB scan"
        assert answer.rows[0].executed_fen == sum(duck.values())
        overspent = sum(1 for r in answer.rows if r.overspent)
    finally:
        pg.stop()
    worst = max(times)
    median = statistics.median(times)
    lines += [
        f"tree: 1 province, {len(tree.cities)} cities, {len(tree.counties)} counties, "
        f"{len(tree.schools)} schools; {n:,} approved records ({ingest_s:.0f} s through the "
        f"consumer handler, {n / ingest_s:,.0f} events/s); {docs} allocation documents ({alloc_s:.0f} s)",
        f"summary rows: {len(answer.rows)} (province total, directly-run schools, child regions); "
        f"overspent rows in the all-projects view: {overspent}",
        f"FundSummary over gRPC, {len(times)} calls (4 variants): median {median:.1f} ms, "
        f"p95 {sorted(times)[int(len(times) * 0.95) - 1]:.1f} ms, slowest {worst:.1f} ms",
        f"anchor (DuckDB scan of the {n:,} records per request): median {statistics.median(scans):.1f} ms; "
        f"service median / anchor = {median / statistics.median(scans):.2f}x; execution per child "
        "region equals the scan",
        "figure: the slowest timed call",
    ]
    return Result(worst, lines)


@benchmark(
    "funding-summary", "<=", 500, "ms", "fund summary of a province (100 counties, 2M records)"
)
def run(ctx: Context) -> Result:
    """Build the province's funds and execution, then time its summary."""
    n = ctx.rows(small=100_000, full=2_000_000)
    full = ctx.scale == "full"
    return asyncio.run(_run(ctx, n, counties=100 if full else 20, schools=5_000 if full else 1_000))

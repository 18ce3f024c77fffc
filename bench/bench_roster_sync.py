"""roster-sync: students synced from a 学籍 export file — parse + validate (GB 11643, 学籍号,
dates, schools in scope) + store (SM4-encrypted ID and phone, HMAC-SM3 blind index, enrolment,
StudentRegistered event in the outbox), all-or-nothing in one transaction, on the embedded default
(SQLite). The raw parse of the same file (csv module, no validation) is timed beside it."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from datetime import UTC, datetime

from roster_service import tables
from roster_service.domain.common import STAGE_ALIASES
from roster_service.service import RosterServices
from roster_service.settings import Settings
from roster_service.wiring import build_services, migrate
from sqlalchemy import func, insert, select
from zizhu_common.db import Database
from zizhu_common.outbox import Outbox
from zizhu_common.rpc import CallerContext

from bench.datagen import DataGen, write_students_csv
from bench.datagen.model import OrgTree
from bench.registry import Context, Result, benchmark

SYSTEM = CallerContext(
    account_id="system:bench",
    org_code="",
    org_path="/",
    level="national",
    roles=frozenset({"system", "operator", "admin"}),
)
_LEVELS = ("national", "province", "city", "county", "school")


def org_paths(tree: OrgTree) -> dict[str, str]:
    """Materialised path per org code (parents before children in tree.units())."""
    paths: dict[str, str] = {}
    for unit in tree.units():
        parent = paths.get(unit.parent_code or "", "/")
        paths[unit.code] = f"{parent}{unit.code}/"
    return paths


async def open_roster(url: str, tree: OrgTree) -> tuple[RosterServices, Database]:
    """Migrate a fresh database, load the tree into the org read copy, build the services."""
    settings = Settings(zizhu_env="test", database_url=url, consume_identity=False)
    await asyncio.to_thread(migrate, settings)
    db = Database(url)
    services = build_services(
        settings, db=db, outbox=Outbox(tables.outbox_event, producer="roster")
    )
    paths = org_paths(tree)
    now = datetime.now(UTC)
    rows = [
        {
            "org_code": u.code,
            "name": u.name,
            "level": u.level,
            "parent_code": u.parent_code,
            "org_path": paths[u.code],
            "stages": ",".join(str(int(STAGE_ALIASES[s])) for s in u.stages),
            "status": "active",
            "version": 1,
            "updated_at": now,
        }
        for u in tree.units()
    ]
    async with db.write() as session:
        for start in range(0, len(rows), 5000):
            await session.execute(insert(tables.org_ref), rows[start : start + 5000])
    return services, db


def _raw_parse(content: bytes) -> tuple[int, float]:
    started = time.perf_counter()
    n = sum(1 for _ in csv.reader(io.StringIO(content.decode("utf-8-sig")))) - 1
    return n, time.perf_counter() - started


async def _sync(url: str, tree, content: bytes, rows: int) -> tuple[float, dict[str, int]]:
    services, db = await open_roster(url, tree)
    try:
        started = time.perf_counter()
        summary = await services.students.run_student_file(
            SYSTEM,
            content=content,
            file_name="students.csv",
            import_id="bench",
            source_system="学籍系统",
            write=True,
            skip_invalid=False,
        )
        elapsed = time.perf_counter() - started
        assert summary.committed, summary.errors[:5]
        counts = {}
        async with db.read() as session:
            for name in ("student", "enrollment", "outbox_event"):
                counts[name] = (
                    await session.execute(
                        select(func.count()).select_from(tables.metadata.tables[name])
                    )
                ).scalar_one()
        assert counts["student"] == rows == summary.created_count, (counts, summary.created_count)
        return elapsed, counts
    finally:
        services.deps.close()
        await db.dispose()


@benchmark(
    "roster-sync",
    ">=",
    20_000,
    "rows/s",
    "students synced from a 学籍 file: parse + validate + store (SQLite, embedded default)",
)
def run(ctx: Context) -> Result:
    """Generate the file, time the raw parse, then the sync into a fresh SQLite database."""
    rows = ctx.rows(small=50_000, full=1_000_000)
    gen = DataGen(ctx.seed)
    tree = gen.org_tree(provinces=1, counties=max(10, rows // 10_000), schools=max(50, rows // 200))
    path = ctx.tempdir("roster-sync") / "students.csv"
    write_students_csv(path, gen, tree, rows)
    content = path.read_bytes()
    parsed, parse_s = _raw_parse(content)
    assert parsed == rows
    elapsed, counts = asyncio.run(
        _sync(f"sqlite+aiosqlite:///{ctx.workdir}/roster.db", tree, content, rows)
    )
    rate = rows / elapsed
    return Result(
        rate,
        [
            f"rows: {rows:,} ({len(content) / 1e6:.0f} MB CSV), schools: {len(tree.schools):,}",
            f"sync: {elapsed:.1f} s → {counts['student']:,} students, {counts['enrollment']:,} "
            f"enrolments, {counts['outbox_event']:,} events in one transaction",
            f"anchor (raw csv parse of the same file): {parse_s:.2f} s = {rows / parse_s:,.0f} rows/s; "
            f"sync takes {elapsed / parse_s:.1f}x the raw parse",
        ],
    )

"""Shared set-up of the aid benchmarks: a generated province with one large 普通高中, its students
synced and recognised in a REAL roster (its servicer in its own process, as deployed), aid's
services over SQLite or PostgreSQL calling that roster over gRPC, and filled import templates."""

from __future__ import annotations

import asyncio
import csv
import io
import multiprocessing as mp
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import xlsxwriter
from zizhu_common.consumer import Event
from zizhu_common.db import Database
from zizhu_common.outbox import Outbox
from zizhu_common.rpc import CallerContext, GrpcServer
from zizhu_contracts.aid.v1 import aid_pb2, aid_pb2_grpc
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.identity.v1 import events_pb2 as identity_events
from zizhu_contracts.identity.v1 import identity_pb2
from zizhu_contracts.roster.v1 import roster_pb2, roster_pb2_grpc

from bench.datagen import DataGen
from bench.datagen.model import OrgUnit, Student

# Long calls (a 100,000-row import) on channels without client keepalive pings: the servers'
# default ping policy answers pings during a silent minutes-long call with GOAWAY "too many pings".
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]
LEVELS = {"national": 1, "province": 2, "city": 3, "county": 4, "school": 5}
STAGES = {"学前": 1, "义务教育": 2, "普高": 3, "中职": 4, "本专科": 5, "研究生": 6}
PROJECT = "GJ-PG-ZXJ"  # 普通高中国家助学金: three tiers, hardship recognition required
SCHOOL_YEAR = "2026-2027"
PERIOD = common_pb2.AidPeriod(school_year=SCHOOL_YEAR, term=common_pb2.TERM_AUTUMN)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SCHOOLS = 300  # enough for every seed's tree to hold a 普通高中
BANKS = ("中国工商银行", "中国农业银行", "中国银行", "中国建设银行", "广州农村商业银行")


@dataclass
class Province:
    """The generated tree (national → province → city → county → schools) and its big school."""

    units: list[OrgUnit]
    paths: dict[str, str]
    school: OrgUnit

    def events(self) -> list[Event]:
        """identity.org.created of every unit, as JetStream delivers them."""
        out = []
        for seq, u in enumerate(self.units, start=1):
            org = identity_pb2.Org(
                org_code=u.code, name=u.name, level=LEVELS[u.level], parent_code=u.parent_code or "",
                org_path=self.paths[u.code], stages=[STAGES[s] for s in u.stages],
                status=identity_pb2.ORG_STATUS_ACTIVE, version=1,
            )  # fmt: skip
            msg = identity_events.OrgCreated(org_code=u.code, org=org)
            msg.meta.event_id = uuid.uuid4().hex
            out.append(
                Event(msg.meta.event_id, "identity.org.created", msg.SerializeToString(), seq)
            )
        return out

    def caller(self, code: str, *roles: str, account: str = "") -> CallerContext:
        """A caller at an org of the tree."""
        level = next(u.level for u in self.units if u.code == code)
        return CallerContext(
            account_id=account or f"bench-{code}-{'-'.join(roles)}",
            org_code=code,
            org_path=self.paths[code],
            level=level,
            roles=frozenset(roles),
            request_id=uuid.uuid4().hex,
        )


def province(seed: int) -> Province:
    """A one-province tree with at least one 普通高中 (the school every row belongs to)."""
    tree = DataGen(seed).org_tree(provinces=1, counties=2, schools=SCHOOLS)
    school = next(s for s in tree.schools if "普高" in s.stages)
    units = [tree.national, *tree.provinces, *tree.cities, *tree.counties, *tree.schools]
    paths: dict[str, str] = {}
    for u in units:
        paths[u.code] = (paths[u.parent_code] if u.parent_code else "/") + u.code + "/"
    return Province(units, paths, school)


def students(seed: int, prov: Province, n: int) -> list[Student]:
    """n students of the big school (unique, valid ID numbers)."""
    gen = DataGen(seed)
    gen.org_tree(provinces=1, counties=2, schools=SCHOOLS)
    slots = sum(b - a + 1 for _, a, b in prov.school.grades)
    high = sum(b - a + 1 for st, a, b in prov.school.grades if st == "普高")
    pool = gen.students(prov.school, n * slots // high + slots)
    return [s for s in pool if s.stage == "普高"][:n]


def roster_students_csv(rows: list[Student]) -> bytes:
    """A 学籍 export in the generator's (English) columns, which roster's import accepts."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["id_number", "student_no", "name", "gender", "birth_date", "phone", "school_code",
                "stage", "grade", "class_no", "boarding", "enrolled_on"])  # fmt: skip
    for s in rows:
        w.writerow([s.id_number, s.student_no, s.name, s.gender, s.birth_date, s.phone,
                    s.school_code, s.stage, f"{s.grade}年级", f"{s.class_no}班",
                    "是" if s.boarding else "否", "2024-09-01"])  # fmt: skip
    return buf.getvalue().encode()


def recognitions_csv(rows: list[Student]) -> bytes:
    """Everyone recognised as 困难 (the project requires a recognition)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["身份证件号码", "认定档次", "认定日期"])
    for s in rows:
        w.writerow([s.id_number, "困难", "2026-10-01"])
    return buf.getvalue().encode()


def template_file(rows: list[Student], *, project: str = PROJECT) -> bytes:
    """The filled import template (as aid's template lays it out), one row per student: name,
    ID number as text, a tier, bank and card."""
    from aid_service import xlsx

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "constant_memory": True})
    ws = wb.add_worksheet(xlsx.DATA_SHEET)
    ws.write_row(0, 0, [c.header for c in xlsx.COLUMNS])
    tiers = ("1", "2", "3")
    for i, s in enumerate(rows, start=1):
        ws.write_row(i, 0, [s.name, "居民身份证", s.id_number, s.student_no, tiers[i % 3], "",
                            BANKS[i % len(BANKS)], f"62170{i:014d}", ""])  # fmt: skip
    info = wb.add_worksheet(xlsx.INFO_SHEET)
    for r, (k, v) in enumerate((("template", xlsx.TEMPLATE_KIND), ("version", xlsx.TEMPLATE_VERSION),
                                ("project_code", project))):  # fmt: skip
        info.write_row(r, 0, [k, v])
    wb.close()
    return buf.getvalue()


# --- roster in its own process -------------------------------------------------------------------


def _roster_main(db_path: str, events: list[tuple[str, bytes]], port_q: Any, stop_ev: Any) -> None:
    asyncio.run(_roster_serve(db_path, events, port_q, stop_ev))


async def _roster_serve(
    db_path: str, events: list[tuple[str, bytes]], port_q: Any, stop_ev: Any
) -> None:
    from roster_service import tables as roster_tables
    from roster_service.events import OrgCopyConsumer
    from roster_service.grpc_api import SERVICE_NAME, RosterServicer
    from roster_service.settings import Settings as RosterSettings
    from roster_service.wiring import build_services, migrate

    settings = RosterSettings(
        zizhu_env="test", database_url=f"sqlite+aiosqlite:///{db_path}", consume_identity=False
    )
    await asyncio.to_thread(migrate, settings)
    db = Database(settings.database_url)
    services = build_services(
        settings, db=db, outbox=Outbox(roster_tables.outbox_event, producer="roster")
    )
    async with db.write() as session:
        await OrgCopyConsumer(services.deps.orgs).handle(
            session, [Event(f"e{i}", s, d, i) for i, (s, d) in enumerate(events, start=1)]
        )
    server = GrpcServer(host="127.0.0.1", port=0, service_names=[SERVICE_NAME])
    server.add(roster_pb2_grpc.add_RosterServiceServicer_to_server, RosterServicer(services))
    port = await server.start()
    port_q.put(port)
    # A multiprocessing Event from the parent process: polled, it cannot be awaited.
    while not stop_ev.is_set():  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    await server.stop(grace=0.5)
    services.deps.close()  # roster's worker processes (large imports)
    await db.dispose()


class RosterProcess:
    """roster's servicer on SQLite in a child process (a separate core, as deployed)."""

    def __init__(self, workdir: Path, prov: Province) -> None:
        ctx = mp.get_context("spawn")
        self._stop = ctx.Event()
        q = ctx.Queue()
        events = [(e.subject, e.data) for e in prov.events()]
        self.proc = ctx.Process(
            target=_roster_main,
            args=(str(workdir / "roster.db"), events, q, self._stop),
        )
        self.proc.start()
        self.addr = f"127.0.0.1:{q.get(timeout=120)}"

    def stop(self) -> None:
        """Stop the child and wait for it."""
        self._stop.set()
        self.proc.join(timeout=30)
        if self.proc.is_alive():
            self.proc.kill()


async def load_roster(addr: str, prov: Province, rows: list[Student]) -> None:
    """Students imported into roster (学籍 file) and recognised (认定 file), all or nothing."""
    channel = grpc.aio.insecure_channel(addr, options=CHANNEL_OPTIONS)
    stub = roster_pb2_grpc.RosterServiceStub(channel)
    md = prov.caller(prov.school.code, "operator").to_metadata()
    try:
        resp = await stub.ImportStudents(
            roster_pb2.ImportStudentsRequest(
                file=common_pb2.FileContent(file_name="xj.csv", content=roster_students_csv(rows)),
                dry_run=False, source_system="学籍系统",
            ),
            metadata=md, timeout=600,
        )  # fmt: skip
        assert resp.summary.committed, list(resp.summary.errors)[:3]
        resp = await stub.ImportRecognitions(
            roster_pb2.ImportRecognitionsRequest(
                school_org_code=prov.school.code, school_year=SCHOOL_YEAR,
                term=common_pb2.TERM_AUTUMN,
                file=common_pb2.FileContent(file_name="rd.csv", content=recognitions_csv(rows)),
                dry_run=False,
            ),
            metadata=md, timeout=600,
        )  # fmt: skip
        assert resp.summary.committed, list(resp.summary.errors)[:3]
    finally:
        await channel.close()


# --- aid in this process -------------------------------------------------------------------------


@dataclass
class AidEnv:
    """aid's services and servicer (gRPC, port 0) over one database, roster over gRPC."""

    services: Any
    stub: aid_pb2_grpc.AidServiceStub
    db: Database
    server: GrpcServer
    channels: list[Any]

    async def close(self) -> None:
        """Stop serving and release connections."""
        for ch in self.channels:
            await ch.close()
        await self.server.stop(grace=0.1)
        await self.db.dispose()


async def start_aid(url: str, roster_addr: str, prov: Province) -> AidEnv:
    """Migrate, seed the org copy and the catalogue, open the period, serve."""
    from aid_service import tables
    from aid_service.grpc_api import SERVICE_NAME, AidServicer
    from aid_service.roster import GrpcRoster
    from aid_service.settings import Settings
    from aid_service.wiring import build_services, migrate

    settings = Settings(zizhu_env="test", database_url=url)
    await asyncio.to_thread(migrate, settings)
    db = Database(url)
    roster_channel = grpc.aio.insecure_channel(roster_addr, options=CHANNEL_OPTIONS)
    services = build_services(
        settings, db=db, outbox=Outbox(tables.outbox_event, producer="aid"),
        roster=GrpcRoster(roster_channel, timeout_s=300),
    )  # fmt: skip
    async with db.write() as session:
        await services.orgs.apply_events(session, prov.events())
    await services.projects.ensure_catalogue(CallerContext.system(job="bench"))
    server = GrpcServer(host="127.0.0.1", port=0, service_names=[SERVICE_NAME])
    server.add(aid_pb2_grpc.add_AidServiceServicer_to_server, AidServicer(services))
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}", options=CHANNEL_OPTIONS)
    stub = aid_pb2_grpc.AidServiceStub(channel)
    national = prov.caller("000000", "operator")
    await stub.OpenPeriod(
        aid_pb2.OpenPeriodRequest(period=PERIOD), metadata=national.to_metadata(), timeout=30
    )
    return AidEnv(services, stub, db, server, [channel, roster_channel])


def chunked(items: list[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive slices of at most size items."""
    for i in range(0, len(items), size):
        yield items[i : i + size]

"""special-group-issue: a central 低保 list issued against the enrolled students — chunks sent
through the real gRPC API (AddIssuedRows: GB 11643 check, HMAC-SM3 blind index, SM4 for unknown
people), then CommitSpecialGroupBatch: duplicates, matching by blind index to the current
enrolment, memberships inserted, their MembershipsIssued events (one per school, in parts of at
most 2,000) in the outbox. Timed from the first chunk to COMMITTED, on PostgreSQL (the target)
and on SQLite (printed beside it).

The roster itself (5 M students at full scale) is loaded before the clock starts, straight into
the tables (its ciphertext columns hold placeholders: matching never reads them)."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import UTC, datetime
from multiprocessing import get_context

from roster_service import tables
from roster_service.domain.common import STAGE_ALIASES
from roster_service.grpc_api import SERVICE_NAME, RosterServicer
from roster_service.prepare import ID_CONTEXT, id_index_value
from roster_service.repository.sql import bulk_insert
from roster_service.settings import Settings
from sqlalchemy import select, text
from zizhu_common import devservers
from zizhu_common.crypto import FieldCipher
from zizhu_common.idnumber import id_check_char, mask_id_number
from zizhu_common.rpc import GrpcServer, open_channel
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.roster.v1 import events_pb2 as roster_events
from zizhu_contracts.roster.v1 import roster_pb2, roster_pb2_grpc

from bench.bench_roster_sync import SYSTEM, open_roster, org_paths
from bench.datagen import DataGen
from bench.registry import Context, Result, benchmark

CHUNK = 5000
# Chunks the client keeps in flight: the service checks, matches and stores them side by side
# (two left a quarter of the two cores idle between the stages of each chunk). SQLite keeps two:
# its writes queue one at a time whatever the client does, and four received in 117.9 s against
# 100.6 s at full scale (four once failed there on the busy timeout; SQLite's writers now take
# turns in the service, zizhu_common.db, and the run with four completed).
IN_FLIGHT = 4
SQLITE_IN_FLIGHT = 2
LIST_SHARE = 0.2  # of enrolled students appear on the list
UNKNOWN_SHARE = 0.03  # of list rows name nobody in the roster
_cipher: FieldCipher | None = None


def _bis(numbers: list[str]) -> list[str]:
    global _cipher
    if _cipher is None:
        _cipher = FieldCipher(Settings().personal_data_key)
    return [_cipher.blind_index(id_index_value(1, n), context=ID_CONTEXT) for n in numbers]


def _unknown_id(rng: random.Random) -> str:
    first17 = f"65{rng.randrange(10_000):04d}19{rng.randrange(80, 99)}0{rng.randrange(1, 10)}1{rng.randrange(10)}{rng.randrange(1000):03d}"
    return first17 + id_check_char(first17)


def roster_batches(ctx: Context, students: int, tree, listed: list[tuple[str, str]] | None):
    """Roster rows (students, enrolments) in batches, generated on the fly (the same every pass);
    the first pass also draws the list rows (ID number, name) into `listed`."""
    gen = DataGen(ctx.seed)
    gen.use_tree(tree)
    paths = org_paths(tree)
    rng = random.Random(ctx.seed)
    now = datetime.now(UTC)
    n = 0
    with get_context("fork").Pool(2) as pool:
        batches = gen.student_batches_for_tree(tree, students)
        keep: list = []
        ids = pool.imap(_bis, ([s.id_number for s in b] for b in _tee(batches, keep)))
        for bis in ids:
            batch = keep.pop(0)
            rows_s, rows_e = [], []
            for s, bi in zip(batch, bis, strict=True):
                n += 1
                sid, eid = f"S{n:023d}", f"E{n:023d}"
                rows_s.append(
                    {
                        "student_id": sid, "id_type": 1, "id_number_enc": "sm4g1:bench", "id_number_bi": bi,
                        "id_number_masked": mask_id_number(s.id_number), "name": s.name,
                        "gender": 1 if s.gender == "男" else 2, "birth_date": s.birth_date, "ethnicity": "",
                        "household_type": 0, "household_region_code": "", "phone_enc": None, "phone_masked": "",
                        "current_enrollment_id": eid, "source_system": "bench", "created_batch_id": "",
                        "last_batch_id": "", "created_at": now, "updated_at": now, "synced_at": now, "version": 1,
                    }
                )  # fmt: skip
                rows_e.append(
                    {
                        "enrollment_id": eid, "student_id": sid, "school_org_code": s.school_code,
                        "school_org_path": paths[s.school_code], "stage": int(STAGE_ALIASES[s.stage]),
                        "student_number": "G" + mask_id_number(s.id_number), "grade": str(s.grade),
                        "class_name": str(s.class_no), "major_name": "", "status": 1, "status_date": "",
                        "enrolled_on": "", "left_on": "", "boarder": bool(s.boarding), "is_current": True,
                        "created_at": now, "updated_at": now, "version": 1,
                    }
                )  # fmt: skip
                if listed is not None and rng.random() < LIST_SHARE:
                    listed.append((s.id_number, s.name if rng.random() > 0.002 else s.name + "某"))
            yield rows_s, rows_e
    if listed is not None:
        extra = int(len(listed) * UNKNOWN_SHARE / (1 - UNKNOWN_SHARE))
        listed += [(_unknown_id(rng), "外省学生") for _ in range(extra)]
        rng.shuffle(listed)


def _tee(batches, keep: list):
    for b in batches:
        keep.append(b)
        yield b


async def _load(services, batches) -> None:
    db = services.deps.db
    for rows_s, rows_e in batches:
        async with db.write() as session:
            await bulk_insert(session, tables.student, rows_s)
            await bulk_insert(session, tables.enrollment, rows_e)
    if db.dialect == "postgresql":
        # A roster in service is vacuumed by autovacuum as it changes; one just bulk-loaded is
        # not yet, and matching's index-only probes need the visibility map a vacuum sets. The
        # load's pages are then written out (a checkpoint) before the clock starts: the issue
        # is timed, not the writing of the 5 M students loaded for it.
        async with db.write_engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM (ANALYZE) student, enrollment"))
            await conn.execute(text("ANALYZE"))
            await conn.execute(text("CHECKPOINT"))


async def _issue(url: str, tree, batches, listed) -> tuple[float, roster_pb2.IssueBatch, int]:
    services, db = await open_roster(url, tree)
    t0 = time.perf_counter()
    await _load(services, batches)
    print(f"  {db.dialect}: roster loaded in {time.perf_counter() - t0:.0f} s", flush=True)
    server = GrpcServer(host="127.0.0.1", port=0, service_names=[SERVICE_NAME])
    server.add(roster_pb2_grpc.add_RosterServiceServicer_to_server, RosterServicer(services))
    await server.start()
    channel = open_channel(f"127.0.0.1:{server.port}")
    stub = roster_pb2_grpc.RosterServiceStub(channel)
    md = SYSTEM.to_metadata()
    try:
        # The list's chunks are serialised before the clock starts, as the issuing system's
        # would be on its own machine: built as messages here, a million of them would live in
        # the service's process (this benchmark runs both), and every full pass of its garbage
        # collector would rescan them. Each chunk's batch id and number go in front of its rows
        # once the batch exists (concatenated protobuf messages merge).
        bodies = [
            roster_pb2.AddIssuedRowsRequest(
                rows=[
                    roster_pb2.IssuedRowInput(
                        id_type=1, id_number=i, name=name, group=common_pb2.SPECIAL_GROUP_DIBAO
                    )
                    for i, name in listed[start : start + CHUNK]
                ]
            ).SerializeToString()
            for start in range(0, len(listed), CHUNK)
        ]
        add_rows = channel.unary_unary(
            f"/{roster_pb2.DESCRIPTOR.services_by_name['RosterService'].full_name}/AddIssuedRows",
            request_serializer=None,  # the bytes as they are
            response_deserializer=roster_pb2.AddIssuedRowsResponse.FromString,
        )
        started = time.perf_counter()
        batch = (
            await stub.IssueSpecialGroupBatch(
                roster_pb2.IssueSpecialGroupBatchRequest(
                    issuing_org_code="000000", title="低保学生名单（基准）", source_system="民政部",
                    groups=[common_pb2.SPECIAL_GROUP_DIBAO], mode=roster_pb2.ISSUE_MODE_FULL,
                ),
                metadata=md, timeout=60,
            )
        ).batch  # fmt: skip
        sem = asyncio.Semaphore(IN_FLIGHT if db.dialect == "postgresql" else SQLITE_IN_FLIGHT)

        async def send(number: int, body: bytes) -> None:
            head = roster_pb2.AddIssuedRowsRequest(batch_id=batch.batch_id, chunk_number=number)
            async with sem:
                await add_rows(head.SerializeToString() + body, metadata=md, timeout=300)

        await asyncio.gather(*(send(i + 1, body) for i, body in enumerate(bodies)))
        received = time.perf_counter() - started
        await stub.CommitSpecialGroupBatch(
            roster_pb2.CommitSpecialGroupBatchRequest(
                batch_id=batch.batch_id, chunk_count=len(bodies)
            ),
            metadata=md,
            timeout=60,
        )
        await services.groups.drain()
        elapsed = time.perf_counter() - started
        got = (
            await stub.GetSpecialGroupBatch(
                roster_pb2.GetSpecialGroupBatchRequest(batch_id=batch.batch_id), metadata=md
            )
        ).batch
        assert got.status == roster_pb2.ISSUE_BATCH_STATUS_COMMITTED, got.error_message
        async with db.read() as session:
            payloads = (
                await session.execute(
                    select(tables.outbox_event.c.payload).where(
                        tables.outbox_event.c.subject == "roster.membership.issued"
                    )
                )
            ).scalars()
            events = entries = 0
            for payload in payloads:
                events += 1
                entries += len(roster_events.MembershipsIssued.FromString(payload).memberships)
        assert entries == got.memberships_added == got.matched_count
        print(
            f"  {db.dialect}: rows received in {received:.1f} s, matched and stored at {elapsed:.1f} s",
            flush=True,
        )
        return elapsed, got, int(events)
    finally:
        await channel.close()
        await server.stop(grace=0.1)
        services.deps.close()
        await db.dispose()


@benchmark(
    "special-group-issue",
    "<=",
    60,
    "s",
    "a central special-group list issued and matched to enrolled students (PostgreSQL; SQLite printed)",
)
def run(ctx: Context) -> Result:
    """Load the roster, then time issuing the list on PostgreSQL and on SQLite."""
    students = ctx.rows(small=100_000, full=5_000_000)
    logging.basicConfig(level=logging.WARNING, format="  %(message)s")
    logging.getLogger("roster_service.service.batches").setLevel(logging.INFO)
    gen = DataGen(ctx.seed)
    tree = gen.org_tree(
        provinces=1, counties=max(10, students // 50_000), schools=max(50, students // 1000)
    )
    listed: list[tuple[str, str]] = []
    pg = devservers.start_postgres(data_dir=ctx.tempdir("pg"))
    pg.create_database("bench_roster")
    try:
        pg_s, pg_batch, pg_events = asyncio.run(
            _issue(
                pg.url("bench_roster"), tree, roster_batches(ctx, students, tree, listed), listed
            )
        )
    finally:
        pg.stop()
    lite_s, lite_batch, _ = asyncio.run(
        _issue(
            f"sqlite+aiosqlite:///{ctx.workdir}/issue.db",
            tree,
            roster_batches(ctx, students, tree, None),
            listed,
        )
    )
    b = pg_batch
    return Result(
        pg_s,
        [
            f"list: {b.row_count:,} rows against {students:,} enrolled students; matched {b.matched_count:,}, "
            f"not found {b.not_found_count:,}, name differs {b.ambiguous_count:,}, invalid {b.invalid_count:,}",
            f"memberships added {b.memberships_added:,}, published in {pg_events:,} MembershipsIssued "
            "events (one per school and part) in the outbox",
            f"PostgreSQL: {pg_s:.1f} s ({b.row_count / pg_s:,.0f} rows/s); "
            f"SQLite: {lite_s:.1f} s ({lite_batch.row_count / lite_s:,.0f} rows/s)",
        ],
    )

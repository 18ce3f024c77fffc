"""The org read copy follows identity's events from a real JetStream; a moved school takes its
students' scope with it."""

from __future__ import annotations

import asyncio
import uuid

import grpc
from roster_service import tables
from roster_service.events import IDENTITY_ORG_SUBJECTS, OrgCopyConsumer
from zizhu_common.consumer import DurableConsumer
from zizhu_common.messaging import connect_nats, ensure_producer_stream
from zizhu_common.outbox import stamp
from zizhu_contracts.identity.v1 import events_pb2 as identity_events
from zizhu_contracts.identity.v1 import identity_pb2
from zizhu_contracts.roster.v1 import roster_pb2 as pb

from tests.roster.conftest import BY, COUNTY_BY, COUNTY_TH, TH, md
from tests.roster.helpers import expect_error, row, sync


async def test_org_events_feed_scope_and_moves_rewrite_paths(roster, nats_server):
    nc = await connect_nats(nats_server.url, name="roster-org-test")
    js = nc.jetstream(timeout=10)
    stream = await ensure_producer_stream(
        js, producer="identity", duplicate_window_s=120, replicas=1
    )
    prefix = uuid.uuid4().hex[:8]
    # Unique per run: the session's stream keeps the events of earlier runs.
    NEW_SCHOOL = f"2144{int(prefix, 16) % 1_000_000:06d}"

    async def publish(subject: str, msg) -> None:
        event_id = stamp(msg, producer="identity")
        await js.publish(subject, msg.SerializeToString(), headers={"Nats-Msg-Id": event_id})

    org = identity_pb2.Org(
        org_code=NEW_SCHOOL, name="天河区新建小学", level=5, parent_code="440106",
        org_path=f"{TH}{NEW_SCHOOL}/", stages=[2], status=1, version=1,
    )  # fmt: skip
    await publish("identity.org.created", identity_events.OrgCreated(org_code=NEW_SCHOOL, org=org))
    consumer = DurableConsumer(
        js=js, db=roster.db, table=tables.processed_event, stream=stream,
        durable=f"roster-org-{prefix}", subjects=IDENTITY_ORG_SUBJECTS,
        handler=OrgCopyConsumer(roster.services.deps.orgs).handle, batch_size=100,
    )  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        for _ in range(200):
            async with roster.db.read() as session:
                if await roster.services.deps.orgs.get(session, NEW_SCHOOL):
                    break
            await asyncio.sleep(0.05)
        resp = await sync(roster.stub, md(COUNTY_TH), [row(1, school_org_code=NEW_SCHOOL)])
        assert resp.created_count == 1, resp.errors
        sid = resp.student_ids[0]
        await publish(
            "identity.org.moved",
            identity_events.OrgMoved(
                org_code=NEW_SCHOOL, old_parent_code="440106", new_parent_code="440111",
                old_path=f"{TH}{NEW_SCHOOL}/", new_path=f"{BY}{NEW_SCHOOL}/",
            ),
        )  # fmt: skip
        for _ in range(200):
            async with roster.db.read() as session:
                moved = await roster.services.deps.orgs.get(session, NEW_SCHOOL)
            if moved and moved.org_path.startswith(BY):
                break
            await asyncio.sleep(0.05)
        got = await roster.stub.GetStudent(
            pb.GetStudentRequest(student_id=sid), metadata=md(COUNTY_BY)
        )
        assert got.student.enrollment.school_org_path == f"{BY}{NEW_SCHOOL}/"
        await expect_error(
            roster.stub.GetStudent(pb.GetStudentRequest(student_id=sid), metadata=md(COUNTY_TH)),
            grpc.StatusCode.NOT_FOUND,
        )
        await publish(
            "identity.org.retired",
            identity_events.OrgRetired(org_code=NEW_SCHOOL, org_path=f"{BY}{NEW_SCHOOL}/"),
        )
        for _ in range(200):
            async with roster.db.read() as session:
                if (await roster.services.deps.orgs.get(session, NEW_SCHOOL)).status == "retired":
                    break
            await asyncio.sleep(0.05)
        refused = await sync(roster.stub, md(COUNTY_BY), [row(2, school_org_code=NEW_SCHOOL)])
        assert [e.code for e in refused.errors] == ["SCHOOL_RETIRED"]
    finally:
        stop.set()
        await task
        await nc.close()

"""Through real JetStream: aid's outbox relayed with Nats-Msg-Id = event id, and the org read copy
fed by identity.org.* events through a durable consumer (a moved subtree rewrites stored paths)."""

from __future__ import annotations

import asyncio
import uuid

from aid_harness import GD_OP, NATION, Env
from aid_service import tables
from aid_service.events import ORG_SUBJECTS
from sqlalchemy import select
from zizhu_common.consumer import DurableConsumer
from zizhu_common.messaging import connect_nats, ensure_producer_stream
from zizhu_common.outbox import OutboxRelay
from zizhu_common.rpc import CallerContext
from zizhu_contracts.aid.v1 import aid_pb2, events_pb2
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.identity.v1 import events_pb2 as identity_events
from zizhu_contracts.identity.v1 import identity_pb2


async def test_outbox_events_reach_jetstream_with_their_event_id(env: Env, nats_server) -> None:
    nc = await connect_nats(nats_server.url, name=f"aid-test-{uuid.uuid4().hex[:6]}")
    js = nc.jetstream(timeout=10)
    try:
        await ensure_producer_stream(js, producer="aid", duplicate_window_s=120, replicas=1)
        project = await env.project(
            GD_OP, project_code="EV", name="事件测试项目", owner_type=aid_pb2.PROJECT_OWNER_TYPE_LOCAL_GOVERNMENT,
            stage=common_pb2.STAGE_GENERAL_HIGH_SCHOOL, category=common_pb2.AID_CATEGORY_OTHER,
            tiers=[aid_pb2.AmountTier(amount_fen=100)],
        )  # fmt: skip
        relay = OutboxRelay(db=env.db, outbox=env.services.deps.outbox, js=js)
        while await relay.relay_once():
            pass
        sub = await js.pull_subscribe(
            "aid.project.created", durable=f"t{uuid.uuid4().hex[:8]}", stream="AID"
        )
        found = None
        for _ in range(50):
            msgs = await sub.fetch(500, timeout=2)
            for m in msgs:
                e = events_pb2.ProjectCreated.FromString(m.data)
                if e.project_code == project.project_code:
                    found = (m, e)
            if found:
                break
        assert found is not None
        msg, event = found
        assert msg.headers["Nats-Msg-Id"] == event.meta.event_id
        assert event.meta.producer == "aid" and event.project.name == "事件测试项目"
        assert (
            event.meta.org_path == GD_OP.org_path
            and event.meta.actor_account_id == GD_OP.account_id
        )
    finally:
        await nc.close()


def _org_event(subject: str, msg) -> tuple[str, bytes]:
    msg.meta.event_id = uuid.uuid4().hex
    return subject, msg.SerializeToString()


async def _org_row(env: Env, code: str):
    async with env.db.read() as session:
        return (
            await session.execute(select(tables.aid_org).where(tables.aid_org.c.org_code == code))
        ).first()


async def test_org_copy_follows_identity_events_and_a_moved_subtree(env: Env, nats_server) -> None:
    county, school = f"44{uuid.uuid4().int % 10**4:04d}", f"21{uuid.uuid4().int % 10**8:08d}"
    old_county = f"/000000/440000/440100/{county}/"
    new_county = f"/000000/440000/440300/{county}/"
    nc = await connect_nats(nats_server.url, name=f"identity-fake-{uuid.uuid4().hex[:6]}")
    js = nc.jetstream(timeout=10)
    await ensure_producer_stream(js, producer="identity", duplicate_window_s=120, replicas=1)
    for subject, data in [
        _org_event("identity.org.created", identity_events.OrgCreated(org_code=county, org=identity_pb2.Org(
            org_code=county, name="测试区", level=4, parent_code="440100", org_path=old_county, status=1))),
        _org_event("identity.org.created", identity_events.OrgCreated(org_code=school, org=identity_pb2.Org(
            org_code=school, name="测试小学", level=5, parent_code=county, org_path=old_county + school + "/",
            stages=[2], status=1))),
    ]:  # fmt: skip
        await js.publish(subject, data)
    consumer = DurableConsumer(
        js=js, db=env.db, table=tables.processed_event, stream="IDENTITY",
        durable=f"aid-org-copy-{uuid.uuid4().hex[:6]}", subjects=ORG_SUBJECTS,
        handler=env.services.orgs.apply_events, batch_size=100,
    )  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        for _ in range(200):
            row = await _org_row(env, school)
            if row is not None:
                break
            await asyncio.sleep(0.05)
        assert row is not None and row.org_path == old_county + school + "/" and row.level == 5
        county_op = CallerContext(account_id="county-op", org_code=county, org_path=old_county,
                                  level="county", roles=frozenset({"operator"}))  # fmt: skip
        project = await env.project(
            county_op, project_code="MV", name="迁移测试项目",
            owner_type=aid_pb2.PROJECT_OWNER_TYPE_LOCAL_GOVERNMENT, stage=common_pb2.STAGE_COMPULSORY,
            category=common_pb2.AID_CATEGORY_OTHER, tiers=[aid_pb2.AmountTier(amount_fen=100)],
        )  # fmt: skip
        assert project.owner_org_path == old_county
        subject, data = _org_event("identity.org.moved", identity_events.OrgMoved(
            org_code=county, old_parent_code="440100", new_parent_code="440300",
            old_path=old_county, new_path=new_county))  # fmt: skip
        await js.publish(subject, data)
        for _ in range(200):
            row = await _org_row(env, school)
            if row.org_path.startswith(new_county):
                break
            await asyncio.sleep(0.05)
        assert row.org_path == new_county + school + "/"
        assert (await _org_row(env, county)).parent_code == "440300"
        got = await env.call(
            "GetProject", aid_pb2.GetProjectRequest(project_code=project.project_code), NATION
        )
        assert got.project.owner_org_path == new_county
    finally:
        stop.set()
        await task
        await nc.close()

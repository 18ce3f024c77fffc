"""Request audit: the gateway publishes `gateway.audit.recorded` (ActionAudited) for logins,
failed logins, refusals, writes and full-ID reads; identity stores them in its chained log."""

from __future__ import annotations

import asyncio
import time
import uuid

from gateway_harness import Api
from gateway_world import HOME, World, new_user
from zizhu_contracts.common.v1 import common_pb2


def fetch_gateway_events(nats_url: str, since_seq: int = 0) -> list[common_pb2.ActionAudited]:
    import nats

    async def run() -> list[common_pb2.ActionAudited]:
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            sub = await js.pull_subscribe("gateway.audit.recorded", durable=None,
                                          stream="GATEWAY")  # fmt: skip
            events = []
            while True:
                try:
                    msgs = await sub.fetch(500, timeout=1)
                except Exception:
                    break
                for msg in msgs:
                    event = common_pb2.ActionAudited()
                    event.ParseFromString(msg.data)
                    assert msg.headers and msg.headers["Nats-Msg-Id"] == event.meta.event_id
                    events.append(event)
                    await msg.ack()
            return events
        finally:
            await nc.close()

    return asyncio.run(run())


def by_request(events: list[common_pb2.ActionAudited], rid: str) -> list[common_pb2.ActionAudited]:
    return [e for e in events if e.meta.correlation_id == rid]


def wait_for(
    nats_url: str, rids: list[str], absent: tuple[str, ...] = ()
) -> dict[str, common_pb2.ActionAudited]:
    """The first event of each request id; waits for all but those expected absent, then looks
    once more a second later (an event that should not exist gets the time to show up)."""
    deadline = time.monotonic() + 15
    while True:
        events = fetch_gateway_events(nats_url)
        found = {rid: by_request(events, rid) for rid in rids}
        if all(evs for rid, evs in found.items() if rid not in absent):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.3)
    if absent:
        time.sleep(1)
        events = fetch_gateway_events(nats_url)
        found = {rid: by_request(events, rid) for rid in rids}
    return {rid: evs[0] for rid, evs in found.items() if evs}


def test_writes_refusals_logins_and_full_id_reads_are_published(
    api: Api, world: World, stack
) -> None:
    county = world.admins["county"]
    viewer = new_user(api, world.admins["city"], HOME["county"], ["viewer"])
    rid = {name: uuid.uuid4().hex for name in ("write", "refusal", "failed_login", "reveal",
                                                "plain_read")}  # fmt: skip
    target = new_user(api, county, HOME["school"], ["viewer"], login=False)
    api.ok("POST", f"/accounts/{target.account_id}/lock", county, json={"reason": "测试"},
           headers={"X-Request-ID": rid["write"]})  # fmt: skip
    assert api.request("GET", "/accounts", viewer,
                       headers={"X-Request-ID": rid["refusal"]}).status_code == 403  # fmt: skip
    assert api.request("POST", "/auth/login", json={"username": viewer.username, "password": "x"},
                       headers={"X-Request-ID": rid["failed_login"]}).status_code == 401  # fmt: skip
    api.ok("GET", f"/accounts/{target.account_id}", county, params={"reveal": "true"},
           headers={"X-Request-ID": rid["reveal"]})  # fmt: skip
    api.ok("GET", f"/accounts/{target.account_id}", county,
           headers={"X-Request-ID": rid["plain_read"]})  # fmt: skip

    found = wait_for(stack.nats_url, list(rid.values()), absent=(rid["plain_read"],))
    write = found[rid["write"]]
    assert write.action == "POST /api/v1/accounts/{account_id}/lock"
    assert write.outcome == common_pb2.AUDIT_OUTCOME_SUCCEEDED and write.status_code == "200"
    assert write.meta.actor_account_id == county.account_id
    assert write.object_type == "account" and write.object_id == target.account_id
    assert write.meta.org_path == county.org_path and write.client_ip
    refusal = found[rid["refusal"]]
    assert refusal.outcome == common_pb2.AUDIT_OUTCOME_DENIED and refusal.status_code == "403"
    assert refusal.meta.actor_account_id == viewer.account_id
    failed = found[rid["failed_login"]]
    assert failed.action == "POST /api/v1/auth/login"
    assert failed.outcome == common_pb2.AUDIT_OUTCOME_DENIED and viewer.username in failed.detail
    reveal = found[rid["reveal"]]
    assert reveal.sensitive_read and reveal.object_id == target.account_id
    assert rid["plain_read"] not in found, "plain reads are not request-audited"


def test_gateway_events_reach_the_chained_audit_log(api: Api, world: World) -> None:
    county = world.admins["county"]
    rid = uuid.uuid4().hex
    target = new_user(api, county, HOME["school"], ["viewer"], login=False)
    api.ok("POST", f"/accounts/{target.account_id}/retire", county, json={"reason": "测试"},
           headers={"X-Request-ID": rid})  # fmt: skip
    auditor = world.audit_admins["county"]
    deadline = time.monotonic() + 20
    while True:
        entries = api.ok("GET", "/audit-log", auditor, params={"correlation_id": rid})["items"]
        producers = {e["producer"] for e in entries}
        if "gateway" in producers or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert "gateway" in producers, entries
    gateway_entry = next(e for e in entries if e["producer"] == "gateway")
    assert gateway_entry["action"] == "POST /api/v1/accounts/{account_id}/retire"
    assert gateway_entry["actor_account_id"] == county.account_id
    # a province audit admin sees it too (its subtree), a sibling county's would not.
    province = api.ok("GET", "/audit-log", world.audit_admins["province"],
                      params={"correlation_id": rid})["items"]  # fmt: skip
    assert {e["seq"] for e in province} >= {gateway_entry["seq"]}
    assert api.ok("GET", "/audit-log/verify", world.audit_admins["national"])["intact"]

"""E2E through the gateway over HTTP: the nation allocates to a province, the province to a city,
the city to two counties, a county to its schools; an over-allocation is refused; approvals and a
revocation move the execution rate; a county sees its own summary and not its neighbour's.

Real processes: identity (demo tree and accounts seeded), funding and the gateway, on a private
nats-server (so no other test's events reach funding) and the session redis-server. Aid is not
driven here: its project and record events are published into the AID stream exactly as aid's
outbox relay publishes them.
"""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from openpyxl import load_workbook
from zizhu_common import devservers
from zizhu_common.crypto import generate_sm2_keypair
from zizhu_contracts.aid.v1 import aid_pb2
from zizhu_contracts.aid.v1 import events_pb2 as aid_events
from zizhu_contracts.common.v1 import common_pb2

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "GJ-PG-ZXJ"
YEAR = "2024"
SCHOOL_A, SCHOOL_B = "2144010601", "3444010601"  # 天河区 schools of identity's demo tree
PATHS = {
    SCHOOL_A: "/000000/440000/440100/440106/2144010601/",
    SCHOOL_B: "/000000/440000/440100/440106/3444010601/",
}


def _load(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests/gateway" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


h = _load("gateway_harness")


@dataclass
class Flow:
    api: Any
    nats_url: str
    users: dict[str, Any]

    def publish(self, events: list[tuple[str, Message]]) -> None:
        """Publish events into the producers' streams, as aid's relay does."""
        h.publish_events(self.nats_url, events)

    def call(self, who: str, method: str, path: str, **kw: Any) -> Any:
        return self.api.request(method, path, self.users[who], **kw)

    def summary(self, who: str, **params: Any) -> dict[str, Any]:
        return self.api.ok(
            "GET", "/funding/summary", self.users[who], params={"fiscal_year": YEAR, **params}
        )


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def start_funding(nats_url: str, redis_url: str, tmp: Path) -> tuple[str, Any]:
    """Run `python -m funding_service serve` on SQLite; returns (grpc address, process)."""
    port = devservers.free_port()
    env = {
        **os.environ,
        "ZIZHU_ENV": "test",
        "LOG_LEVEL": "INFO",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/funding.db",
        "NATS_URL": nats_url,
        "REDIS_URL": redis_url,
        "GRPC_HOST": "127.0.0.1",
        "GRPC_PORT": str(port),
    }
    log = tmp / "funding.log"
    proc = h.Proc(
        "funding",
        subprocess.Popen(
            [sys.executable, "-m", "funding_service", "serve"], env=env, cwd=tmp,
            stdout=log.open("wb"), stderr=subprocess.STDOUT,
        ),
        log,
    )  # fmt: skip
    addr = f"127.0.0.1:{port}"
    with grpc.insecure_channel(addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)

        def serving() -> bool:
            assert proc.proc.poll() is None, f"funding exited early:\n{proc.tail()}"
            try:
                resp = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
            except grpc.RpcError:
                return False
            return resp.status == health_pb2.HealthCheckResponse.SERVING

        wait_until(serving, "funding to serve")
    return addr, proc


@pytest.fixture(scope="module")
def flow(redis_server, tmp_path_factory) -> Iterator[Flow]:
    tmp = tmp_path_factory.mktemp("funding-flow")
    nats = devservers.start_nats(data_dir=tmp / "nats", sync_always=False)
    procs = []
    try:
        identity_addr, identity = h.start_identity(
            nats_url=nats.url, redis_url=redis_server.url, tmp=tmp,
            env={"TOKEN_SIGNING_KEY": generate_sm2_keypair()[0]},
        )  # fmt: skip
        procs.append(identity)
        funding_addr, funding = start_funding(nats.url, redis_server.url, tmp)
        procs.append(funding)
        url, gateway = h.start_gateway(
            identity_addr=identity_addr, nats_url=nats.url, redis_url=redis_server.url, tmp=tmp,
            env={"FUNDING_ADDR": funding_addr},
        )  # fmt: skip
        procs.append(gateway)
        api = h.Api(url)
        users = {}
        for name in ("nat_operator", "gd_operator", "gz_operator", "th_operator", "th_viewer"):
            users[name] = h.bootstrap_admin(name)
            api.login(users[name])
        yield Flow(api, nats.url, users)
        api.close()
    finally:
        for proc in reversed(procs):
            proc.stop()
        nats.stop()


def allocate(flow: Flow, who: str, document: str, *lines: tuple[str, str, int]) -> Any:
    body = {
        "project_code": PROJECT,
        "fiscal_year": YEAR,
        "document_number": document,
        "document_date": "2024-03-15",
        "lines": [{"to_org_code": to, "source": src, "amount_fen": yuan * 100}
                  for to, src, yuan in lines],
    }  # fmt: skip
    return flow.call(who, "POST", "/funding/allocations", json=body)


def record(approved: bool, record_id: str, school: str, yuan: int) -> tuple[str, Message]:
    cls = aid_events.RecordApproved if approved else aid_events.RecordRevoked
    msg = cls(
        record_id=record_id, student_id=f"S-{record_id}", school_org_code=school,
        school_org_path=PATHS[school], project_code=PROJECT,
        period=common_pb2.AidPeriod(school_year="2024-2025", term=common_pb2.TERM_AUTUMN),
        amount_fen=yuan * 100,
    )  # fmt: skip
    (msg.approved_at if approved else msg.revoked_at).FromDatetime(datetime.now(UTC))  # type: ignore[union-attr]
    return ("aid.record.approved" if approved else "aid.record.revoked"), msg


def row(summary: dict[str, Any], code: str) -> dict[str, Any]:
    return next(r for r in summary["items"] if r["org"] and r["org"]["org_code"] == code)


def test_funds_flow_down_and_execution_moves_the_rate(flow: Flow) -> None:
    # Funding learns the demo tree from identity's events and the project from aid's.
    project = aid_pb2.Project(
        project_code=PROJECT, name="普通高中国家助学金", owner_org_code="000000",
        owner_org_path="/000000/", owner_level=common_pb2.ORG_LEVEL_NATIONAL,
        category=common_pb2.AID_CATEGORY_NEED_BASED, status=aid_pb2.PROJECT_STATUS_ACTIVE,
    )  # fmt: skip
    flow.publish([("aid.project.created", aid_events.ProjectCreated(project_code=PROJECT,
                                                                   project=project))])  # fmt: skip
    wait_until(
        lambda: flow.call("th_operator", "GET", "/funding/summary",
                          params={"fiscal_year": YEAR, "project_code": PROJECT}).status_code == 200,
        "funding to know the demo tree and the project",
    )  # fmt: skip

    # Down the hierarchy, each level entering its own documents.
    resp = allocate(flow, "nat_operator", "财教〔2024〕10号",
                    ("000000", "central", 1_000_000), ("440000", "central", 600_000))  # fmt: skip
    assert resp.status_code == 201, resp.text
    assert [a["kind"] for a in resp.json()["items"]] == ["contribution", "transfer"]
    resp = allocate(flow, "gd_operator", "粤财教〔2024〕20号",
                    ("440000", "province", 200_000), ("440100", "central", 500_000),
                    ("440100", "province", 150_000))  # fmt: skip
    assert resp.status_code == 201, resp.text
    resp = allocate(flow, "gz_operator", "穗财教〔2024〕30号",
                    ("440106", "central", 300_000), ("440111", "central", 150_000),
                    ("440106", "province", 100_000))  # fmt: skip
    assert resp.status_code == 201, resp.text
    resp = allocate(flow, "th_operator", "天财教〔2024〕40号",
                    (SCHOOL_A, "central", 200_000), (SCHOOL_B, "central", 100_000),
                    (SCHOOL_B, "province", 50_000))  # fmt: skip
    assert resp.status_code == 201, resp.text

    # Over-allocation: Tianhe has passed all of its central money down already.
    before = flow.api.ok("GET", "/funding/allocations", flow.users["th_operator"])["total"]
    resp = allocate(flow, "th_operator", "天财教〔2024〕41号",
                    (SCHOOL_A, "province", 10_000), (SCHOOL_A, "central", 1))  # fmt: skip
    assert resp.status_code == 409, resp.text
    err = resp.json()["error"]
    assert err["code"] == "FUNDS_INSUFFICIENT" and err["field"] == "lines"
    assert "中央资金" in err["message"]
    assert flow.api.ok("GET", "/funding/allocations", flow.users["th_operator"])["total"] == before
    # A county cannot allocate to a school that is not its own: outside its subtree the school
    # does not exist (404, without its name).
    resp = allocate(flow, "th_operator", "天财教〔2024〕42号", ("1144011101", "province", 1))
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "ORG_NOT_FOUND"
    assert resp.json()["error"]["field"] == "lines[0].to_org_code"

    province = flow.summary("gd_operator", project_code=PROJECT)
    total = province["items"][0]
    assert (total["kind"], total["received_fen"], total["own_contribution_fen"]) == (
        "total", 60_000_000, 20_000_000,
    )  # fmt: skip
    assert total["executed_fen"] == 0 and total["execution_rate_bp"] == 0

    # Approvals and a revocation, as aid publishes them.
    flow.publish([record(True, "R1", SCHOOL_A, 100_000), record(True, "R2", SCHOOL_A, 50_000),
                  record(True, "R3", SCHOOL_B, 75_000)])  # fmt: skip

    def executed(who: str, code: str, amount: int) -> bool:
        s = flow.summary(who, project_code=PROJECT, expand_direct_schools=True)
        return row(s, code)["executed_fen"] == amount

    wait_until(lambda: executed("th_operator", SCHOOL_A, 15_000_000), "approvals to count")
    county = flow.summary("th_operator", project_code=PROJECT, expand_direct_schools=True)
    school_a = row(county, SCHOOL_A)
    assert (school_a["funds_fen"], school_a["execution_rate_bp"]) == (20_000_000, 7_500)
    assert county["items"][0]["executed_fen"] == 22_500_000
    assert county["items"][0]["execution_rate_bp"] == 22_500_000 * 10_000 // 40_000_000

    flow.publish([record(False, "R2", SCHOOL_A, 50_000)])
    wait_until(lambda: executed("th_operator", SCHOOL_A, 10_000_000), "the revocation to count")
    city = flow.summary("gz_operator", project_code=PROJECT)
    assert row(city, "440106")["executed_fen"] == 17_500_000
    assert row(city, "440106")["execution_rate_bp"] == 17_500_000 * 10_000 // 40_000_000
    assert row(city, "440111")["executed_fen"] == 0

    # Overspending shows up for data verification.
    flow.publish([record(True, "R4", SCHOOL_B, 80_001)])
    wait_until(lambda: executed("th_operator", SCHOOL_B, 15_500_100), "the overspending approval")
    over = flow.api.ok("GET", "/funding/overspending", flow.users["th_viewer"],
                       params={"fiscal_year": YEAR})  # fmt: skip
    assert [(i["org"]["org_code"], i["excess_fen"]) for i in over["items"]] == [(SCHOOL_B, 500_100)]


def test_a_county_sees_its_own_summary_and_not_its_neighbours(flow: Flow) -> None:
    own = flow.summary("th_viewer")
    assert own["items"][0]["org"]["org_code"] == "440106"
    assert {r["org"]["org_code"] for r in own["items"] if r["org"]} <= {
        "440106",
        SCHOOL_A,
        SCHOOL_B,
    }
    resp = flow.call("th_viewer", "GET", "/funding/summary",
                     params={"fiscal_year": YEAR, "org_code": "440111"})  # fmt: skip
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "ORG_NOT_FOUND"
    listed = flow.api.ok("GET", "/funding/allocations", flow.users["th_viewer"],
                         params={"page_size": 100})  # fmt: skip
    assert listed["items"] and all(
        i["to_org_path"].startswith("/000000/440000/440100/440106/") for i in listed["items"]
    )
    neighbour = flow.api.ok("GET", "/funding/allocations", flow.users["gz_operator"],
                            params={"to_org_code": "440111"})["items"][0]  # fmt: skip
    resp = flow.call("th_viewer", "GET", f"/funding/allocations/{neighbour['allocation_id']}")
    assert resp.status_code == 404
    # Viewers read but never enter.
    resp = allocate(flow, "th_viewer", "天财教〔2024〕50号", ("440106", "county", 1))
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "ACTION_NOT_ALLOWED"


def test_reversal_and_export_through_the_gateway(flow: Flow) -> None:
    made = allocate(flow, "th_operator", "天财教〔2024〕60号", ("440106", "county", 5_000),
                    (SCHOOL_A, "county", 3_000))  # fmt: skip
    assert made.status_code == 201, made.text
    to_school = made.json()["items"][1]
    resp = flow.call("th_operator", "POST", f"/funding/allocations/{to_school['allocation_id']}/reverse",
                     json={"reason": "金额有误"})  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert (resp.json()["status"], resp.json()["reversal_reason"]) == ("reversed", "金额有误")
    resp = flow.call("th_operator", "POST", f"/funding/allocations/{to_school['allocation_id']}/reverse",
                     json={"reason": "再次"})  # fmt: skip
    assert resp.status_code == 409
    resp = flow.call(
        "th_viewer", "GET", "/funding/allocations/export", params={"fiscal_year": YEAR}
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(resp.content), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "下达编号" and len(rows) > 3
    resp = flow.call("th_viewer", "GET", "/funding/summary/export", params={"fiscal_year": YEAR})
    assert resp.status_code == 200 and "filename*=UTF-8''" in resp.headers["content-disposition"]

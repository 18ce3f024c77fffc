"""E2E through the gateway over HTTP: a school operator downloads a template, uploads a file with a
bad row (refused with the row named, nothing stored), fixes it and commits; the school auditor
approves; the county and the city approve; the province returns one record with a reason; the
school fixes and resubmits it and it climbs the chain again; after the entry window closes, an
edit, a delete and an import are each refused with the window named.

Real processes: the five services (identity seeded with its demo tree and accounts; roster and aid
learn the tree from identity's events) and the gateway, on a private nats-server and the session
redis-server.
"""

from __future__ import annotations

import importlib.util
import io
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from zizhu_common import devservers
from zizhu_common.crypto import generate_sm2_keypair
from zizhu_common.idnumber import id_check_char

ROOT = Path(__file__).resolve().parents[2]
HUAYANG = "2144010601"  # 广州市天河区华阳小学 (identity's demo school, 义务教育)
PROJECT = "GJ-YW-JSSBZ-XX"  # 寄宿生生活补助（小学）: 625 元/学期, needs hardship recognition
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
USERS = ("nat_operator", "hy_operator", "hy_auditor", "th_auditor", "gz_auditor", "gd_auditor")


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


def current_term() -> tuple[str, str]:
    """(school year, term) of today in Beijing: autumn from August, spring from February."""
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    if today.month >= 8:
        return f"{today.year}-{today.year + 1}", "autumn"
    if today.month == 1:
        return f"{today.year - 1}-{today.year}", "autumn"
    return f"{today.year - 1}-{today.year}", "spring"


YEAR, TERM = current_term()


def id_number(n: int) -> str:
    first17 = f"440106201503{n:02d}{n * 2 + 1:03d}"
    return first17 + id_check_char(first17)


@dataclass
class Flow:
    api: Any
    users: dict[str, Any]

    def call(self, who: str, method: str, path: str, **kw: Any) -> Any:
        return self.api.request(method, path, self.users[who], **kw)

    def ok(self, who: str, method: str, path: str, **kw: Any) -> Any:
        return self.api.ok(method, path, self.users[who], **kw)


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def flow(redis_server, tmp_path_factory) -> Iterator[Flow]:
    tmp = tmp_path_factory.mktemp("aid-flow")
    nats = devservers.start_nats(data_dir=tmp / "nats", sync_always=False)
    procs: dict[str, Any] = {}
    try:
        addrs, procs = h.start_services(
            nats_url=nats.url, redis_url=redis_server.url, tmp=tmp,
            env={"identity": {"TOKEN_SIGNING_KEY": generate_sm2_keypair()[0]}},
        )  # fmt: skip
        url, gateway = h.start_gateway(
            identity_addr=addrs["identity"], nats_url=nats.url, redis_url=redis_server.url,
            tmp=tmp, env={f"{s.upper()}_ADDR": a for s, a in addrs.items()},
        )  # fmt: skip
        procs["gateway"] = gateway
        api = h.Api(url)
        users = {}
        for name in USERS:
            users[name] = h.bootstrap_admin(name)
            api.login(users[name])
        flow = Flow(api, users)
        # aid and roster learn the demo tree from identity's events.
        wait_until(
            lambda: flow.call("th_auditor", "GET", "/aid/records",
                              params={"org_code": HUAYANG}).status_code == 200,
            "aid to know the demo schools",
        )  # fmt: skip
        wait_until(
            lambda: flow.call("hy_operator", "GET", "/roster/students").status_code == 200,
            "roster to know the demo schools",
        )
        yield flow
        api.close()
    finally:
        h.stop_all(list(procs.values()))
        nats.stop()


def students(flow: Flow, count: int) -> list[dict[str, str]]:
    """Students synced into roster at 华阳小学 and recognised as in hardship (困难)."""
    rows = [
        {"id_number": id_number(n), "name": f"学生{n:02d}", "school_org_code": HUAYANG,
         "stage": "compulsory", "student_number": "G" + id_number(n), "grade": "四年级",
         "class_name": "2班", "birth_date": f"2015-03-{n:02d}", "boarder": True}
        for n in range(1, count + 1)
    ]  # fmt: skip
    synced = flow.ok("hy_operator", "POST", "/roster/students/sync", json={"rows": rows})
    for sid in synced["student_ids"]:
        flow.ok("hy_operator", "POST", "/roster/recognitions", json={
            "student_id": sid, "school_year": YEAR, "term": TERM, "level": "difficult"})  # fmt: skip
    return rows


def filled(template: bytes, rows: list[list[Any]]) -> bytes:
    wb = load_workbook(io.BytesIO(template))
    ws = wb["资助名单"]
    for i, row in enumerate(rows, start=2):
        for j, value in enumerate(row, start=1):
            ws.cell(row=i, column=j, value=value)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def upload(flow: Flow, content: bytes, *, dry_run: bool) -> Any:
    return flow.call(
        "hy_operator", "POST", "/aid/imports",
        files={"file": ("资助名单.xlsx", content, XLSX)},
        data={"project_code": PROJECT, "school_year": YEAR, "term": TERM,
              "dry_run": "true" if dry_run else "false"},
    )  # fmt: skip


def window(flow: Flow, phase: str, starts: datetime, ends: datetime) -> dict[str, Any]:
    return flow.ok("nat_operator", "PUT", "/aid/windows", json={
        "project_code": PROJECT, "school_year": YEAR, "term": TERM, "phase": phase,
        "starts_at": starts.isoformat(), "ends_at": ends.isoformat()})  # fmt: skip


def approve(flow: Flow, who: str, ids: list[str]) -> dict[str, Any]:
    return flow.ok(who, "POST", "/aid/records:audit",
                   json={"record_ids": ids, "decision": "approve", "opinion": "同意"})  # fmt: skip


def test_aid_flow_from_template_to_approval_and_the_closed_window(flow: Flow) -> None:
    now = datetime.now(UTC)
    flow.ok("nat_operator", "POST", "/aid/periods", json={"school_year": YEAR, "term": TERM})
    for phase in ("entry", "school_audit", "authority_audit"):
        window(flow, phase, now - timedelta(days=1), now + timedelta(days=30))
    kids = students(flow, 4)

    # The operator downloads the template and uploads a file with one bad row.
    resp = flow.call("hy_operator", "GET", f"/aid/projects/{PROJECT}/template")
    assert resp.status_code == 200 and resp.content.startswith(b"PK")
    template = resp.content
    good = [[k["name"], "居民身份证", k["id_number"], "", "1", "", "", "", ""] for k in kids[:3]]
    bad = [row[:] for row in good]
    bad[1][2] = kids[1]["id_number"][:-1] + ("1" if kids[1]["id_number"][-1] != "1" else "2")
    refused = upload(flow, filled(template, bad), dry_run=False)
    assert refused.status_code == 200, refused.text
    summary = refused.json()
    assert not summary["committed"] and summary["created_count"] == 0
    assert [(e["row"], e["column"], e["code"]) for e in summary["errors"]] == [
        (3, "身份证件号码", "ID_NUMBER_CHECKSUM")
    ]
    assert "校验位" in summary["errors"][0]["message"]
    report = flow.call("hy_operator", "GET", f"/aid/imports/{summary['import_id']}/report")
    assert report.status_code == 200 and report.content.startswith(b"PK")
    listed = flow.ok("hy_operator", "GET", "/aid/records", params={"project_code": PROJECT})
    assert listed["total"] == 0  # nothing stored

    # Fixed: a dry run, then its commit.
    staged = upload(flow, filled(template, good), dry_run=True).json()
    assert staged["valid_rows"] == 3 and not staged["errors"]
    done = flow.ok("hy_operator", "POST", f"/aid/imports/{staged['import_id']}:commit",
                   json={"project_code": PROJECT, "school_year": YEAR, "term": TERM})  # fmt: skip
    assert done["committed"] and done["created_count"] == 3
    listed = flow.ok("hy_operator", "GET", "/aid/records", params={"project_code": PROJECT,
                     "school_year": YEAR, "term": TERM})  # fmt: skip
    ids = [r["record_id"] for r in listed["items"]]
    assert len(ids) == 3 and {r["amount_fen"] for r in listed["items"]} == {62500}
    assert {w["phase"] for w in listed["windows"]} == {"entry", "school_audit", "authority_audit"}

    # Submitted, then approved by the school, the county and the city.
    flow.ok("hy_operator", "POST", "/aid/records:submit", json={"record_ids": ids})
    denied = flow.call("hy_operator", "POST", "/aid/records:audit",
                       json={"record_ids": ids, "decision": "approve"})  # fmt: skip
    assert denied.status_code == 403  # an operator does not audit
    assert approve(flow, "hy_auditor", ids)["forwarded_count"] == 3
    assert approve(flow, "th_auditor", ids)["forwarded_count"] == 3
    assert approve(flow, "gz_auditor", ids)["forwarded_count"] == 3

    # The province returns one with a reason (a reason is required) and approves the others.
    no_reason = flow.call("gd_auditor", "POST", "/aid/records:audit",
                          json={"record_ids": ids[:1], "decision": "return"})  # fmt: skip
    assert no_reason.status_code == 422 and no_reason.json()["error"]["code"] == "REASON_REQUIRED"
    back = flow.ok("gd_auditor", "POST", "/aid/records:audit",
                   json={"record_ids": ids[:1], "decision": "return", "opinion": "银行卡号缺失"})  # fmt: skip
    assert back["returned_count"] == 1
    assert approve(flow, "gd_auditor", ids[1:])["approved_count"] == 2

    # The school fixes and resubmits it; it climbs the whole chain again.
    returned = flow.ok("hy_operator", "GET", f"/aid/records/{ids[0]}")["record"]
    assert returned["status"] == "returned" and returned["last_opinion"] == "银行卡号缺失"
    fixed = flow.ok("hy_operator", "PATCH", f"/aid/records/{ids[0]}",
                    json={"bank_name": "中国银行", "bank_card_number": "6217001234567890123"})  # fmt: skip
    assert fixed["record"]["bank_card_masked"] == "6217***********0123"
    flow.ok("hy_operator", "POST", "/aid/records:submit", json={"record_ids": ids[:1]})
    for who in ("hy_auditor", "th_auditor", "gz_auditor"):
        approve(flow, who, ids[:1])
    assert approve(flow, "gd_auditor", ids[:1])["approved_count"] == 1
    history = flow.ok("gd_auditor", "GET", f"/aid/records/{ids[0]}/history")["transitions"]
    actions = [(t["action"], t["level"]) for t in history]
    assert actions.count(("submitted", "school")) == 2 and ("returned", "province") in actions
    assert actions[-1] == ("approved", "province")
    assert {r["status"] for r in flow.ok("gd_auditor", "GET", "/aid/records",
            params={"project_code": PROJECT})["items"]} == {"approved"}  # fmt: skip

    # A draft made while entry is open; then the entry window closes.
    draft = flow.ok("hy_operator", "POST", "/aid/records", json={
        "project_code": PROJECT, "school_year": YEAR, "term": TERM,
        "id_number": kids[3]["id_number"], "student_name": kids[3]["name"]})["record"]  # fmt: skip
    closed = window(
        flow, "entry", now - timedelta(days=1), datetime.now(UTC) - timedelta(seconds=1)
    )
    assert not closed["open_now"]
    edit = flow.call(
        "hy_operator", "PATCH", f"/aid/records/{draft['record_id']}", json={"remark": "改"}
    )
    delete = flow.call("hy_operator", "DELETE", f"/aid/records/{draft['record_id']}")
    again = upload(flow, filled(template, good[:1]), dry_run=True)
    for resp in (edit, delete, again):
        assert resp.status_code == 409, resp.text
        error = resp.json()["error"]
        assert error["code"] == "WINDOW_CLOSED" and "名单录入" in error["message"]
        assert error["details"]["window_id"] == closed["window_id"]
    assert (
        flow.ok("hy_operator", "GET", f"/aid/records/{draft['record_id']}")["record"]["status"]
        == "draft"
    )

"""E2E through the gateway over HTTP: a 学籍 file is synced (dry run, then commit); the nation
issues a 低保 list that is matched to the roster; the school confirms one row, disputes another
and adds a self-collected 孤儿 member; the county sees its schools' verification progress and not
another county's.

Real processes: identity (demo tree and accounts seeded), roster and the gateway, on a private
nats-server (roster learns the demo tree from identity's events) and the session redis-server.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from openpyxl import load_workbook
from zizhu_common import devservers
from zizhu_common.crypto import generate_sm2_keypair
from zizhu_common.idnumber import id_check_char

ROOT = Path(__file__).resolve().parents[2]
HUAYANG, TIANHE_MS, BAIYUN_KG = "2144010601", "3444010601", "1144011101"  # identity's demo schools
YEAR = "2024-2025"


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


def id_number(n: int, birth: str = "20120901") -> str:
    first17 = f"440106{birth}{n * 2 + 1:03d}"
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


def start_roster(nats_url: str, redis_url: str, tmp: Path) -> tuple[str, Any]:
    """Run `python -m roster_service serve` on SQLite; returns (grpc address, process)."""
    port = devservers.free_port()
    env = {
        **os.environ,
        "ZIZHU_ENV": "test",
        "LOG_LEVEL": "INFO",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/roster.db",
        "NATS_URL": nats_url,
        "REDIS_URL": redis_url,
        "GRPC_HOST": "127.0.0.1",
        "GRPC_PORT": str(port),
    }
    log = tmp / "roster.log"
    proc = h.Proc(
        "roster",
        subprocess.Popen(
            [sys.executable, "-m", "roster_service", "serve"], env=env, cwd=tmp,
            stdout=log.open("wb"), stderr=subprocess.STDOUT,
        ),
        log,
    )  # fmt: skip
    addr = f"127.0.0.1:{port}"
    with grpc.insecure_channel(addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)

        def serving() -> bool:
            assert proc.proc.poll() is None, f"roster exited early:\n{proc.tail()}"
            try:
                resp = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
            except grpc.RpcError:
                return False
            return resp.status == health_pb2.HealthCheckResponse.SERVING

        wait_until(serving, "roster to serve")
    return addr, proc


@pytest.fixture(scope="module")
def flow(redis_server, tmp_path_factory) -> Iterator[Flow]:
    tmp = tmp_path_factory.mktemp("roster-flow")
    nats = devservers.start_nats(data_dir=tmp / "nats", sync_always=False)
    procs = []
    try:
        roster_addr, roster = start_roster(nats.url, redis_server.url, tmp)
        procs.append(roster)
        identity_addr, identity = h.start_identity(
            nats_url=nats.url, redis_url=redis_server.url, tmp=tmp,
            env={"TOKEN_SIGNING_KEY": generate_sm2_keypair()[0]},
        )  # fmt: skip
        procs.append(identity)
        url, gateway = h.start_gateway(
            identity_addr=identity_addr, nats_url=nats.url, redis_url=redis_server.url, tmp=tmp,
            env={"ROSTER_ADDR": roster_addr},
        )  # fmt: skip
        procs.append(gateway)
        api = h.Api(url)
        users = {}
        for name in ("nat_operator", "th_operator", "th_viewer", "hy_operator", "hy_auditor"):
            users[name] = h.bootstrap_admin(name)
            api.login(users[name])
        yield Flow(api, users)
        api.close()
    finally:
        for proc in reversed(procs):
            proc.stop()
        nats.stop()


def student_file(rows: list[tuple[int, str, str, str]]) -> bytes:
    """A 学籍 export in the template's columns: (n, name, school, stage)."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["身份证件号码", "姓名", "学校标识码", "学段", "学籍号", "年级", "班级", "联系电话"])
    for n, name, school, stage in rows:
        idn = id_number(n)
        w.writerow([idn, name, school, stage, "G" + idn, "六年级", "1班", "13800138000"])
    return ("\ufeff" + out.getvalue()).encode()


def test_sync_issue_verify_and_county_progress(flow: Flow) -> None:
    # Roster learns identity's demo tree from its events.
    wait_until(
        lambda: flow.call("th_viewer", "GET", "/roster/special-groups/progress",
                          params={"org_code": HUAYANG, "school_year": YEAR}).status_code == 200,
        "roster to know the demo tree",
    )  # fmt: skip

    # 1. A 学籍 file: a dry run reports, then the staged file is committed.
    template = flow.call("th_operator", "GET", "/roster/students/template")
    assert template.status_code == 200
    assert load_workbook(io.BytesIO(template.content)).worksheets[0]["C1"].value == "姓名"
    content = student_file(
        [(1, "李子涵", HUAYANG, "义务教育"), (2, "王欣怡", HUAYANG, "义务教育"),
         (3, "张浩然", HUAYANG, "义务教育"), (4, "陈雨桐", TIANHE_MS, "普通高中")]
    )  # fmt: skip
    bad = student_file([(5, "赵某", BAIYUN_KG, "学前教育")])
    refused = flow.ok(
        "th_operator", "POST", "/roster/students/import",
        files={"file": ("学籍.csv", bad, "text/csv")}, data={"dry_run": "true"},
    )  # fmt: skip
    assert refused["error_rows"] == 1 and refused["errors"][0]["code"] == "SCHOOL_NOT_FOUND"
    dry = flow.ok(
        "th_operator", "POST", "/roster/students/import",
        files={"file": ("学籍.csv", content, "text/csv")}, data={"dry_run": "true"},
    )  # fmt: skip
    assert (dry["total_rows"], dry["error_rows"], dry["committed"]) == (4, 0, False)
    done = flow.ok("th_operator", "POST", f"/roster/students/import/{dry['import_id']}/commit")
    assert done["committed"] and done["created_count"] == 4
    # A student of another county, synced by the nation's system feed.
    synced = flow.ok(
        "nat_operator", "POST", "/roster/students/sync",
        json={"rows": [{"id_number": id_number(9, "20200301"), "name": "周诗涵", "school_org_code": BAIYUN_KG,
                        "stage": "preschool", "student_number": "G" + id_number(9, "20200301"),
                        "grade": "中班"}]},
    )  # fmt: skip
    assert synced["created_count"] == 1, synced
    students = flow.ok("hy_operator", "GET", "/roster/students")
    assert students["total"] == 3
    assert all("*" in s["id_number_masked"] for s in students["items"])
    by_name = {s["name"]: s for s in students["items"]}

    # 2. The nation issues a 低保 list; rows are matched to current students.
    batch = flow.ok(
        "nat_operator", "POST", "/roster/special-groups/batches",
        json={"title": "2024年秋季低保学生名单", "source_system": "民政部", "groups": ["dibao"],
              "mode": "full", "as_of_date": "2024-09-15", "school_year": YEAR},
    )  # fmt: skip
    rows = [
        {"id_number": id_number(1), "name": "李子涵", "group": "dibao"},
        {"id_number": id_number(2), "name": "王欣怡", "group": "dibao"},
        {"id_number": id_number(4), "name": "陈雨桐", "group": "dibao"},
        {"id_number": id_number(9, "20200301"), "name": "周诗涵", "group": "dibao"},
        {"id_number": "11010519491231002X", "name": "外省学生", "group": "dibao"},
    ]
    flow.ok(
        "nat_operator", "POST", f"/roster/special-groups/batches/{batch['batch_id']}/rows",
        json={"chunk_number": 1, "rows": rows},
    )  # fmt: skip
    flow.ok(
        "nat_operator", "POST", f"/roster/special-groups/batches/{batch['batch_id']}/commit",
        json={"chunk_count": 1},
    )  # fmt: skip
    path = f"/roster/special-groups/batches/{batch['batch_id']}"
    wait_until(lambda: flow.ok("nat_operator", "GET", path)["status"] == "committed", "matching")
    committed = flow.ok("nat_operator", "GET", path)
    assert (committed["matched_count"], committed["not_found_count"]) == (4, 1)
    # The school cannot issue lists.
    assert flow.call("hy_operator", "POST", "/roster/special-groups/batches",
                     json={"title": "x", "groups": ["dibao"], "mode": "full"}).status_code == 403  # fmt: skip

    # 3. The school verifies its rows: confirms one, disputes another, adds a 孤儿 member.
    mine = flow.ok("hy_operator", "GET", f"{path}/rows")
    assert sorted(r["name"] for r in mine["items"]) == ["李子涵", "王欣怡"]
    ids = {r["name"]: r["membership_id"] for r in mine["items"]}
    confirmed = flow.ok(
        "hy_operator", "POST", "/roster/special-groups/memberships/verify",
        json={"membership_ids": [ids["李子涵"]], "result": "confirmed"},
    )  # fmt: skip
    assert confirmed["items"][0]["verification_status"] == "confirmed"
    no_note = flow.call(
        "hy_operator", "POST", "/roster/special-groups/memberships/verify",
        json={"membership_ids": [ids["王欣怡"]], "result": "rejected"},
    )  # fmt: skip
    assert no_note.status_code == 422 and no_note.json()["error"]["code"] == "NOTE_REQUIRED"
    flow.ok(
        "hy_operator", "POST", "/roster/special-groups/memberships/verify",
        json={"membership_ids": [ids["王欣怡"]], "result": "rejected", "note": "家庭已不在低保范围"},
    )  # fmt: skip
    orphan = flow.ok(
        "hy_operator", "POST", "/roster/special-groups/memberships",
        json={"student_id": by_name["张浩然"]["student_id"], "group": "orphan", "school_year": YEAR,
              "evidence_note": "民政部门出具的孤儿证明"},
    )  # fmt: skip
    assert (orphan["source"], orphan["verification_status"]) == ("self_collected", "confirmed")

    # 4. The county sees its schools' progress, and not another county's.
    progress = flow.ok(
        "th_viewer", "GET", "/roster/special-groups/progress", params={"school_year": YEAR}
    )["items"]
    total = progress[0]
    assert total["kind"] == "total" and total["org"]["org_code"] == "440106"
    assert (total["issued_count"], total["confirmed_count"], total["rejected_count"],
            total["pending_count"], total["self_collected_count"]) == (3, 1, 1, 1, 1)  # fmt: skip
    per_school = {r["org"]["org_code"]: r for r in progress[1:]}
    assert set(per_school) == {HUAYANG, TIANHE_MS}
    assert per_school[HUAYANG]["pending_count"] == 0 and per_school[TIANHE_MS]["pending_count"] == 1
    other = flow.call(
        "th_viewer", "GET", "/roster/special-groups/progress",
        params={"org_code": "440111", "school_year": YEAR},
    )  # fmt: skip
    assert other.status_code == 404
    nation = flow.ok(
        "nat_operator", "GET", "/roster/special-groups/progress",
        params={"org_code": "440100", "school_year": YEAR},
    )["items"]  # fmt: skip
    assert {r["org"]["org_code"]: r["issued_count"] for r in nation[1:]}["440111"] == 1
    # Nor its students.
    assert flow.ok("th_viewer", "GET", "/roster/students",
                   params={"name": "周"})["total"] == 0  # fmt: skip
    assert (
        flow.call("th_viewer", "GET", f"/roster/students/{synced['student_ids'][0]}").status_code
        == 404
    )
    # A viewer may not see full ID numbers; the school's auditor may, audited.
    sid = by_name["李子涵"]["student_id"]
    assert flow.call("th_viewer", "GET", f"/roster/students/{sid}/identity").status_code == 403
    revealed = flow.ok("hy_auditor", "GET", f"/roster/students/{sid}/identity")
    assert revealed["id_number"] == id_number(1)

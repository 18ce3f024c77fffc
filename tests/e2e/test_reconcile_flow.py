"""E2E through the gateway over HTTP: the V3.3.2 story of the unfunded special-group list.

Special-group students at two schools in two counties; some funded by approved 助困 records, one
only by a 奖优 record (still unfunded), one in two groups. The comparison runs; each school reports
reasons (an “其他” without a note is refused); the county sees its rows by school × group and fills
its own reason; the city sees both counties and the county's reasons; a late approval closes an
entry on the next run; the autumn-2023 建档立卡 reasons show in the history and carried over.

Real processes: identity (demo tree and accounts seeded), reconcile and the gateway, on a private
nats-server and the session redis-server. Roster and aid are not driven here: their student,
membership, period, project and record events are published into their streams exactly as their
outbox relays publish them.
"""

from __future__ import annotations

import importlib.util
import io
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from google.protobuf.message import Message
from openpyxl import load_workbook
from zizhu_common import devservers
from zizhu_common.crypto import FieldCipher, generate_sm2_keypair
from zizhu_common.idnumber import id_check_char, mask_id_number
from zizhu_contracts.aid.v1 import aid_pb2
from zizhu_contracts.aid.v1 import events_pb2 as aid_events
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.roster.v1 import events_pb2 as roster_events
from zizhu_contracts.roster.v1 import roster_pb2

ROOT = Path(__file__).resolve().parents[2]
HUAYANG = ("2144010601", "广州市天河区华阳小学", "/000000/440000/440100/440106/2144010601/", 2)
KINDERGARTEN = (
    "1144011101",
    "广州市白云区实验幼儿园",
    "/000000/440000/440100/440111/1144011101/",
    1,
)
AUTUMN_2024 = common_pb2.AidPeriod(school_year="2024-2025", term=common_pb2.TERM_AUTUMN)
AUTUMN_2023 = common_pb2.AidPeriod(school_year="2023-2024", term=common_pb2.TERM_AUTUMN)
# The blind index every service shares (the dev key of the test stack).
CIPHER = FieldCipher("dev-secret-key-not-for-production")


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


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@dataclass
class Kid:
    """A student as roster publishes it."""

    student_id: str
    id_number: str
    name: str
    school: tuple


@dataclass
class Flow:
    api: Any
    nats_url: str
    users: dict[str, Any]

    def publish(self, events: list[tuple[str, Message]]) -> None:
        h.publish_events(self.nats_url, events)

    def call(self, who: str, method: str, path: str, **kw: Any) -> Any:
        return self.api.request(method, path, self.users[who], **kw)

    def ok(self, who: str, method: str, path: str, **kw: Any) -> Any:
        return self.api.ok(method, path, self.users[who], **kw)

    def run(self, who: str, *periods: dict[str, str]) -> dict[str, Any]:
        """Start a comparison and wait until it finished."""
        run = self.ok(who, "POST", "/reconcile/runs", json={"periods": list(periods)})
        assert run["status"] == "running" or run["already_running"]

        def done() -> bool:
            run.update(self.ok(who, "GET", f"/reconcile/runs/{run['run_id']}"))
            return run["status"] != "running"

        wait_until(done, "the comparison to finish")
        assert run["status"] == "succeeded", run
        return run

    def unfunded(self, who: str, **params: Any) -> list[dict[str, Any]]:
        return self.ok(who, "GET", "/reconcile/unfunded", params=params)["items"]


def start_reconcile(nats_url: str, redis_url: str, tmp: Path) -> tuple[str, Any]:
    port = devservers.free_port()
    env = h.service_env("reconcile", port=port, nats_url=nats_url, redis_url=redis_url, tmp=tmp)
    proc = h._spawn("reconcile", "reconcile_service", env, tmp)
    addr = f"127.0.0.1:{port}"
    h.wait_serving({"reconcile": (addr, proc)}, timeout=60)
    return addr, proc


@pytest.fixture(scope="module")
def flow(redis_server, tmp_path_factory) -> Iterator[Flow]:
    tmp = tmp_path_factory.mktemp("reconcile-flow")
    nats = devservers.start_nats(data_dir=tmp / "nats", sync_always=False)
    procs = []
    try:
        identity_addr, identity = h.start_identity(
            nats_url=nats.url, redis_url=redis_server.url, tmp=tmp,
            env={"TOKEN_SIGNING_KEY": generate_sm2_keypair()[0]},
        )  # fmt: skip
        procs.append(identity)
        reconcile_addr, reconcile = start_reconcile(nats.url, redis_server.url, tmp)
        procs.append(reconcile)
        url, gateway = h.start_gateway(
            identity_addr=identity_addr, nats_url=nats.url, redis_url=redis_server.url, tmp=tmp,
            env={"RECONCILE_ADDR": reconcile_addr},
        )  # fmt: skip
        procs.append(gateway)
        api = h.Api(url)
        users = {}
        for name in ("nat_admin", "gd_operator", "gz_operator", "gz_admin", "th_operator",
                     "th_viewer", "hy_operator", "hy_viewer"):  # fmt: skip
            users[name] = h.bootstrap_admin(name)
            api.login(users[name])
        # The kindergarten in 白云区 has no demo accounts: the city's admin creates its operator.
        users["by_operator"] = api.create_account(
            users["gz_admin"], username="by_kg_operator", org_code=KINDERGARTEN[0],
            roles=["operator"], id_number=h.resident_id(901), phone="13900000901",
        )  # fmt: skip
        api.login(users["by_operator"])
        yield Flow(api, nats.url, users)
        api.close()
    finally:
        for proc in reversed(procs):
            proc.stop()
        nats.stop()


_serial = iter(range(1, 10_000))


def kid(school: tuple, name: str) -> tuple[Kid, list[tuple[str, Message]]]:
    n = next(_serial)
    first17 = f"440106{2018 if school[3] == 1 else 2015}0301{n:03d}"
    number = first17 + id_check_char(first17)
    k = Kid(f"S-E2E-{n}", number, name, school)
    registered = roster_events.StudentRegistered(
        student_id=k.student_id, id_number_blind_index=blind(number), name=name,
        id_number_masked=mask_id_number(number), gender=roster_pb2.GENDER_FEMALE,
        birth_date=f"{first17[6:10]}-03-01",
        enrollment=roster_pb2.Enrollment(
            school_org_code=school[0], school_name=school[1], school_org_path=school[2],
            stage=school[3], grade="二年级", class_name="1班",
            status=roster_pb2.STUDENT_STATUS_IN_SCHOOL, enrolled_on="2023-09-01",
        ),
    )  # fmt: skip
    return k, [("roster.student.registered", registered)]


def blind(number: str) -> str:
    return CIPHER.blind_index(number, context="person.id_number")


def member(k: Kid, group: int, source: int = common_pb2.MEMBERSHIP_SOURCE_ISSUED) -> tuple:
    return (
        "roster.membership.added",
        roster_events.MembershipAdded(
            membership_id=f"M-{k.student_id}-{group}", student_id=k.student_id,
            id_number_blind_index=blind(k.id_number), school_org_code=k.school[0],
            school_org_path=k.school[2], stage=k.school[3], group=group, source=source,  # type: ignore[arg-type]
        ),
    )  # fmt: skip


def approve(k: Kid, project: str, category: int, amount_fen: int, rid: str) -> tuple:
    return (
        "aid.record.approved",
        aid_events.RecordApproved(
            record_id=rid, student_id=k.student_id, id_number_blind_index=blind(k.id_number),
            school_org_code=k.school[0], school_org_path=k.school[2], project_code=project,
            project_category=category, period=AUTUMN_2024, amount_fen=amount_fen,  # type: ignore[arg-type]
            stage=k.school[3], approved_level=common_pb2.ORG_LEVEL_COUNTY,  # type: ignore[arg-type]
        ),
    )  # fmt: skip


def project(code: str, category: int) -> tuple:
    p = aid_pb2.Project(
        project_code=code, name=code, category=category, stage=common_pb2.STAGE_COMPULSORY,  # type: ignore[arg-type]
        tiers=[aid_pb2.AmountTier(tier_code="1", amount_fen=62500)],
        status=aid_pb2.PROJECT_STATUS_ACTIVE,
    )  # fmt: skip
    return ("aid.project.created", aid_events.ProjectCreated(project_code=code, project=p))


AUTUMN = {"school_year": "2024-2025", "term": "autumn"}
OLD_AUTUMN = {"school_year": "2023-2024", "term": "autumn"}


def test_the_v332_unfunded_story_end_to_end(flow: Flow) -> None:
    a, events = kid(HUAYANG, "李子涵")  # 脱贫 + 低保, unfunded
    b, more = kid(HUAYANG, "王欣怡")  # 低保, funded by 助学金
    events += more
    c, more = kid(HUAYANG, "张浩然")  # 孤儿, only a merit award: still unfunded
    events += more
    d, more = kid(HUAYANG, "刘梓轩")  # 脱贫不稳定, approved late
    events += more
    e, more = kid(KINDERGARTEN, "陈雨桐")  # 残疾, unfunded
    events += more
    f, more = kid(KINDERGARTEN, "杨宇航")  # 脱贫, funded
    events += more
    events += [member(a, 1), member(a, 5, common_pb2.MEMBERSHIP_SOURCE_SELF_COLLECTED),
               member(b, 5), member(c, 7), member(d, 2), member(e, 8), member(f, 1)]  # fmt: skip
    events += [
        ("aid.period.opened", aid_events.PeriodOpened(period=AUTUMN_2024, deadline_on="2099-01-31")),
        ("aid.period.opened", aid_events.PeriodOpened(period=AUTUMN_2023)),
        project("ZXJ", common_pb2.AID_CATEGORY_NEED_BASED),
        project("JXJ", common_pb2.AID_CATEGORY_MERIT),
        approve(b, "ZXJ", common_pb2.AID_CATEGORY_NEED_BASED, 62500, "R-B"),
        approve(c, "JXJ", common_pb2.AID_CATEGORY_MERIT, 62500, "R-C"),
        approve(f, "ZXJ", common_pb2.AID_CATEGORY_NEED_BASED, 62500, "R-F"),
    ]  # fmt: skip
    flow.publish(events)

    def ready() -> bool:
        resp = flow.call("gd_operator", "POST", "/reconcile/runs", json={"periods": [AUTUMN]})
        if resp.status_code != 202:
            return False
        run_id = resp.json()["run_id"]
        wait_until(
            lambda: (
                flow.ok("gd_operator", "GET", f"/reconcile/runs/{run_id}")["status"] != "running"
            ),
            "a warm-up run",
        )
        return flow.ok("gd_operator", "GET", f"/reconcile/runs/{run_id}")["students_checked"] == 6

    wait_until(ready, "reconcile to copy the students, groups, periods and approvals")

    # The retired 建档立卡 report: the nation loads the old reasons (autumn 2023 and older).
    legacy = {
        "rows": [
            {"period": OLD_AUTUMN, "project_code": "GJ-YW-JSSBZ", "project_name": "寄宿生生活补助",
             "id_number": a.id_number, "student_name": a.name, "school_org_code": HUAYANG[0],
             "legacy_reason": "学生或监护人自愿放弃"},
            {"period": {"school_year": "2022-2023", "term": "spring"},
             "project_code": "GJ-YW-JSSBZ", "id_number": a.id_number, "student_name": a.name,
             "school_org_code": HUAYANG[0], "reason_code": "03"},
        ]
    }  # fmt: skip
    assert flow.call("th_operator", "POST", "/reconcile/legacy-reports/import",
                     json=legacy).status_code == 403  # fmt: skip
    loaded = flow.ok("nat_admin", "POST", "/reconcile/legacy-reports/import", json=legacy)
    assert loaded["imported_count"] == 2 and loaded["errors"] == []

    # The comparison over both open periods.
    run = flow.run("gd_operator")
    assert {(p["school_year"], p["term"]) for p in run["periods"]} == {
        ("2024-2025", "autumn"),
        ("2023-2024", "autumn"),
    }
    autumn = next(c for c in run["period_counts"] if c["period"]["school_year"] == "2024-2025")
    assert (autumn["students_checked"], autumn["students_funded"], autumn["unfunded_open"]) == (
        6, 2, 4,
    )  # fmt: skip

    # The province's run covers its schools: a school inside sees it (an ancestor's run).
    assert (
        flow.ok("hy_operator", "GET", f"/reconcile/runs/{run['run_id']}")["run_id"] == run["run_id"]
    )
    assert run["run_id"] in {
        r["run_id"] for r in flow.ok("hy_operator", "GET", "/reconcile/runs")["items"]
    }

    # 华阳小学 sees its three students with their groups and reports reasons.
    school = {x["student_name"]: x for x in flow.unfunded("hy_operator", **AUTUMN)}
    assert set(school) == {"李子涵", "张浩然", "刘梓轩"}
    assert {(g["group"], g["source"]) for g in school["李子涵"]["groups"]} == {
        ("poverty_alleviated", "issued"), ("dibao", "self_collected")
    }  # fmt: skip
    assert school["张浩然"]["groups"][0]["label"] == "孤儿学生"
    refused = flow.call("hy_operator", "POST", "/reconcile/unfunded/reasons",
                        json={"entry_ids": [school["张浩然"]["entry_id"]], "reason_code": "99"})  # fmt: skip
    assert refused.status_code == 422
    err = refused.json()["error"]
    assert (err["code"], err["field"]) == ("REASON_NOTE_REQUIRED", "note") and "说明" in err[
        "message"
    ]
    assert flow.unfunded("hy_operator", student_name="张浩然", **AUTUMN)[0]["school_reason"] is None
    for name, code, note in (("李子涵", "02", ""), ("张浩然", "99", "已获校内奖学金，家庭困难仍待认定"),
                             ("刘梓轩", "09", "")):  # fmt: skip
        flow.ok("hy_operator", "POST", "/reconcile/unfunded/reasons",
                json={"entry_ids": [school[name]["entry_id"]], "reason_code": code, "note": note})  # fmt: skip
    kg = flow.unfunded("by_operator", **AUTUMN)
    assert [x["student_name"] for x in kg] == ["陈雨桐"]
    flow.ok("by_operator", "POST", "/reconcile/unfunded/reasons",
            json={"entry_ids": [kg[0]["entry_id"]], "reason_code": "08"})  # fmt: skip
    # A school cannot report for another county's student; a county cannot see it at all.
    cross = flow.call("hy_operator", "POST", "/reconcile/unfunded/reasons",
                      json={"entry_ids": [kg[0]["entry_id"]], "reason_code": "02"})  # fmt: skip
    assert cross.status_code == 404
    assert (
        flow.call("th_viewer", "GET", f"/reconcile/unfunded/{kg[0]['entry_id']}").status_code == 404
    )
    assert flow.call("th_viewer", "GET", "/reconcile/unfunded",
                     params={"org_code": "440111"}).status_code == 404  # fmt: skip

    # 天河区: rows by school × 13 groups, and its own reason.
    county = flow.ok("th_operator", "GET", "/reconcile/stats", params=AUTUMN)
    assert [(r["kind"], r["org"]["org_code"]) for r in county["rows"]] == [
        ("total", "440106"), ("direct_schools", "440106"),
        ("school", "2144010601"), ("school", "3444010601"),
    ]  # fmt: skip
    hy = county["rows"][2]
    assert (hy["all_groups"]["students"], hy["all_groups"]["funded"],
            hy["all_groups"]["unfunded"], hy["all_groups"]["reason_pending"]) == (4, 1, 3, 0)  # fmt: skip
    dibao = next(g for g in hy["groups"] if g["group"] == "dibao")
    assert (dibao["students"], dibao["funded"], dibao["unfunded"], dibao["label"]) == (
        2, 1, 1, "低保学生",
    )  # fmt: skip
    assert len(hy["groups"]) == 13
    assert {r["reason_code"]: r["count"] for r in hy["reasons"]} == {"02": 1, "99": 1, "09": 1}
    flow.ok("th_operator", "POST", "/reconcile/statements",
            json={"period": AUTUMN, "reason_code": "09", "note": "区级资金已申请，下学期纳入"})  # fmt: skip
    flow.ok("th_operator", "POST", "/reconcile/unfunded/authority-reasons",
            json={"entry_ids": [school["刘梓轩"]["entry_id"]], "reason_code": "09"})  # fmt: skip

    # 广州市: both counties, and what 天河区 reported.
    city = flow.ok("gz_operator", "GET", "/reconcile/stats", params=AUTUMN)
    rows = {(r["kind"], r["org"]["org_code"]): r for r in city["rows"]}
    assert rows[("total", "440100")]["all_groups"]["unfunded"] == 4
    tianhe, baiyun = rows[("child_region", "440106")], rows[("child_region", "440111")]
    assert (tianhe["org"]["name"], tianhe["all_groups"]["unfunded"]) == ("天河区", 3)
    assert (baiyun["org"]["name"], baiyun["all_groups"]["unfunded"]) == ("白云区", 1)
    assert [(s["reason_code"], s["note"]) for s in tianhe["statements"]] == [
        ("09", "区级资金已申请，下学期纳入")
    ]
    assert tianhe["authority_reasons"] == [
        {"reason_code": "09", "reason_label": "名额或资金不足，纳入下期", "count": 1}
    ]
    assert baiyun["statements"] == [] and baiyun["all_groups"]["reason_reported"] == 1
    drill = flow.unfunded("gz_operator", org_code="440106", student_name="刘梓轩", **AUTUMN)[0]
    assert drill["school_reason"]["reason_code"] == "09"
    assert [(r["level"], r["org_code"]) for r in drill["authority_reasons"]] == [
        ("county", "440106")
    ]
    export = flow.call("gz_operator", "GET", "/reconcile/stats/export", params=AUTUMN)
    assert export.status_code == 200
    sheet = load_workbook(io.BytesIO(export.content)).active
    assert [sheet.cell(row=r, column=3).value for r in range(4, 8)] == [
        "广州市", "广州市直属学校", "天河区", "白云区",
    ]  # fmt: skip

    # A late approval closes 刘梓轩's entry on the next run; the reasons stay with it.
    flow.publish([approve(d, "ZXJ", common_pb2.AID_CATEGORY_NEED_BASED, 62500, "R-D")])

    def closed() -> bool:
        flow.run("gd_operator", AUTUMN)
        return any(x["student_name"] == "刘梓轩"
                   for x in flow.unfunded("th_viewer", status=["funded"], **AUTUMN))  # fmt: skip

    wait_until(closed, "the late approval to close the entry")
    funded = flow.unfunded("th_viewer", status=["funded"], **AUTUMN)[0]
    assert funded["closed_at"] and funded["school_reason"]["reason_code"] == "09"
    assert {x["student_name"] for x in flow.unfunded("th_viewer", **AUTUMN)} == {"李子涵", "张浩然"}

    # History (read-only) and the carried-over autumn-2023 reason.
    history = flow.ok("hy_viewer", "GET", "/reconcile/legacy-reports")
    got = {(r["period"]["school_year"], r["period"]["term"]): r for r in history["items"]}
    assert got[("2023-2024", "autumn")]["carried_over"]
    assert got[("2023-2024", "autumn")]["reason_code"] == "02"
    assert not got[("2022-2023", "spring")]["carried_over"]
    assert flow.ok("th_viewer", "GET", "/reconcile/legacy-reports",
                   params={"org_code": "440106"})["total"] == 2  # fmt: skip
    assert flow.call("by_operator", "GET", "/reconcile/legacy-reports").json()["total"] == 0
    old = flow.unfunded("hy_viewer", **OLD_AUTUMN)
    carried = next(x for x in old if x["student_name"] == "李子涵")
    assert (
        carried["school_reason"]["carried_over"] and carried["school_reason"]["reason_code"] == "02"
    )


def test_reason_dictionary_is_read_by_all_and_edited_by_the_nation_only(flow: Flow) -> None:
    listed = flow.ok("hy_viewer", "GET", "/reconcile/reason-codes")
    assert [r["code"] for r in listed["items"]][-1] == "99" and listed["items"][-1]["requires_note"]
    body = {"reasons": [{"code": "12", "label": "已享受国家助学贷款", "sort_order": 12}]}
    assert flow.call("gd_operator", "PUT", "/reconcile/reason-codes", json=body).status_code == 403
    edited = flow.ok("nat_admin", "PUT", "/reconcile/reason-codes",
                     json={**body, "expected_version": listed["version"]})  # fmt: skip
    assert edited["version"] == listed["version"] + 1
    stale = flow.call("nat_admin", "PUT", "/reconcile/reason-codes",
                      json={**body, "expected_version": listed["version"]})  # fmt: skip
    assert (
        stale.status_code == 409 and stale.json()["error"]["code"] == "DICTIONARY_VERSION_CONFLICT"
    )
    assert "已享受国家助学贷款" in [
        r["label"] for r in flow.ok("hy_viewer", "GET", "/reconcile/reason-codes")["items"]
    ]

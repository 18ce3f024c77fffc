"""Real objects of each `x-zizhu-target` kind, for the scope test (test_scope.py).

`FACTORIES` maps a kind to a function `(api, world, org_code) -> object id` that creates a new
object of that kind inside org_code's subtree, through the gateway, as the account whose job it
is (an admin of an ancestor, the operator of the parent org, the operator of the school, …), and
returns the id that routes marked with that kind take. A route whose kind has no factory fails the
scope test: the author of the route adds one here. A kind whose objects cannot lie in some org's
subtree (comparisons cover regions, never one school) raises NoSuchObject there.

A factory may also record, as `world.objects["fields", id]`, body fields a request about the
object must carry to be well formed (an aid import's commit names the import's project and
period); the test puts them into every body aimed at that object.

`FILES` does the same for routes marked `"in": "file"`: `(api, world, org_code) -> request
arguments` of an upload whose rows name org_code, keyed by "METHOD /path".

Everything is made through the gateway, with each service's own rules: aid's period, windows and
audit chain, roster's 学籍 sync and special-group matching; funding and reconcile learn the facts
from the real events.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.policy import AUDITOR, OPERATOR, VIEWER
from gateway_harness import Api, User, orgs_csv, resident_id
from gateway_world import HOME, World, new_user, next_serial, wait_until_services_know
from openpyxl import Workbook, load_workbook

Factory = Callable[[Api, World, str], str]


class NoSuchObject(Exception):
    """Objects of this kind never lie in such an org's subtree: nothing to aim at there."""


# 寄宿生生活补助（小学）of aid's national catalogue: compulsory stage, like the world's schools.
PROJECT = "GJ-YW-JSSBZ-XX"
# The national project the OpenAPI examples name (普通高中国家助学金).
EXAMPLE_PROJECT = "GJ-PG-ZXJ"
PHASES = ("entry", "school_audit", "authority_audit")
WAIT_S = 30
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# The columns of roster's 学籍 import template (GET /roster/students/template?format=csv).
STUDENT_COLUMNS = (
    "证件类型,身份证件号码,姓名,性别,出生日期,民族,户口性质,户籍所在地行政区划代码,联系电话,"
    "学校标识码,学段,学籍号,年级,班级,专业,学籍状态,状态变动日期,入学日期,离校日期,是否寄宿"
)


def period() -> dict[str, str]:
    """The current term (资助周期) in Beijing: autumn from August (and in January), else spring."""
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    if today.month >= 8:
        return {"school_year": f"{today.year}-{today.year + 1}", "term": "autumn"}
    if today.month == 1:
        return {"school_year": f"{today.year - 1}-{today.year}", "term": "autumn"}
    return {"school_year": f"{today.year - 1}-{today.year}", "term": "spring"}


def fiscal_year() -> str:
    """The fiscal year the current term counts towards (the year its term starts in)."""
    first = int(period()["school_year"][:4])
    return str(first if period()["term"] == "autumn" else first + 1)


def school_code(parent: str) -> str:
    """A new 10-digit 学校标识码 for a school under parent (digits 3–4: its province)."""
    return f"21{parent[:2]}{next_serial():06d}"


def wait_for(check: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    """Poll check until it returns something truthy; returns that."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.2)
    return found


def national(world: World, role: str) -> User:
    return world.users["national"][role]


def member_of(api: Api, world: World, org_code: str, role: str) -> User:
    """A logged-in account with role at org_code: the world's at a home org, else one made once
    by the national admin (for objects that belong to the account's own org)."""
    if org_code in HOME.values():
        return world.user_of(org_code, role)
    if ("user", org_code, role) not in world.objects:
        world.objects["user", org_code, role] = new_user(
            api, world.admins["national"], org_code, [role], level=world.levels.get(org_code, "")
        )
    user: User = world.objects["user", org_code, role]
    return user


# --- facts the world needs before the routes are called ----------------------------------------


def prepare(api: Api, world: World) -> None:
    """Open the current period with entry and audit windows for the projects route examples and
    factories use, and give every sibling subtree figures that statistics aggregate (an approved
    aid record without funds behind it), so that a statistic leaking a sibling has something to
    show."""
    open_period(api, world)
    for sibling in world.sibling_orgs.values():
        approve(api, world, new_aid_record(api, world, sibling))
    operator = national(world, OPERATOR)
    for sibling in world.sibling_orgs.values():

        def counted(sibling: str = sibling) -> bool:
            rows = api.ok("GET", "/funding/overspending", operator,
                          params={"org_code": sibling})["items"]  # fmt: skip
            return bool(rows)

        wait_for(counted, f"funding to count the aid approved in {sibling}")


def open_period(api: Api, world: World) -> None:
    """The current period open in aid, with national windows for entry and both audits of the
    projects, known to funding (aid's catalogue reaches it by events)."""
    if "period" in world.objects:
        return
    operator = national(world, OPERATOR)
    resp = api.request("POST", "/aid/periods", operator, json=period())
    assert resp.status_code in (201, 409), f"opening {period()}: {resp.text}"
    now = datetime.now(UTC)
    for project in (PROJECT, EXAMPLE_PROJECT):
        for phase in PHASES:
            api.ok("PUT", "/aid/windows", operator, json={
                "project_code": project, **period(), "phase": phase,
                "starts_at": (now - timedelta(days=1)).isoformat(),
                "ends_at": (now + timedelta(days=30)).isoformat(),
            })  # fmt: skip

        def known(project: str = project) -> bool:
            resp = api.request("GET", "/funding/summary", operator,
                               params={"project_code": project})  # fmt: skip
            return resp.status_code == 200

        wait_for(known, f"funding to learn project {project} from aid")
    world.objects["period"] = period()


def school_in(api: Api, world: World, org_code: str) -> str:
    """org_code when it is a school, else a school made under it once."""
    if org_code in world.schools:
        return org_code
    if ("school", org_code) not in world.objects:
        world.objects["school", org_code] = new_school(api, world, org_code)
    return str(world.objects["school", org_code])


def region_of(world: World, org_code: str) -> str:
    """org_code, or the region above it when it is a school (comparisons cover regions)."""
    return world.parents[org_code] if org_code in world.schools else org_code


def approve(api: Api, world: World, record_id: str) -> None:
    """Submit a draft record and approve it at its school and up the authorities until final."""
    record = api.ok("GET", f"/aid/records/{record_id}", national(world, VIEWER))["record"]
    org = record["school_org_code"]
    api.ok("POST", "/aid/records:submit", member_of(api, world, org, OPERATOR),
           json={"record_ids": [record_id]})  # fmt: skip
    while org:
        done = api.ok("POST", "/aid/records:audit", member_of(api, world, org, AUDITOR),
                      json={"record_ids": [record_id], "decision": "approve", "opinion": "同意"})  # fmt: skip
        if done["approved_count"]:
            return
        org = world.parents.get(org, "")
    raise AssertionError(f"record {record_id} was never approved")


# --- factories ---------------------------------------------------------------------------------


def new_school(api: Api, world: World, org_code: str) -> str:
    """A school imported under org_code by the national admin; waits until services know it."""
    code = school_code(org_code)
    row = {"机构代码": code, "名称": f"测试学校{code[-4:]}", "级别": "学校", "上级代码": org_code,
           "学段": "义务教育"}  # fmt: skip
    resp = api.import_orgs(world.admins["national"], [row])
    assert resp.status_code == 200, f"importing a school under {org_code}: {resp.text}"
    world.parents[code] = org_code
    world.levels[code] = "school"
    wait_until_services_know(api, world, code)
    return code


def new_account(api: Api, world: World, org_code: str) -> str:
    """An operator account at org_code, created by the national admin (not logged in)."""
    return new_user(api, world.admins["national"], org_code, [OPERATOR], login=False).account_id


def new_allocation(api: Api, world: World, org_code: str) -> str:
    """One yuan handed to org_code by its parent org's operator (a document of the parent: its
    own social contribution, passed down), for the national project: less than any approved
    record, so the subtree overspends."""
    open_period(api, world)
    parent = world.parents[org_code]
    operator = world.user_of(parent, OPERATOR)
    year = fiscal_year()
    body = {
        "project_code": PROJECT,
        "fiscal_year": year,
        "document_number": f"范围测试〔{year}〕{next_serial()}号",
        "document_date": f"{year}-03-15",
        "lines": [
            {"to_org_code": parent, "source": "social", "amount_fen": 100},
            {"to_org_code": org_code, "source": "social", "amount_fen": 100},
        ],
    }
    items = api.ok("POST", "/funding/allocations", operator, json=body)["items"]
    return str(next(a["allocation_id"] for a in items if a["to_org_code"] == org_code))


def new_comparison_run(api: Api, world: World, org_code: str) -> str:
    """A finished comparison run (with data verification) over org_code's subtree, started by
    the national operator. A school's subtree holds none: runs cover regions."""
    if org_code in world.schools:
        raise NoSuchObject(f"comparison runs cover regions; {org_code} is a school")
    operator = national(world, OPERATOR)
    body = {"periods": [period()], "org_code": org_code, "include_verification": True}
    run = api.ok("POST", "/reconcile/runs", operator, json=body)

    def finished() -> dict[str, Any] | None:
        got: dict[str, Any] = api.ok("GET", f"/reconcile/runs/{run['run_id']}", operator)
        return got if got["status"] != "running" else None

    done = wait_for(finished, f"comparison run {run['run_id']} over {org_code}")
    assert done["status"] == "succeeded", done
    return str(run["run_id"])


def new_unfunded_entry(api: Api, world: World, org_code: str) -> str:
    """An unfunded-list entry: a new 低保 student (roster) without aid in a school of org_code's
    subtree, listed by a comparison over that subtree."""
    open_period(api, world)  # the period the comparison covers
    student_id = world.objects["membership", new_membership(api, world, org_code)]
    viewer = national(world, VIEWER)

    def listed() -> str:
        new_comparison_run(api, world, region_of(world, org_code))
        items = api.ok("GET", "/reconcile/unfunded", viewer,
                       params={"org_code": org_code, **period()})["items"]  # fmt: skip
        return next((str(e["entry_id"]) for e in items if e["student_id"] == student_id), "")

    return str(wait_for(listed, f"an unfunded entry of {student_id} in {org_code}"))


def new_finding(api: Api, world: World, org_code: str) -> str:
    """A data-verification finding about org_code itself: approved aid in its subtree above the
    funds handed to it (R12), found by a comparison over the region."""
    new_allocation(api, world, org_code)
    approve(api, world, new_aid_record(api, world, org_code))
    viewer = national(world, VIEWER)

    def found() -> str:
        new_comparison_run(api, world, region_of(world, org_code))
        items = api.ok("GET", "/reconcile/findings", viewer,
                       params={"org_code": org_code, "rule_code": "R12"})["items"]  # fmt: skip
        return next((str(f["finding_id"]) for f in items if f["org_code"] == org_code), "")

    return str(wait_for(found, f"a finding (R12) about {org_code}"))


def student_row(school: str) -> dict[str, Any]:
    """A 学籍 row of a new boarding pupil of school."""
    n = next_serial()
    number = resident_id(n, birth=f"2015{n // 1000 % 12 + 1:02d}01")
    return {"id_number": number, "name": f"学生{n}",
            "gender": "male" if int(number[16]) % 2 else "female",
            "birth_date": f"{number[6:10]}-{number[10:12]}-{number[12:14]}",
            "school_org_code": school, "stage": "compulsory", "student_number": f"G{number}",
            "grade": "二年级", "class_name": "1班", "enrolled_on": "2023-09-01",
            "boarder": True}  # fmt: skip


def new_student(api: Api, world: World, org_code: str) -> str:
    """A student enrolled at a school of org_code's subtree, synced from 学籍 by the national
    operator."""
    row = student_row(school_in(api, world, org_code))
    data = api.ok("POST", "/roster/students/sync", national(world, OPERATOR),
                  json={"rows": [row], "batch_id": f"scope-{next_serial()}"})  # fmt: skip
    assert not data["errors"] and data["student_ids"], data
    student_id = str(data["student_ids"][0])
    world.objects["student", student_id] = row
    return student_id


def recognised_student(api: Api, world: World, org_code: str) -> dict[str, Any]:
    """A new student of a school of org_code's subtree, recognised as in hardship (困难) for the
    current term by the school's operator."""
    student_id = new_student(api, world, org_code)
    row: dict[str, Any] = world.objects["student", student_id]
    api.ok("POST", "/roster/recognitions",
           member_of(api, world, row["school_org_code"], OPERATOR),
           json={"student_id": student_id, **period(), "level": "difficult"})  # fmt: skip
    return row


def new_special_group_batch(api: Api, world: World, org_code: str, mode: str = "full") -> str:
    """A batch of the 低保 list issued for org_code (a province; the nation and provinces issue
    lists) by the national operator, still receiving rows."""
    if world.levels.get(org_code) not in ("national", "province"):
        raise NoSuchObject(f"special-group lists are issued by the nation or a province, not by "
                           f"{org_code}")  # fmt: skip
    body = {"issuing_org_code": org_code, "title": f"范围测试名单{next_serial()}",
            "groups": ["dibao"], "mode": mode}  # fmt: skip
    batch = api.ok("POST", "/roster/special-groups/batches", national(world, OPERATOR), json=body)
    return str(batch["batch_id"])


def new_membership(api: Api, world: World, org_code: str) -> str:
    """A 低保 membership of a new student of org_code's subtree: the nation issues a delta list
    naming the student, and roster matches it to the student's school."""
    student_id = new_student(api, world, org_code)
    row = world.objects["student", student_id]
    operator = national(world, OPERATOR)
    batch_id = new_special_group_batch(api, world, "000000", mode="delta")  # adds, ends none
    base = f"/roster/special-groups/batches/{batch_id}"
    issued = {"id_number": row["id_number"], "name": row["name"], "group": "dibao",
              "action": "add"}  # fmt: skip
    added = api.ok("POST", f"{base}/rows", operator, json={"chunk_number": 1, "rows": [issued]})
    assert not added["errors"], added
    api.ok("POST", f"{base}/commit", operator, json={"chunk_count": 1})

    def matched() -> dict[str, Any] | None:
        batch: dict[str, Any] = api.ok("GET", base, operator)
        return batch if batch["status"] not in ("receiving", "matching") else None

    batch = wait_for(matched, f"roster to match batch {batch_id}")
    assert batch["status"] == "committed" and batch["memberships_added"] == 1, batch
    items = api.ok("GET", "/roster/special-groups/memberships", national(world, VIEWER),
                   params={"org_code": org_code, "student_id": student_id})["items"]  # fmt: skip
    assert items, f"no membership of {student_id} listed in {org_code}"
    membership_id = str(items[0]["membership_id"])
    world.objects["membership", membership_id] = student_id
    return membership_id


def new_student_import(api: Api, world: World, org_code: str) -> str:
    """A staged (dry-run) 学籍 file import of an operator of org_code, one valid row for a
    school of its subtree. Student imports belong to the importer's org (roster scopes them by
    it); no route is marked with this kind yet (the import routes are marked "self")."""
    row = student_row(school_in(api, world, org_code))
    cells = ["居民身份证", row["id_number"], row["name"], "男" if row["gender"] == "male" else "女",
             row["birth_date"], "01", "农村", "110105", "", row["school_org_code"], "义务教育",
             row["student_number"], "二年级", "1班", "", "在籍", "", "2023-09-01", "", "否"]  # fmt: skip
    csv = STUDENT_COLUMNS + "\n" + ",".join(cells) + "\n"
    imported = api.ok("POST", "/roster/students/import", member_of(api, world, org_code, OPERATOR),
                      files={"file": ("xj.csv", csv.encode(), "text/csv")},
                      data={"dry_run": "true"})  # fmt: skip
    assert imported["valid_rows"] == 1 and not imported["errors"], imported
    return str(imported["import_id"])


def new_recognition_import(api: Api, world: World, org_code: str) -> str:
    """A staged (dry-run) hardship-recognition import of the operator of a school of org_code's
    subtree, for one of its students. Recognition imports belong to the school; no route is
    marked with this kind yet (the import routes are marked "self")."""
    student_id = new_student(api, world, org_code)
    row = world.objects["student", student_id]
    book = Workbook()
    sheet = book.active
    sheet.append(["身份证件号码", "学籍号", "姓名", "认定档次", "认定依据（特殊群体类别）",
                  "其他认定依据说明", "认定日期", "调整原因"])  # fmt: skip
    sheet.append([row["id_number"], row["student_number"], row["name"], "困难", "低保学生", "",
                  f"{period()['school_year'][:4]}-10-15", ""])  # fmt: skip
    content = io.BytesIO()
    book.save(content)
    operator = member_of(api, world, row["school_org_code"], OPERATOR)
    imported = api.ok("POST", "/roster/recognitions/import", operator,
                      files={"file": ("rd.xlsx", content.getvalue(), XLSX)},
                      data={**period(), "dry_run": "true"})  # fmt: skip
    assert imported["valid_rows"] == 1 and not imported["errors"], imported
    return str(imported["import_id"])


def new_aid_project(api: Api, world: World, org_code: str) -> str:
    """A project set up by org_code's operator: a local-government project of an authority, a
    school project of a school."""
    school = org_code in world.schools
    body = {"project_code": f"SC-{next_serial()}", "name": f"范围测试项目{next_serial()}",
            "owner_type": "school" if school else "local_government", "stage": "compulsory",
            "category": "need_based", "tiers": [{"tier_code": "1", "name": "一档",
                                                 "amount_fen": 50_000}]}  # fmt: skip
    made = api.ok("POST", "/aid/projects", member_of(api, world, org_code, OPERATOR), json=body)
    return str(made["project_code"])


def new_aid_window(api: Api, world: World, org_code: str) -> str:
    """The entry window of the national project for org_code's region, set by the nation."""
    open_period(api, world)
    now = datetime.now(UTC)
    window = api.ok("PUT", "/aid/windows", national(world, OPERATOR), json={
        "project_code": PROJECT, **period(), "phase": "entry", "org_code": org_code,
        "starts_at": (now - timedelta(days=1)).isoformat(),
        "ends_at": (now + timedelta(days=29)).isoformat(),
    })  # fmt: skip
    return str(window["window_id"])


def new_aid_record(api: Api, world: World, org_code: str) -> str:
    """A draft record of the national project for a recognised pupil of a school of org_code's
    subtree, entered by the school's operator."""
    open_period(api, world)
    row = recognised_student(api, world, org_code)
    made = api.ok("POST", "/aid/records", member_of(api, world, row["school_org_code"], OPERATOR),
                  json={"project_code": PROJECT, **period(), "id_number": row["id_number"],
                        "student_name": row["name"]})  # fmt: skip
    return str(made["record"]["record_id"])


def new_aid_import(api: Api, world: World, org_code: str) -> str:
    """A staged (dry-run) record import of the operator of a school of org_code's subtree: the
    project's template with one recognised pupil."""
    open_period(api, world)
    row = recognised_student(api, world, org_code)
    operator = member_of(api, world, row["school_org_code"], OPERATOR)
    resp = api.request("GET", f"/aid/projects/{PROJECT}/template", operator)
    assert resp.status_code == 200, resp.text
    book = load_workbook(io.BytesIO(resp.content))
    sheet = book["资助名单"]
    for column, value in enumerate([row["name"], "居民身份证", row["id_number"], "", "1"], 1):
        sheet.cell(row=2, column=column, value=value)
    content = io.BytesIO()
    book.save(content)
    imported = api.ok("POST", "/aid/imports", operator,
                      files={"file": ("资助名单.xlsx", content.getvalue(), XLSX)},
                      data={"project_code": PROJECT, **period(), "dry_run": "true"})  # fmt: skip
    assert imported["valid_rows"] == 1 and not imported["errors"], imported
    # A request about the import names its project and period (the commit's body).
    world.objects["fields", imported["import_id"]] = {"project_code": PROJECT, **period()}
    return str(imported["import_id"])


FACTORIES: dict[str, Factory] = {
    "org": new_school,
    # An org that must be a school (rows of a sync or import name schools): one of the subtree.
    "school": school_in,
    "account": new_account,
    "allocation": new_allocation,
    "comparison_run": new_comparison_run,
    "unfunded_entry": new_unfunded_entry,
    "finding": new_finding,
    "student": new_student,
    "special_group_batch": new_special_group_batch,
    "membership": new_membership,
    "student_import": new_student_import,
    "recognition_import": new_recognition_import,
    "aid_project": new_aid_project,
    "aid_window": new_aid_window,
    "aid_record": new_aid_record,
    "aid_import": new_aid_import,
}


# --- uploads -----------------------------------------------------------------------------------


def org_file(api: Api, world: World, org_code: str) -> dict[str, Any]:
    """An org import whose one school hangs under org_code."""
    row = {"机构代码": school_code(org_code), "名称": "越权导入测试", "级别": "学校",
           "上级代码": org_code}  # fmt: skip
    return {
        "files": {"file": ("orgs.csv", orgs_csv([row]), "text/csv")},
        "data": {"dry_run": "false"},
    }


FILES: dict[str, Callable[[Api, World, str], dict[str, Any]]] = {
    "POST /orgs/import": org_file,
}

"""Factories of aid's `x-zizhu-target` kinds for the gateway scope test (tests/gateway/test_scope.py).

Each makes a real aid object inside org_code's subtree through the gateway, as the world user
whose job it is, and returns the id the routes take. To use them, tests/gateway/scope_targets.py
adds (at its end):

    from aid_scope_targets import AID_FACTORIES, open_period   # tests/aid on sys.path
    FACTORIES.update(AID_FACTORIES)

and calls `open_period(api, world)` from its `prepare` (aid's windows and entry need an open
period: the events scope_targets publishes into aid's stream do not open it in aid itself).
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import load_workbook

# A national project every compulsory school may enter: 非寄宿生生活补助（小学）, recognition needed.
PROJECT = "GJ-YW-FJSSBZ-XX"


def current_period() -> dict[str, str]:
    """The term containing today in Beijing (as aid defaults reads to)."""
    d = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    if d.month >= 8:
        return {"school_year": f"{d.year}-{d.year + 1}", "term": "autumn"}
    if d.month == 1:
        return {"school_year": f"{d.year - 1}-{d.year}", "term": "autumn"}
    return {"school_year": f"{d.year - 1}-{d.year}", "term": "spring"}


def _st() -> Any:
    import scope_targets  # the gateway's test module (already loaded by the scope test)

    return scope_targets


def open_period(api: Any, world: Any) -> None:
    """The current term open in aid (once), by the national operator."""
    if world.objects.get("aid_period"):
        return
    resp = api.request("POST", "/aid/periods", world.users["national"]["operator"],
                       json=current_period())  # fmt: skip
    assert resp.status_code in (201, 409), resp.text
    world.objects["aid_period"] = True


def new_aid_project(api: Any, world: Any, org_code: str) -> str:
    """A project owned by org_code, set up by its operator: national, local-government or (at a
    school) a school project."""
    st = _st()
    level = world.levels.get(org_code, "")
    owner_type = {"national": "national", "school": "school"}.get(level, "local_government")
    code = f"SCOPE-{st.next_serial()}"
    body = {"project_code": code, "name": f"范围测试项目{code[-4:]}", "owner_type": owner_type,
            "stage": "compulsory", "category": "need_based",
            "tiers": [{"tier_code": "1", "amount_fen": 10000}]}  # fmt: skip
    api.ok("POST", "/aid/projects", st.member_of(api, world, org_code, "operator"), json=body)
    return code


def _recognised_student(api: Any, world: Any, org_code: str) -> tuple[str, dict[str, str]]:
    st = _st()
    student_id = st.new_student(api, world, org_code)
    row = world.objects["student", student_id]
    operator = st.member_of(api, world, row["school_org_code"], "operator")
    api.ok("POST", "/roster/recognitions", operator, json={
        "student_id": student_id, **current_period(), "level": "difficult"})  # fmt: skip
    return student_id, row


def new_aid_record(api: Any, world: Any, org_code: str) -> str:
    """A draft record of the national project for a new, recognised student of a school in
    org_code's subtree, entered by the school's operator."""
    st = _st()
    open_period(api, world)
    _, row = _recognised_student(api, world, org_code)
    operator = st.member_of(api, world, row["school_org_code"], "operator")
    record = api.ok("POST", "/aid/records", operator, json={
        "project_code": PROJECT, **current_period(), "id_number": row["id_number"],
        "student_name": row["name"]})["record"]  # fmt: skip
    return str(record["record_id"])


def new_aid_window(api: Any, world: Any, org_code: str) -> str:
    """The national project's entry window narrowed for org_code's region, by the nation."""
    open_period(api, world)
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    window = api.ok("PUT", "/aid/windows", world.users["national"]["operator"], json={
        "project_code": PROJECT, **current_period(), "phase": "entry", "org_code": org_code,
        "starts_at": now.replace(month=1, day=1, hour=0, minute=0).isoformat(),
        "ends_at": now.replace(year=now.year + 1, month=1, day=1).isoformat()})  # fmt: skip
    return str(window["window_id"])


def new_aid_import(api: Any, world: Any, org_code: str) -> str:
    """A staged (dry-run) template import at a school of org_code's subtree, by its operator."""
    st = _st()
    open_period(api, world)
    _, row = _recognised_student(api, world, org_code)
    operator = st.member_of(api, world, row["school_org_code"], "operator")
    resp = api.request("GET", f"/aid/projects/{PROJECT}/template", operator)
    assert resp.status_code == 200, resp.text
    book = load_workbook(io.BytesIO(resp.content))
    book["资助名单"].append([row["name"], "居民身份证", row["id_number"], "", "1"])
    content = io.BytesIO()
    book.save(content)
    imported = api.ok("POST", "/aid/imports", operator,
                      files={"file": ("名单.xlsx", content.getvalue(), st.XLSX)},
                      data={"project_code": PROJECT, **current_period(), "dry_run": "true"})  # fmt: skip
    return str(imported["import_id"])


AID_FACTORIES = {
    "aid_project": new_aid_project,
    "aid_record": new_aid_record,
    "aid_window": new_aid_window,
    "aid_import": new_aid_import,
}

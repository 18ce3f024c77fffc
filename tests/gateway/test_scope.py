"""The scope rule on EVERY route of the OpenAPI document: for users at each of the five levels,
objects, lists and statistics of a sibling subtree are refused (403/404, or an empty answer).

Each route declares in `x-zizhu-target` how it names the object that decides the scope (an org
code or account id in the path, query, body or an uploaded file). From that alone this test
builds the request against the sibling subtree, so a new route is covered as soon as it exists;
a route without a usable marker fails the test. As a positive control, the national user allowed
by the policy table makes the same request on an object of that subtree and must be served.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from gateway.policy import POLICY
from gateway_harness import Api, User, orgs_csv
from gateway_world import HOME, LEVELS, World, new_user, next_serial

SKIPPED_KINDS = {"public", "self", "global"}


@pytest.fixture(scope="module")
def spec(api: Api) -> dict[str, Any]:
    return api.http.get("/api/v1/openapi.json").json()


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    ops = []
    for path, item in spec["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, op in item.items():
            ops.append((method.upper(), path.removeprefix("/api/v1"), op))
    return ops


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def sample(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A minimal valid value: the schema's example, or its required fields filled in."""
    schema = resolve(spec, schema)
    if schema.get("examples"):
        return (
            dict(schema["examples"][0])
            if isinstance(schema["examples"][0], dict)
            else (schema["examples"][0])
        )
    if "anyOf" in schema:
        return sample(spec, next(s for s in schema["anyOf"] if s.get("type") != "null"))
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object":
        return {
            name: sample(spec, schema["properties"][name]) for name in schema.get("required", [])
        }
    if kind == "array":
        return [sample(spec, schema["items"])] * max(1, schema.get("minItems", 1))
    if kind == "string":
        return "测试" if schema.get("minLength", 1) <= 2 else "测试原因说明"
    return {"integer": 0, "number": 0, "boolean": False}.get(kind)


def json_body(spec: dict[str, Any], op: dict[str, Any]) -> Any:
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return None
    return sample(spec, content["application/json"]["schema"])


def school_code() -> str:
    """A new 10-digit 学校标识码."""
    return f"2113{next_serial():06d}"


def build(
    spec: dict[str, Any], method: str, path: str, op: dict[str, Any], target: dict[str, Any],
    value: str,
) -> dict[str, Any]:  # fmt: skip
    """Request arguments aimed at `value` (an org code or account id) as the marker says."""
    where, name = target.get("in"), target.get("name")
    params: dict[str, Any] = {}
    body = json_body(spec, op)
    files = None
    data = None
    if where == "path":
        assert "{" + name + "}" in path, f"{method} {path}: marker names a missing path param"
    elif where == "query":
        params[name] = value
    elif where == "body":
        assert isinstance(body, dict), f"{method} {path}: marker names a body field, no body"
        body[name] = value
        if "username" in body:
            body["username"] = f"scope_{next_serial()}"
    elif where == "file":
        row = {"机构代码": school_code(), "名称": "越权导入测试", "级别": "学校", "上级代码": value}
        files = {"file": ("orgs.csv", orgs_csv([row]), "text/csv")}
        data = {"dry_run": "false"}
    else:
        raise AssertionError(f"{method} {path}: unknown x-zizhu-target {target}")
    url = re.sub(r"\{[^}]+\}", lambda m: value if m.group(0) == "{" + str(name) + "}" else "x",
                 path)  # fmt: skip
    return {"method": method, "path": url, "params": params or None,
            "json": body if files is None else None, "files": files, "data": data}  # fmt: skip


def refused(resp: httpx.Response, target: dict[str, Any], sibling_path_prefix: str) -> bool:
    """403/404, an import whose row is refused, or an answer holding nothing of the sibling."""
    if resp.status_code in (403, 404):
        return True
    if target.get("in") == "file" and resp.status_code == 422:
        return bool(resp.json()["error"].get("details", {}).get("errors"))
    if resp.status_code == 200:
        body = resp.json()
        items = body.get("items")
        if items is not None:
            return not any(i.get("org_path", "").startswith(sibling_path_prefix) for i in items)
    return False


def national_user_for(action: str, world: World) -> User:
    rule = POLICY[action]
    for user in (world.admins["national"], world.audit_admins["national"]):
        if set(user.roles) & rule.roles:
            return user
    raise AssertionError(f"no national test user may do {action}")


def fresh_target(api: Api, world: World, target: dict[str, Any], level: str) -> str:
    """A new object in the sibling subtree of level, for a positive control that changes it."""
    admin = world.admins["national"]
    parent = world.sibling_orgs[level]
    if target["kind"] == "account":
        return new_user(api, admin, parent, ["operator"], login=False).account_id
    if target["in"] in ("body", "query", "file"):
        return parent
    code = school_code()
    resp = api.import_orgs(admin, [{"机构代码": code, "名称": "撤销测试学校", "级别": "学校",
                                    "上级代码": parent}])  # fmt: skip
    assert resp.status_code == 200, resp.text
    return code


def sibling_value(world: World, target: dict[str, Any], level: str) -> str:
    if target["kind"] == "account":
        return world.sibling_accounts[level]
    return world.sibling_orgs[level]


def test_every_route_refuses_the_sibling_subtree_at_every_level(
    api: Api, spec: dict[str, Any], world: World
) -> None:
    checked = 0
    failures = []
    for method, path, op in operations(spec):
        target = op.get("x-zizhu-target")
        assert target, f"{method} {path} has no x-zizhu-target marker"
        if target["kind"] in SKIPPED_KINDS:
            assert "{" not in path, f"{method} {path} takes an id but is marked {target}"
            continue
        action = op["x-zizhu-action"]
        for level in LEVELS[1:]:
            sibling = sibling_value(world, target, level)
            sibling_prefix = f"/{sibling}/"
            for user in (world.admins[level], world.audit_admins[level]):
                args = build(spec, method, path, op, target, sibling)
                resp = api.request(args.pop("method"), args.pop("path"), user, **args)
                checked += 1
                if not refused(resp, target, sibling_prefix):
                    failures.append(f"{level} {user.roles} {method} {path}: "
                                    f"{resp.status_code} {resp.text[:300]}")  # fmt: skip
        # Positive control: the request is well formed and the object exists.
        national = national_user_for(action, world)
        value = sibling_value(world, target, "county")
        if method != "GET":
            value = fresh_target(api, world, target, "county")
        args = build(spec, method, path, op, target, value)
        resp = api.request(args.pop("method"), args.pop("path"), national, **args)
        if not (resp.status_code < 400 or resp.status_code == 409):
            failures.append(f"national control {method} {path}: {resp.status_code} {resp.text}")
    assert not failures, "\n".join(failures)
    assert checked > 50


def test_lists_at_each_level_hold_only_the_callers_subtree(api: Api, world: World) -> None:
    for level in LEVELS:
        admin = world.admins[level]
        orgs = api.ok("GET", f"/orgs/{HOME[level]}/subtree", admin,
                      params={"max_depth": 0, "include_root": True, "page_size": 1000})  # fmt: skip
        assert orgs["items"], level
        assert all(o["org_path"].startswith(admin.org_path) for o in orgs["items"]), level
        assert {o["org_code"] for o in orgs["items"]} >= {HOME[level]}
        if level == "school":
            continue  # account management is for authorities (policy table)
        accounts = api.ok("GET", "/accounts", admin, params={"page_size": 1000})
        assert accounts["items"], level
        assert all(a["org_path"].startswith(admin.org_path) for a in accounts["items"]), level
        audit = world.audit_admins[level]
        log = api.ok("GET", "/audit-log", audit, params={"page_size": 200})
        assert all(e["org_path"].startswith(audit.org_path) for e in log["items"] if e["org_path"])

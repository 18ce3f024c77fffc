"""The scope rule on EVERY route of the OpenAPI document: for users at each of the five levels,
objects, lists and statistics of a sibling subtree are refused (403/404, or an answer holding
nothing of that subtree).

Each route declares in `x-zizhu-target` how it names the object that decides the scope (an org
code, account id, allocation id, … in the path, query, body or an uploaded file). From that
alone this test builds the request against a real object of the sibling subtree, made by the
factory of that kind in scope_targets.py, so a new route is covered as soon as it exists; a route
without a usable marker, or whose kind has no factory, fails the test.

At each level the request is made by every world user whose role and level the policy table
allows the route's action (if none is, one user must get 403: the table refuses). As a positive
control, a user above the sibling subtree allowed by the table (the national one first) makes the
same request on an object of that subtree and must be served (2xx with no refused row, or 409:
the object exists but its state forbids the change). Before any route runs, every kind's objects
exist in every sibling subtree, and each sibling has approved aid, so that a list or statistic
leaking a sibling has something to show.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from gateway_harness import Api, User
from gateway_world import HOME, LEVELS, ORGS, World, next_serial, operations
from openpyxl import load_workbook
from scope_targets import FACTORIES, FILES, NoSuchObject, fiscal_year, period, prepare

SKIPPED_KINDS = {"public", "self", "global"}
NAMES = {row["机构代码"]: row["名称"] for row in ORGS}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
def spec(api: Api) -> dict[str, Any]:
    return api.http.get("/api/v1/openapi.json").json()


@pytest.fixture(scope="module")
def prepared(api: Api, world: World) -> World:
    prepare(api, world)
    return world


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def sample(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A minimal valid value: the schema's example, or its required fields filled in."""
    schema = resolve(spec, schema)
    if schema.get("examples"):
        example = schema["examples"][0]
        return json.loads(json.dumps(example))  # a copy: the test changes it
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
    if kind in ("integer", "number"):
        return int(max(0, schema.get("minimum", 0)))
    return {"boolean": False}.get(kind)


def current(value: Any) -> Any:
    """A sampled value with its periods made the world's current one (examples name past terms
    and years; the world opens only the current period)."""
    now = {"school_year": period()["school_year"], "term": period()["term"],
           "fiscal_year": fiscal_year()}  # fmt: skip
    if isinstance(value, dict):
        return {k: now[k] if k in now and isinstance(v, str) else current(v)
                for k, v in value.items()}  # fmt: skip
    if isinstance(value, list):
        return [current(v) for v in value]
    return value


def query_params(spec: dict[str, Any], op: dict[str, Any]) -> dict[str, Any]:
    """The required query parameters of an operation, sampled."""
    return {
        p["name"]: current({p["name"]: sample(spec, p.get("schema", {}))})[p["name"]]
        for p in op.get("parameters", [])
        if p.get("in") == "query" and p.get("required")
    }


def body_schema(op: dict[str, Any]) -> dict[str, Any] | None:
    content = op.get("requestBody", {}).get("content", {})
    return content["application/json"]["schema"] if "application/json" in content else None


def put(spec: dict[str, Any], schema: dict[str, Any], body: Any, name: str, value: str) -> None:
    """Set the body field a marker names: `field`, or `field[].inner` in every item of a list. A
    list of ids becomes [value]; in a list of objects, value goes to the items' one *org_code
    field (a marker naming the list alone does not say which field)."""
    head, _, rest = name.partition(".")
    key = head.removesuffix("[]")
    props = resolve(spec, schema).get("properties", {})
    assert key in props, f"marker names body field {key!r}, not in {sorted(props)}"
    prop = resolve(spec, props[key])
    if rest:
        for item in body[key]:
            put(spec, prop["items"], item, rest, value)
    elif prop.get("type") == "array" and resolve(spec, prop["items"]).get("type") == "object":
        fields = [f for f in resolve(spec, prop["items"])["properties"] if f.endswith("org_code")]
        assert len(fields) == 1, f"marker names list {key!r}; name its field: {key}[].<field>"
        for item in body[key]:
            item[fields[0]] = value
    elif prop.get("type") == "array":
        body[key] = [value]
    else:
        body[key] = value


def build(
    api: Api, world: World, spec: dict[str, Any], method: str, path: str, op: dict[str, Any],
    target: dict[str, Any], value: str,
) -> dict[str, Any]:  # fmt: skip
    """Request arguments aimed at `value` (an object id of the target's kind) as the marker says."""
    where, name = target.get("in"), target.get("name")
    params = query_params(spec, op)
    schema = body_schema(op)
    body = current(sample(spec, schema)) if schema else None
    upload: dict[str, Any] = {}
    if isinstance(body, dict):  # what a request about the object needs (an import's project)
        props = resolve(spec, schema or {}).get("properties", {})
        fields = world.objects.get(("fields", value), {})
        body.update({k: v for k, v in fields.items() if k in props})
        if "username" in body:
            body["username"] = f"scope_{next_serial()}"
    if where == "path":
        assert "{" + name + "}" in path, f"{method} {path}: marker names a missing path param"
    elif where == "query":
        params[name] = value
    elif where == "body":
        assert schema and isinstance(body, dict), f"{method} {path}: marker names a body field"
        put(spec, schema, body, name, value)
    elif where == "file":
        upload = FILES[f"{method} {path}"](api, world, value)
    else:
        raise AssertionError(f"{method} {path}: unknown x-zizhu-target {target}")
    url = re.sub(r"\{[^}]+\}", lambda m: value if m.group(0) == "{" + str(name) + "}" else "x",
                 path)  # fmt: skip
    return {"method": method, "path": url, "params": params or None,
            "json": None if upload else body, **upload}  # fmt: skip


def send(api: Api, user: User, args: dict[str, Any]) -> httpx.Response:
    args = dict(args)
    return api.request(args.pop("method"), args.pop("path"), user, **args)


class Sibling:
    """What of one level's sibling subtree must never show: its org codes (the subtree root and
    every org the world knows below it), its path segment, its org names, and the object."""

    def __init__(self, world: World, level: str, value: str) -> None:
        root = world.sibling_orgs[level]
        self.segment = f"/{root}/"
        self.codes = {code for code in world.parents if root in chain(world, code)} | {root}
        self.names = {NAMES[c] for c in self.codes if c in NAMES}
        self.value = value

    def found_in(self, text: str) -> bool:
        return (
            text in self.codes
            or text == self.value
            or self.segment in text
            or any(name in text for name in self.names)
        )


def chain(world: World, code: str) -> Iterator[str]:
    """code and its ancestors."""
    while code:
        yield code
        code = world.parents.get(code, "")


def strings(resp: httpx.Response) -> Iterator[str]:
    """Every string (and number, as text) of a JSON answer, every cell of a workbook, or the
    text of anything else."""
    if resp.headers.get("content-type", "").startswith(XLSX):
        book = load_workbook(io.BytesIO(resp.content), read_only=True)
        for sheet in book.worksheets:
            for row in sheet.iter_rows(values_only=True):
                yield from (str(v) for v in row if v is not None)
        return
    try:
        body = resp.json()
    except ValueError:
        yield resp.text
        return
    stack = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif item is not None:
            yield str(item)


def refused(resp: httpx.Response, method: str, target: dict[str, Any], sibling: Sibling) -> bool:
    """403/404, another 4xx saying the object does not exist (`…NOT_FOUND`, as for an org named
    in a line of a body), an upload or rows whose every row is refused as not found (nothing
    written), or a read answering nothing of the sibling. Any other write answered 2xx was not
    refused."""
    if resp.status_code in (403, 404):
        return True
    if 400 <= resp.status_code < 500:
        try:
            error = resp.json().get("error", {})
        except ValueError:
            return False
        if str(error.get("code", "")).endswith("NOT_FOUND"):
            return True
        if target.get("in") == "file" and resp.status_code == 422:
            rows = error.get("details", {}).get("errors") or []
            return bool(rows) and all(str(r.get("code", "")).endswith("NOT_FOUND") for r in rows)
    if resp.status_code >= 300:
        return False
    if method != "GET":
        return rows_refused(resp)
    return not any(sibling.found_in(s) for s in strings(resp))


def rows_refused(resp: httpx.Response) -> bool:
    """A 2xx answer to rows of a body (a sync, an import) that wrote nothing and refused every
    row as not found (the same answer as for an org that does not exist)."""
    try:
        body = resp.json()
    except ValueError:
        return False
    if not isinstance(body, dict) or not body.get("errors"):
        return False
    written = any(
        isinstance(v, int) and v > 0
        for k, v in body.items()
        if k.endswith("_count") and not k.startswith(("error", "total", "unchanged"))
    )
    codes = [str(e.get("code", "")) for e in body["errors"] if isinstance(e, dict)]
    return not written and bool(codes) and all(c.endswith("NOT_FOUND") for c in codes)


def served(resp: httpx.Response) -> bool:
    """A control's answer: 2xx with no refused rows, or 409 (the object exists, its state
    forbids the change) unless the 409 says the object was not found."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if resp.status_code < 300:
        return not (isinstance(body, dict) and body.get("errors"))
    if resp.status_code == 409 and isinstance(body, dict):
        return not str(body.get("error", {}).get("code", "")).endswith("NOT_FOUND")
    return resp.status_code < 400


class Objects:
    """The sibling object of each kind and level, made once; a factory's failure is kept."""

    def __init__(self, api: Api, world: World) -> None:
        self.api, self.world = api, world
        self.made: dict[tuple[str, str], str | Exception] = {}

    def get(self, kind: str, level: str) -> str:
        org = self.world.sibling_orgs[level]
        if kind == "org":
            return org  # the sibling subtree's root: the org holding every object below it
        if (kind, level) not in self.made:
            self.made[kind, level] = make(self.api, self.world, kind, org)
        found = self.made[kind, level]
        if isinstance(found, Exception):
            raise found
        return found

    def fresh(self, kind: str, target: dict[str, Any], org: str) -> str:
        """A new object in org's subtree for a control that changes it (an org named in a body or
        file is the parent of what the request makes, so org itself)."""
        if kind == "org" and target.get("in") != "path":
            return org
        made = make(self.api, self.world, kind, org)
        if isinstance(made, Exception):
            raise made
        return made


def make(api: Api, world: World, kind: str, org: str) -> str | Exception:
    try:
        return FACTORIES[kind](api, world, org)
    except NoSuchObject as exc:
        return exc
    except AssertionError as exc:
        return AssertionError(f"the scope_targets factory of kind {kind!r} failed in {org}: {exc}")


def test_every_route_refuses_the_sibling_subtree_at_every_level(
    api: Api, spec: dict[str, Any], prepared: World
) -> None:
    world = prepared
    objects = Objects(api, world)
    # Every kind's objects exist in every sibling subtree before any list or statistic is asked.
    for kind in sorted({op.get("x-zizhu-target", {}).get("kind") for _, _, op in operations(spec)}):
        for level in LEVELS[1:] if kind in FACTORIES else ():
            with contextlib.suppress(AssertionError, NoSuchObject):  # reported by the routes
                objects.get(kind, level)
    routes, checked = 0, 0
    failures: list[str] = []
    for method, path, op in operations(spec):
        target = op.get("x-zizhu-target")
        assert target, f"{method} {path} has no x-zizhu-target marker"
        if target["kind"] in SKIPPED_KINDS:
            if "{" in path:
                failures.append(
                    f"{method} {path} takes an id in its path but is marked {target}: mark it "
                    f"with the kind of object the id names (kinds with a factory: "
                    f"{', '.join(sorted(FACTORIES))}), or add that kind's factory to FACTORIES "
                    f"in tests/gateway/scope_targets.py"
                )
            continue
        if target["kind"] not in FACTORIES:
            failures.append(
                f"{method} {path}: no factory makes objects of x-zizhu-target kind "
                f"{target['kind']!r}; the route's author adds one to FACTORIES in "
                f"tests/gateway/scope_targets.py"
            )
            continue
        if target.get("in") == "file" and f"{method} {path}" not in FILES:
            failures.append(
                f"{method} {path}: no upload builder for this file route; the route's author "
                f"adds one to FILES in tests/gateway/scope_targets.py"
            )
            continue
        route = Route(api, world, spec, objects, method, path, op)
        failures.extend(route.check_levels())
        if not route.broken:
            failures.extend(route.control())
        routes += 1
        checked += route.checked
    assert not failures, f"{len(failures)} problems:\n" + "\n".join(failures)
    assert routes >= 25 and checked > 200, (routes, checked)


class Route:
    """One route of the OpenAPI document aimed at the sibling subtree of every level."""

    def __init__(
        self, api: Api, world: World, spec: dict[str, Any], objects: Objects, method: str,
        path: str, op: dict[str, Any],
    ) -> None:  # fmt: skip
        self.api, self.world, self.spec, self.objects = api, world, spec, objects
        self.method, self.path, self.op = method, path, op
        self.target: dict[str, Any] = op["x-zizhu-target"]
        self.action: str = op["x-zizhu-action"]
        self.checked = 0
        self.broken = False
        self.empty_answers = 0  # refusals that were a 2xx answer showing nothing of the sibling

    def send(self, user: User, value: str) -> httpx.Response:
        args = build(self.api, self.world, self.spec, self.method, self.path, self.op,
                     self.target, value)  # fmt: skip
        return send(self.api, user, args)

    def check_levels(self) -> list[str]:
        """Every allowed user of each level is refused the sibling's object (or, when the
        policy allows nobody there, one user gets 403)."""
        failures = []
        for level in LEVELS[1:]:
            try:
                value = self.objects.get(self.target["kind"], level)
            except NoSuchObject:
                continue
            except AssertionError as exc:
                self.broken = True
                return [f"{self.method} {self.path}: {exc}"]
            sibling = Sibling(self.world, level, value)
            allowed = self.world.allowed(self.action, level)
            for user in allowed or self.world.at(level)[:1]:
                resp = self.send(user, value)
                self.checked += 1
                if not allowed:
                    ok = resp.status_code == 403
                else:
                    ok = refused(resp, self.method, self.target, sibling)
                    self.empty_answers += ok and self.method == "GET" and resp.status_code < 300
                if not ok:
                    failures.append(f"{level} {'/'.join(user.roles)} {self.method} {self.path} "
                                    f"aimed at {value}: {resp.status_code} "
                                    f"{resp.text[:300]}")  # fmt: skip
        return failures

    def control(self) -> list[str]:
        """The request is well formed and the object exists: a user above the sibling subtree
        allowed by the policy table (the national one first) is served, on an object of the
        sibling county, else of the city or the province (an org named in a body may have to be a
        region or a province). When refusals were answers showing nothing of the sibling, the
        served answer must show it (else the test could not tell a leak from an empty answer).

        An action only levels below those siblings may do (a school's) has no such user: then an
        allowed user of the world acts on an object of its own org."""
        where = f"control {self.method} {self.path}"
        attempts = []
        for org, level, users in self.control_candidates():
            try:
                if self.method == "GET" and level:
                    value = self.objects.get(self.target["kind"], level)
                else:
                    value = self.objects.fresh(self.target["kind"], self.target, org)
            except (AssertionError, NoSuchObject) as exc:
                attempts.append(f"{org}: {exc}")
                continue
            for user in users:
                resp = self.send(user, value)
                if served(resp):
                    sibling = Sibling(self.world, level, value) if level else None
                    if self.empty_answers and sibling and refused(resp, "GET", self.target,
                                                                  sibling):  # fmt: skip
                        return [f"{where}: sibling-aimed requests were answered 2xx without "
                                f"the sibling's data, and the served answer does not show "
                                f"{org}'s data either, so a leak would go unseen; answer 404 "
                                f"(or name the orgs in the answer)"]  # fmt: skip
                    return []
                attempts.append(f"{user.level} {'/'.join(user.roles)} on {value}: "
                                f"{resp.status_code} {resp.text[:200]}")  # fmt: skip
        return [f"{where}: no user allowed by the policy was served: " + " | ".join(attempts)]

    def control_candidates(self) -> Iterator[tuple[str, str, list[User]]]:
        """(org, its sibling level or "" for a home org, users to try) for the control: the
        sibling county, city and province with the users above them; then, when no such user
        may do the action, or for a write only the owner may make (an ancestor may read a
        project but not edit it), the world's own orgs with their allowed users."""
        tried = False
        for level in ("county", "city", "province"):
            org = self.world.sibling_orgs[level]
            try:
                self.objects.get(self.target["kind"], level)
            except NoSuchObject:
                continue
            if users := list(self.world.ancestors_allowed(self.action, org)):
                tried = True
                yield org, level, users
        if tried and self.method == "GET":
            return
        for level in reversed(LEVELS):
            if users := self.world.allowed(self.action, level):
                yield HOME[level], "", users


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

"""The test world shared by gateway tests: orgs in two branches at every level, one logged-in
account per role of the policy table at each level's home org, and helpers to read the OpenAPI
document and to wait until every service has caught up with identity's organisations."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from gateway.policy import ADMIN, AUDIT_ADMIN, POLICY
from gateway_harness import NATIONAL_CODE, Api, User, resident_id

LEVELS = ("national", "province", "city", "county", "school")
# Every role the policy table names, admins first: they create the next level's accounts.
ROLES = (ADMIN, *sorted(set().union(*(rule.roles for rule in POLICY.values())) - {ADMIN}))

# Branch A holds the users; branch B at each level is the sibling subtree they must not see.
ORGS = [
    {"机构代码": "130000", "名称": "甲省", "级别": "省", "上级代码": NATIONAL_CODE},
    {"机构代码": "140000", "名称": "乙省", "级别": "省", "上级代码": NATIONAL_CODE},
    {"机构代码": "130100", "名称": "甲省一市", "级别": "市", "上级代码": "130000"},
    {"机构代码": "130200", "名称": "甲省二市", "级别": "市", "上级代码": "130000"},
    {"机构代码": "140100", "名称": "乙省一市", "级别": "市", "上级代码": "140000"},
    {"机构代码": "130102", "名称": "一市甲县", "级别": "县", "上级代码": "130100"},
    {"机构代码": "130104", "名称": "一市乙县", "级别": "县", "上级代码": "130100"},
    {"机构代码": "1113010201", "名称": "甲县第一小学", "级别": "学校", "上级代码": "130102",
     "学段": "义务教育"},
    {"机构代码": "1113010202", "名称": "甲县第二小学", "级别": "学校", "上级代码": "130102",
     "学段": "义务教育"},
]  # fmt: skip
HOME = {"national": NATIONAL_CODE, "province": "130000", "city": "130100", "county": "130102",
        "school": "1113010201"}  # fmt: skip
SIBLING = {"province": "140000", "city": "130200", "county": "130104", "school": "1113010202"}
PARENT = {row["机构代码"]: row["上级代码"] for row in ORGS}
LEVEL_OF = {
    NATIONAL_CODE: "national",
    **{row["机构代码"]: {"省": "province", "市": "city", "县": "county", "学校": "school"}[row["级别"]]
       for row in ORGS},
}  # fmt: skip

_serial = itertools.count(100)


def next_serial() -> int:
    """A fresh number for usernames and ID numbers."""
    return next(_serial)


@dataclass
class World:
    """Who is who: one user per role at each level's home org; the sibling org of each level.

    `parents` and `levels` know every org made for the world (and those factories add), so a
    factory can find the org that hands something to a sibling, or a school to put students in;
    `objects` caches what factories made."""

    users: dict[str, dict[str, User]]
    sibling_orgs: dict[str, str]
    nats_url: str = ""
    parents: dict[str, str] = field(default_factory=lambda: dict(PARENT))
    levels: dict[str, str] = field(default_factory=lambda: dict(LEVEL_OF))
    objects: dict[Any, Any] = field(default_factory=dict)

    @property
    def schools(self) -> set[str]:
        """The schools the world knows."""
        return {code for code, level in self.levels.items() if level == "school"}

    @property
    def admins(self) -> dict[str, User]:
        """The admin of each level."""
        return {level: roles[ADMIN] for level, roles in self.users.items()}

    @property
    def audit_admins(self) -> dict[str, User]:
        """The audit admin of each level."""
        return {level: roles[AUDIT_ADMIN] for level, roles in self.users.items()}

    def at(self, level: str) -> list[User]:
        """Every world user of a level, in ROLES order."""
        return [self.users[level][role] for role in ROLES]

    def user_of(self, org_code: str, role: str) -> User:
        """The world user with role at org_code (a home org)."""
        for level, code in HOME.items():
            if code == org_code:
                return self.users[level][role]
        raise AssertionError(f"the world has no users at {org_code}; only at {HOME}")

    def allowed(self, action: str, level: str) -> list[User]:
        """The users of level whose role and level the policy table allows the action."""
        rule = POLICY[action]
        if level not in rule.levels:
            return []
        return [u for u in self.at(level) if rule.roles & set(u.roles)]

    def ancestors_allowed(self, action: str, org_code: str) -> Iterator[User]:
        """Users at the home orgs above org_code allowed the action, the national ones first."""
        chain = []
        code = self.parents.get(org_code, "")
        while code:
            chain.append(code)
            code = self.parents.get(code, "")
        if NATIONAL_CODE not in chain:
            chain.append(NATIONAL_CODE)
        for level in LEVELS:
            if HOME[level] in chain:
                yield from self.allowed(action, level)


def new_user(
    api: Api, creator: User, org_code: str, roles: list[str], *, level: str = "",
    login: bool = True,
) -> User:  # fmt: skip
    """Create an account (as creator) and, by default, log it in fully."""
    n = next_serial()
    user = api.create_account(
        creator, username=f"{roles[0]}_{level or 'x'}_{n}", org_code=org_code, roles=roles,
        id_number=resident_id(n), phone=f"139{n:08d}",
    )  # fmt: skip
    if login:
        api.login(user)
    return user


def build_world(api: Api, national_admin: User, *, nats_url: str) -> World:
    """Import the orgs, create and log in one user per role at each home org, and wait until
    every service knows the orgs."""
    resp = api.import_orgs(national_admin, ORGS)
    assert resp.status_code == 200, resp.text
    users: dict[str, dict[str, User]] = {}
    for i, level in enumerate(LEVELS):
        creator = national_admin if i <= 1 else users[LEVELS[i - 1]][ADMIN]
        users[level] = {
            role: national_admin
            if (level, role) == ("national", ADMIN)
            else new_user(api, creator, HOME[level], [role], level=level)
            for role in ROLES
        }
    world = World(users, dict(SIBLING), nats_url)
    wait_until_services_know(api, world, ORGS[-1]["机构代码"])
    return world


# --- the OpenAPI document --------------------------------------------------------------------


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path below /api/v1, operation) of every API route."""
    ops = []
    for path, item in spec["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, op in item.items():
            ops.append((method.upper(), path.removeprefix("/api/v1"), op))
    return ops


def wait_until_services_know(api: Api, world: World, org_code: str, timeout: float = 60) -> None:
    """Wait until each area of the API (first path segment: funding, orgs, …) serves a read
    aimed at org_code: the services behind them copy the org tree from identity's events.

    Polls, per area, every GET route whose scope target is an org in the query or the path, as
    the national users the policy allows, until one of them answers < 400."""
    spec = api.http.get("/api/v1/openapi.json").json()
    areas: dict[str, list[tuple[str, dict[str, Any], User]]] = {}
    for method, path, op in operations(spec):
        target = op.get("x-zizhu-target") or {}
        if (
            method != "GET"
            or target.get("kind") != "org"
            or target.get("in") not in ("query", "path")
        ):
            continue
        users = world.allowed(op["x-zizhu-action"], "national")
        if users:
            areas.setdefault(path.split("/")[1], []).append((path, target, users[0]))
    deadline = time.monotonic() + timeout
    last: dict[str, str] = {}
    while areas:
        for area, routes in list(areas.items()):
            for path, target, user in routes:
                url = path.replace("{" + target["name"] + "}", org_code)
                params = {target["name"]: org_code} if target["in"] == "query" else None
                resp = api.request("GET", url, user, params=params)
                last[area] = f"GET {path} → {resp.status_code} {resp.text[:200]}"
                if resp.status_code < 400:
                    del areas[area]
                    break
        if areas:
            assert time.monotonic() < deadline, (
                f"services did not learn org {org_code} from identity in {timeout} s: "
                + "; ".join(last.get(a, a) for a in areas)
            )
            time.sleep(0.2)

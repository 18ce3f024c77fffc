"""The test world shared by gateway tests: orgs in two branches at every level, and helpers."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from gateway_harness import NATIONAL_CODE, Api, User, resident_id

LEVELS = ("national", "province", "city", "county", "school")

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

_serial = itertools.count(100)


def next_serial() -> int:
    """A fresh number for usernames and ID numbers."""
    return next(_serial)


@dataclass
class World:
    """Who is who: admins and audit admins per level, sibling orgs and accounts per level."""

    admins: dict[str, User]
    audit_admins: dict[str, User]
    sibling_orgs: dict[str, str]
    sibling_accounts: dict[str, str]


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

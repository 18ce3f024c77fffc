"""Demo data: the national root, 广东省 → 广州市 → 天河区/白云区, schools, a 部属高校, and one
account per role per level with known passwords (TOTP secrets fixed for those that need one)."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from zizhu_common.crypto import sm3
from zizhu_common.rpc import CallerContext

from identity_service.domain.accounts import AccountKind, IdType, Role
from identity_service.domain.credentials import mfa_required
from identity_service.domain.orgs import Level, OrgRow, Ownership, Stage
from identity_service.domain.tokens import new_id
from identity_service.repository import utc
from identity_service.service import AccountCreate, IdentityServices

DEMO_PASSWORD = "Zizhu@2024"

DEMO_ORGS: list[OrgRow] = [
    OrgRow(1, "440000", "广东省"),
    OrgRow(2, "440100", "广州市"),
    OrgRow(3, "440106", "天河区"),
    OrgRow(4, "440111", "白云区"),
    OrgRow(
        5, "2144010601", "广州市天河区华阳小学", parent_code="440106", stages=(Stage.COMPULSORY,)
    ),
    OrgRow(
        6,
        "3444010601",
        "广州市天河中学",
        parent_code="440106",
        stages=(Stage.COMPULSORY, Stage.GENERAL_HIGH_SCHOOL),
    ),
    OrgRow(
        7, "1144011101", "广州市白云区实验幼儿园", parent_code="440111", stages=(Stage.PRESCHOOL,)
    ),
    OrgRow(
        8,
        "3644010001",
        "广州市轻工职业学校",
        parent_code="440100",
        stages=(Stage.SECONDARY_VOCATIONAL,),
    ),
    OrgRow(9, "4144010558", "中山大学", parent_code="000000", ownership=Ownership.PUBLIC),
]
# One demo account set per level: (org code, login prefix).
DEMO_LEVELS = [
    ("000000", "nat"),
    ("440000", "gd"),
    ("440100", "gz"),
    ("440106", "th"),
    ("2144010601", "hy"),
]
ROLE_NAMES = {
    Role.ADMIN: "管理员",
    Role.OPERATOR: "操作员",
    Role.AUDITOR: "审核员",
    Role.VIEWER: "监督员",
    Role.AUDIT_ADMIN: "审计员",
}
LEVEL_NAMES_CN = {"nat": "甲", "gd": "乙", "gz": "丙", "th": "丁", "hy": "戊"}
DEMO_ROLES = [Role.ADMIN, Role.OPERATOR, Role.AUDITOR, Role.VIEWER, Role.AUDIT_ADMIN]


@dataclass(frozen=True)
class DemoLogin:
    """One demo account's credentials."""

    username: str
    password: str
    org_code: str
    role: str
    totp_secret: str


def demo_totp_secret(username: str) -> str:
    """A fixed base32 TOTP secret per demo account (so that the printed secret stays valid)."""
    return base64.b32encode(sm3(f"zizhu-demo-totp:{username}".encode())[:20]).decode()


def _demo_id_number(n: int) -> str:
    from zizhu_common.idnumber import id_check_char

    first17 = f"44010619800101{n:03d}"
    return first17 + id_check_char(first17)


async def seed_demo(services: IdentityServices) -> list[DemoLogin]:
    """Create the demo tree and accounts (idempotent: existing ones are left as they are)."""
    root = await services.orgs.ensure_root()
    system = CallerContext(
        account_id="system:demo",
        org_code="",
        org_path="/",
        level="national",
        roles=frozenset({"admin", "system"}),
    )
    result = await services.orgs.import_orgs(system, DEMO_ORGS)
    if result.errors:
        raise RuntimeError(f"demo orgs refused: {result.errors}")
    logins: list[DemoLogin] = []
    n = 0
    for org_code, prefix in DEMO_LEVELS:
        for role in DEMO_ROLES:
            n += 1
            username = f"{prefix}_{role.value.replace('_', '')}"
            async with services.deps.db.read() as session:
                existing = await services.deps.accounts.get_by_username(session, username)
                org = await services.deps.orgs.get(session, org_code)
            assert org is not None
            needs_totp = mfa_required(
                org.level, [role.value], services.deps.settings.mfa_required_roles
            )
            secret = demo_totp_secret(username) if needs_totp else ""
            if existing is None:
                caller = CallerContext(
                    account_id="system:demo",
                    org_code=root.code,
                    org_path="/" if org.level == Level.NATIONAL else root.org_path,
                    level="national",
                    roles=frozenset({"admin"}),
                )
                account, _ = await services.accounts.create(
                    caller,
                    AccountCreate(
                        username=username,
                        real_name=f"{ROLE_NAMES[role]}{LEVEL_NAMES_CN[prefix]}",
                        id_type=IdType.RESIDENT_ID,
                        id_number=_demo_id_number(n),
                        phone=f"138{n:08d}",
                        org_code=org_code,
                        roles=(role.value,),
                        kind=AccountKind.PERSON,
                    ),
                    initial_password=DEMO_PASSWORD,
                )
                async with services.deps.db.write() as session:
                    account = await services.deps.accounts.get(session, account.account_id)
                    assert account is not None
                    account.password_change_required = False
                    account.totp_secret = secret
                    await services.deps.accounts.save(session, account, utc(services.deps.now()))  # type: ignore[arg-type]
            logins.append(DemoLogin(username, DEMO_PASSWORD, org_code, role.value, secret))
    return logins


__all__ = ["DEMO_PASSWORD", "DemoLogin", "demo_totp_secret", "new_id", "seed_demo"]

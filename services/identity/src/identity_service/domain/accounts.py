"""Real-name accounts (实名账号), roles and who may manage whom (统一用户管理)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from zizhu_common.errors import InvalidArgument, NotFound, PermissionDenied
from zizhu_common.idnumber import IdentifierError, normalize_mobile_phone, normalize_resident_id

from identity_service.domain.orgs import Level, is_inside, is_strictly_inside


class Role(StrEnum):
    """Account roles. AUDIT_ADMIN reads the audit log and holds no other administrative power."""

    OPERATOR = "operator"  # 业务操作人员
    AUDITOR = "auditor"  # 业务审核人员
    ADMIN = "admin"  # 系统管理员
    VIEWER = "viewer"  # 只读 (监督检查)
    AUDIT_ADMIN = "audit_admin"  # 安全审计员 (reads the audit log)


class AccountStatus(StrEnum):
    """正常 / 锁定 / 注销."""

    ACTIVE = "active"
    LOCKED = "locked"
    RETIRED = "retired"


class AccountKind(StrEnum):
    """实名用户 / 系统对接账号."""

    PERSON = "person"
    SERVICE = "service"


class IdType(StrEnum):
    """证件类型; GB 11643 checks apply to RESIDENT_ID only."""

    RESIDENT_ID = "resident_id"
    HK_MACAO_RESIDENCE_PERMIT = "hk_macao_residence_permit"
    TAIWAN_RESIDENCE_PERMIT = "taiwan_residence_permit"
    FOREIGNER_PERMANENT_RESIDENCE = "foreigner_permanent_residence"
    PASSPORT = "passport"
    OTHER = "other"


@dataclass
class Account:
    """An account with its personal data in clear (the repository encrypts it at rest)."""

    account_id: str
    username: str
    real_name: str
    id_type: IdType
    id_number: str
    phone: str
    org_code: str
    org_path: str
    org_level: Level
    roles: tuple[Role, ...]
    kind: AccountKind = AccountKind.PERSON
    status: AccountStatus = AccountStatus.ACTIVE
    org_name: str = ""
    lock_reason: str = ""
    locked_until: datetime | None = None
    failed_logins: int = 0
    password_hash: str = ""
    password_changed_at: datetime | None = None
    password_expires_at: datetime | None = None
    password_change_required: bool = True
    totp_secret: str = ""
    totp_pending_secret: str = ""
    totp_last_step: int = 0
    last_login_at: datetime | None = None
    sessions_revoked_before: datetime | None = None
    created_by: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    retired_at: datetime | None = None
    version: int = 1
    password_history: list[str] = field(default_factory=list)

    @property
    def totp_enabled(self) -> bool:
        """True when a confirmed TOTP secret is set."""
        return bool(self.totp_secret)

    def role_names(self) -> list[str]:
        """Roles as plain strings, sorted."""
        return sorted(r.value for r in self.roles)


class Caller(Protocol):
    """Who is calling (zizhu_common.rpc.CallerContext satisfies it)."""

    account_id: str
    org_code: str
    org_path: str
    level: str
    roles: frozenset[str]


_USERNAME = re.compile(r"^[a-z][a-z0-9_.\-]{2,63}$")
_OTHER_ID = re.compile(r"^[A-Za-z0-9()（）\-]{5,30}$")


def normalize_username(username: str) -> str:
    """Lower-case login name of 3-64 characters: a letter, then letters, digits, `_ . -`."""
    value = (username or "").strip().lower()
    if not _USERNAME.match(value):
        raise InvalidArgument(
            "登录名应为3-64位，以字母开头，只含字母、数字、下划线、点或横线",
            code="USERNAME_INVALID",
            field="username",
        )
    return value


def normalize_real_name(name: str) -> str:
    """A person's real name (1-50 characters, no digits)."""
    value = (name or "").strip()
    if not value or len(value) > 50 or any(ch.isdigit() for ch in value):
        raise InvalidArgument(
            "姓名应为1-50个字且不含数字", code="REAL_NAME_INVALID", field="real_name"
        )
    return value


def normalize_id(id_type: IdType, number: str) -> str:
    """A validated identity document number (GB 11643 for resident IDs)."""
    if id_type == IdType.RESIDENT_ID:
        try:
            return normalize_resident_id(number)
        except IdentifierError as exc:
            raise InvalidArgument(exc.message, code=exc.code, field="id_number") from None
    value = (number or "").strip().upper()
    if not _OTHER_ID.match(value):
        raise InvalidArgument(
            "证件号码应为5-30位字母或数字", code="ID_NUMBER_FORMAT", field="id_number"
        )
    return value


def normalize_phone(phone: str) -> str:
    """A validated mainland mobile number."""
    try:
        return normalize_mobile_phone(phone)
    except IdentifierError as exc:
        raise InvalidArgument(exc.message, code=exc.code, field="phone") from None


def normalize_roles(roles: Iterable[str]) -> tuple[Role, ...]:
    """Validated roles: at least one, known, and never admin together with audit_admin
    (三员分立: whoever manages accounts does not also read their audit trail)."""
    result: list[Role] = []
    for name in roles:
        try:
            role = Role(name)
        except ValueError:
            raise InvalidArgument(f"未知角色 {name}", code="ROLE_UNKNOWN", field="roles") from None
        if role not in result:
            result.append(role)
    if not result:
        raise InvalidArgument("至少需要一个角色", code="ROLE_REQUIRED", field="roles")
    if Role.ADMIN in result and Role.AUDIT_ADMIN in result:
        raise InvalidArgument(
            "系统管理员与审计管理员必须由不同账号担任", code="ROLE_CONFLICT", field="roles"
        )
    return tuple(sorted(result, key=lambda r: list(Role).index(r)))


def ensure_can_read_account(caller: Caller, account: Account) -> None:
    """Own account always; others inside the subtree for admins, audit admins and viewers."""
    if caller.account_id == account.account_id:
        return
    if not is_inside(account.org_path, caller.org_path):
        raise NotFound("账号不存在", code="ACCOUNT_NOT_FOUND", field="account_id")
    if not ({Role.ADMIN, Role.AUDIT_ADMIN, Role.VIEWER} & set(caller.roles)):
        raise PermissionDenied("无权查看其他账号", code="ROLE_REQUIRED")


def ensure_can_manage_in(caller: Caller, org_path: str, org_level: Level) -> None:
    """Accounts are managed by an admin of a strict ancestor org, or by the national admin for
    national accounts; an org outside the caller's subtree answers NOT_FOUND."""
    if not is_inside(org_path, caller.org_path):
        raise NotFound("账号或机构不存在", code="NOT_FOUND")
    if Role.ADMIN not in caller.roles:
        raise PermissionDenied("只有系统管理员可以管理账号", code="ROLE_REQUIRED")
    national_peer = caller.level == Level.NATIONAL and org_level == Level.NATIONAL
    if not (is_strictly_inside(org_path, caller.org_path) or national_peer):
        raise PermissionDenied("账号只能由上级单位的系统管理员管理", code="NOT_ANCESTOR_ADMIN")


def ensure_can_manage_account(caller: Caller, account: Account) -> None:
    """ensure_can_manage_in for an existing account, refusing actions on oneself."""
    if not is_inside(account.org_path, caller.org_path):
        raise NotFound("账号不存在", code="ACCOUNT_NOT_FOUND", field="account_id")
    ensure_can_manage_in(caller, account.org_path, account.org_level)
    if caller.account_id == account.account_id:
        raise PermissionDenied("不能对自己的账号执行此操作", code="SELF_ACTION_FORBIDDEN")


def ensure_manageable_status(account: Account) -> None:
    """Retired accounts are kept for the record only."""
    from zizhu_common.errors import FailedPrecondition

    if account.status == AccountStatus.RETIRED:
        raise FailedPrecondition("账号已注销", code="ACCOUNT_RETIRED", field="account_id")


def can_reveal_personal_data(caller: Caller, account: Account) -> bool:
    """Full ID and phone: the account holder, or an admin who manages the account."""
    if caller.account_id == account.account_id:
        return True
    return Role.ADMIN in caller.roles and (
        is_strictly_inside(account.org_path, caller.org_path)
        or (caller.level == Level.NATIONAL and account.org_level == Level.NATIONAL)
    )

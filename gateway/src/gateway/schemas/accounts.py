"""Real-name accounts (统一用户管理)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.identity.v1 import identity_pb2

from gateway.schemas.common import (
    IdTypeName,
    OrgCode,
    RoleName,
    Schema,
    enum_name,
    level_name,
    role_names,
    ts,
)


class AccountCreate(Schema):
    """A real-name account in an organisation of the caller's subtree."""

    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    real_name: str = Field(min_length=1, max_length=64)
    id_type: IdTypeName = "resident_id"
    id_number: str = Field(min_length=4, max_length=32)
    phone: str = Field(min_length=5, max_length=20)
    org_code: OrgCode
    roles: list[RoleName] = Field(min_length=1, max_length=5)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "username": "zhang_san",
                    "real_name": "张三",
                    "id_type": "resident_id",
                    "id_number": "11010519491231002X",
                    "phone": "13800138000",
                    "org_code": "130102",
                    "roles": ["operator"],
                }
            ]
        },
    )


class AccountUpdate(Schema):
    """Profile fields to change; absent fields stay as they are."""

    real_name: str | None = Field(default=None, min_length=1, max_length=64)
    id_type: IdTypeName | None = None
    id_number: str | None = Field(default=None, min_length=4, max_length=32)
    phone: str | None = Field(default=None, min_length=5, max_length=20)
    expected_version: int = Field(default=0, ge=0, description="乐观锁：0 表示不检查")


class AccountRolesUpdate(Schema):
    """The account's complete new set of roles."""

    roles: list[RoleName] = Field(min_length=1, max_length=5)
    expected_version: int = Field(default=0, ge=0)


class AccountActionCreate(Schema):
    """Reason for a lock, unlock, reset or retirement (kept in the audit log)."""

    reason: str = Field(default="", max_length=200)


class AccountRead(BaseModel):
    """An account; ID and phone numbers masked."""

    account_id: str
    username: str
    real_name: str
    id_type: str
    id_number_masked: str
    phone_masked: str
    org_code: str
    org_name: str
    org_path: str
    level: str
    roles: list[str]
    kind: str
    status: str
    lock_reason: str
    locked_until: datetime | None
    totp_enabled: bool
    password_change_required: bool
    password_expires_at: datetime | None
    last_login_at: datetime | None
    created_by: str
    created_at: datetime | None
    updated_at: datetime | None
    version: int


class AccountPersonalRead(AccountRead):
    """An account with its full ID and phone numbers (an audited read)."""

    id_number: str
    phone: str


class AccountCreatedRead(BaseModel):
    """The new account and its one-time initial password (to change at first login)."""

    account: AccountRead
    initial_password: str


class PasswordResetRead(BaseModel):
    """The account and its one-time temporary password."""

    account: AccountRead
    temporary_password: str


class AccountPage(BaseModel):
    """One page of accounts."""

    items: list[AccountRead]
    next_page_token: str
    total: int


class MeRead(AccountRead):
    """The caller's own account and session."""

    session_id: str
    session_expires_at: datetime
    restricted: bool


def account_read(a: identity_pb2.Account) -> AccountRead:
    """Proto Account → schema."""
    return AccountRead(**account_fields(a))


def account_fields(a: identity_pb2.Account) -> dict[str, Any]:
    """The schema fields of a proto Account."""
    return {
        "account_id": a.account_id,
        "username": a.username,
        "real_name": a.real_name,
        "id_type": enum_name(common_pb2.IdType, a.id_type, "ID_TYPE_"),
        "id_number_masked": a.id_number_masked,
        "phone_masked": a.phone_masked,
        "org_code": a.org_code,
        "org_name": a.org_name,
        "org_path": a.org_path,
        "level": level_name(a.org_level),
        "roles": role_names(a.roles),
        "kind": enum_name(identity_pb2.AccountKind, a.kind, "ACCOUNT_KIND_"),
        "status": enum_name(identity_pb2.AccountStatus, a.status, "ACCOUNT_STATUS_"),
        "lock_reason": a.lock_reason,
        "locked_until": ts(a.locked_until, a.HasField("locked_until")),
        "totp_enabled": a.totp_enabled,
        "password_change_required": a.password_change_required,
        "password_expires_at": ts(a.password_expires_at, a.HasField("password_expires_at")),
        "last_login_at": ts(a.last_login_at, a.HasField("last_login_at")),
        "created_by": a.created_by,
        "created_at": ts(a.created_at, a.HasField("created_at")),
        "updated_at": ts(a.updated_at, a.HasField("updated_at")),
        "version": a.version,
    }

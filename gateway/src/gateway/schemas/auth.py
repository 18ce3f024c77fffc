"""Login, sessions, password and TOTP."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from zizhu_contracts.identity.v1 import identity_pb2

from gateway.schemas.common import Schema, enum_name, level_name, role_names, ts

LoginStatus = Literal[
    "authenticated", "totp_required", "password_change_required", "totp_enrollment_required"
]


class LoginCreate(Schema):
    """Username and password, plus the 6-digit TOTP code when the account has TOTP."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    totp_code: str | None = Field(default=None, pattern=r"^[0-9]{6}$")

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"username": "county_admin", "password": "Zz-2024-pass"}]},
    )


class PrincipalRead(BaseModel):
    """The authenticated account as its session sees it."""

    account_id: str
    username: str
    real_name: str
    kind: str
    org_code: str
    org_name: str
    org_path: str
    level: str
    roles: list[str]
    session_id: str
    mfa_verified: bool
    password_change_required: bool


class LoginRead(BaseModel):
    """Tokens, or the step still missing: `totp_required` (send the code with the password
    again); or tokens of a restricted session that may only change the password
    (`password_change_required`) or enrol TOTP (`totp_enrollment_required`), then log in again."""

    status: LoginStatus
    message: str
    token_type: Literal["Bearer"] = "Bearer"
    access_token: str | None = None
    access_expires_at: datetime | None = None
    refresh_token: str | None = None
    refresh_expires_at: datetime | None = None
    principal: PrincipalRead | None = None


class RefreshCreate(Schema):
    """A refresh token, exchanged for a new pair (the old one stops working)."""

    refresh_token: str = Field(min_length=1, max_length=2048)


class LogoutCreate(Schema):
    """End this session, or every session of the account."""

    all_sessions: bool = False


class LogoutRead(BaseModel):
    """How many sessions were ended."""

    revoked_sessions: int


class PasswordUpdate(Schema):
    """The caller changes its own password."""

    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=8, max_length=256)


class PasswordRead(BaseModel):
    """When the new password expires."""

    password_expires_at: datetime | None


class TotpEnrollRead(BaseModel):
    """A TOTP secret to add to an authenticator app, shown once; confirm it with a code."""

    secret: str
    provisioning_uri: str


class TotpConfirmCreate(Schema):
    """The current 6-digit code of the new secret."""

    totp_code: str = Field(pattern=r"^[0-9]{6}$")


def principal_read(p: identity_pb2.Principal) -> PrincipalRead:
    """Proto Principal → schema."""
    return PrincipalRead(
        account_id=p.account_id,
        username=p.username,
        real_name=p.real_name,
        kind=enum_name(identity_pb2.AccountKind, p.kind, "ACCOUNT_KIND_"),
        org_code=p.org_code,
        org_name=p.org_name,
        org_path=p.org_path,
        level=level_name(p.org_level),
        roles=role_names(p.roles),
        session_id=p.session_id,
        mfa_verified=p.mfa_verified,
        password_change_required=p.password_change_required,
    )


def tokens_read(
    resp: identity_pb2.LoginResponse | identity_pb2.RefreshResponse,
    *,
    mfa_enrollment_required: bool = False,
) -> LoginRead:
    """A login or refresh answer with tokens."""
    principal = principal_read(resp.principal)
    if principal.password_change_required:
        status: LoginStatus = "password_change_required"
        message = "请先修改密码：当前会话仅可修改密码"
    elif mfa_enrollment_required:
        status = "totp_enrollment_required"
        message = "请先绑定动态口令（TOTP），完成后重新登录"
    else:
        status, message = "authenticated", "登录成功"
    return LoginRead(
        status=status,
        message=message,
        access_token=resp.access_token,
        access_expires_at=ts(resp.access_expires_at),
        refresh_token=resp.refresh_token,
        refresh_expires_at=ts(resp.refresh_expires_at),
        principal=principal,
    )

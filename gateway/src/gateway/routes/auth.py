"""Login, token refresh, logout, the caller's own password, TOTP and account (`/me`)."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
from fastapi import APIRouter, Request
from zizhu_common.errors import error_from_rpc
from zizhu_contracts.identity.v1 import identity_pb2

from gateway.audit import OUTCOME_DENIED, audit_note
from gateway.deps import CurrentSession, Identity, bearer_token, request_client_ip, runtime_of
from gateway.policy import PUBLIC, guard
from gateway.schemas.accounts import MeRead, account_fields
from gateway.schemas.auth import (
    LoginCreate,
    LoginRead,
    LogoutCreate,
    LogoutRead,
    PasswordRead,
    PasswordUpdate,
    RefreshCreate,
    TotpConfirmCreate,
    TotpEnrollRead,
    tokens_read,
)
from gateway.schemas.common import role_names, ts

router = APIRouter(tags=["认证 auth"])

SELF = {"kind": "self"}


@router.post(
    "/auth/login", response_model=LoginRead, summary="用户名密码登录（含动态口令）", **PUBLIC
)
async def login(body: LoginCreate, request: Request, identity: Identity) -> LoginRead:
    """Password (+ TOTP when the account has it). Answers tokens, `totp_required` (send the code
    with the password again), or tokens of a restricted session (`password_change_required`).
    Wrong credentials answer 401 without saying which was wrong; attempts are limited per IP."""
    runtime = runtime_of(request)
    ip = request_client_ip(request)
    note = audit_note(request)
    note.detail = f"登录 {body.username}"
    await runtime.gate.admit_login(ip)
    try:
        resp = await identity.Login(
            identity_pb2.LoginRequest(
                username=body.username,
                password=body.password,
                totp_code=body.totp_code or "",
                client_ip=ip,
                user_agent=request.headers.get("user-agent", "")[:256],
            ),
            caller=None,
        )
    except grpc.RpcError as exc:
        err = error_from_rpc(exc)
        if err.code == "MFA_REQUIRED":
            note.detail += "：需要动态口令"
            note.outcome = OUTCOME_DENIED
            return LoginRead(status="totp_required", message="请输入动态口令（TOTP）后重新登录")
        raise err from exc
    p = resp.principal
    note.actor_account_id, note.actor_org_code, note.actor_org_path = (
        p.account_id,
        p.org_code,
        p.org_path,
    )
    note.actor_roles = tuple(role_names(p.roles))
    note.object_type, note.object_id = "account", p.account_id
    claims = await runtime.verifier.verify(resp.access_token)
    return tokens_read(resp, mfa_enrollment_required=claims.mfa_enrollment_required)


@router.post("/auth/refresh", response_model=LoginRead, summary="刷新令牌", **PUBLIC)
async def refresh(body: RefreshCreate, request: Request, identity: Identity) -> LoginRead:
    """A new token pair for a refresh token; the old refresh token stops working (rotation)."""
    runtime = runtime_of(request)
    ip = request_client_ip(request)
    await runtime.gate.admit_login(ip)
    resp = await identity.Refresh(
        identity_pb2.RefreshRequest(
            refresh_token=body.refresh_token,
            client_ip=ip,
            user_agent=request.headers.get("user-agent", "")[:256],
        ),
        caller=None,
    )
    p = resp.principal
    note = audit_note(request)
    note.actor_account_id, note.actor_org_code, note.actor_org_path = (
        p.account_id,
        p.org_code,
        p.org_path,
    )
    claims = await runtime.verifier.verify(resp.access_token)
    return tokens_read(resp, mfa_enrollment_required=claims.mfa_enrollment_required)


@router.post(
    "/auth/logout", response_model=LogoutRead, summary="退出登录", **guard("session.manage", SELF)
)
async def logout(
    body: LogoutCreate, request: Request, caller: CurrentSession, identity: Identity
) -> LogoutRead:
    """End this session (or all of the account's sessions); its tokens stop working at once."""
    token = bearer_token(request)
    resp = await identity.Logout(
        identity_pb2.LogoutRequest(all_sessions=body.all_sessions),
        caller=caller,
        metadata=[("authorization", f"Bearer {token}")],
    )
    runtime_of(request).verifier.forget([token])
    return LogoutRead(revoked_sessions=resp.revoked_sessions)


@router.post(
    "/auth/password",
    response_model=PasswordRead,
    summary="修改本人密码",
    **guard("session.manage", SELF),
)
async def change_password(
    body: PasswordUpdate, caller: CurrentSession, identity: Identity
) -> PasswordRead:
    """Change the caller's password (>= 8 characters of 3 classes, not one of the last 5)."""
    resp = await identity.ChangePassword(
        identity_pb2.ChangePasswordRequest(
            current_password=body.current_password, new_password=body.new_password
        ),
        caller=caller,
    )
    return PasswordRead(
        password_expires_at=ts(resp.password_expires_at, resp.HasField("password_expires_at"))
    )


@router.post(
    "/auth/totp/enroll",
    response_model=TotpEnrollRead,
    summary="绑定动态口令：生成密钥",
    **guard("session.manage", SELF),
)
async def enroll_totp(caller: CurrentSession, identity: Identity) -> TotpEnrollRead:
    """A new TOTP secret for the caller, active once confirmed with a code."""
    resp = await identity.EnrollTotp(identity_pb2.EnrollTotpRequest(), caller=caller)
    return TotpEnrollRead(secret=resp.secret, provisioning_uri=resp.provisioning_uri)


@router.post(
    "/auth/totp/confirm",
    response_model=MeRead,
    summary="绑定动态口令：确认",
    **guard("session.manage", SELF),
)
async def confirm_totp(
    body: TotpConfirmCreate, caller: CurrentSession, identity: Identity
) -> MeRead:
    """Activate the pending TOTP secret with its current code."""
    resp = await identity.ConfirmTotp(
        identity_pb2.ConfirmTotpRequest(totp_code=body.totp_code), caller=caller
    )
    return _me(resp.account, caller)


@router.get("/me", response_model=MeRead, summary="当前用户", **guard("me.read", SELF))
async def me(caller: CurrentSession, identity: Identity) -> MeRead:
    """The caller's own account and session."""
    resp = await identity.GetAccount(
        identity_pb2.GetAccountRequest(account_id=caller.account_id), caller=caller
    )
    return _me(resp.account, caller)


def _me(account: identity_pb2.Account, caller: CurrentSession) -> MeRead:
    return MeRead(
        **account_fields(account),
        session_id=caller.claims.session_id,
        session_expires_at=datetime.fromtimestamp(caller.claims.expires_at, UTC),
        restricted=caller.restricted,
    )

"""Account management (统一用户管理): create, read, list, update, roles, lock, reset, retire."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from zizhu_common.errors import InvalidArgument, PermissionDenied
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.identity.v1 import identity_pb2

from gateway.audit import audit_note
from gateway.deps import Caller, CurrentUser, Identity
from gateway.policy import allowed, guard
from gateway.schemas.accounts import (
    AccountActionCreate,
    AccountCreate,
    AccountCreatedRead,
    AccountPage,
    AccountPersonalRead,
    AccountRead,
    AccountRolesUpdate,
    AccountUpdate,
    PasswordResetRead,
    account_fields,
    account_read,
)
from gateway.schemas.common import (
    OrgCode,
    PageSize,
    PageToken,
    RoleName,
    enum_value,
    page_request,
    role_value,
)

router = APIRouter(tags=["账号 accounts"])

ACCOUNT_IN_PATH = {"kind": "account", "in": "path", "name": "account_id"}
AccountId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_-]+$")]


def _id_type(name: str) -> int:
    return enum_value(common_pb2.IdType, name, "ID_TYPE_")


async def _account_in_scope(
    identity: Identity, caller: Caller, account_id: str
) -> identity_pb2.Account:
    """The account, when it belongs to the caller's subtree; 404 otherwise."""
    resp = await identity.GetAccount(
        identity_pb2.GetAccountRequest(account_id=account_id), caller=caller
    )
    caller.ensure_in_scope(resp.account.org_path, what="账号")
    return resp.account


@router.post(
    "/accounts",
    response_model=AccountCreatedRead,
    status_code=201,
    summary="创建账号",
    **guard("account.create", {"kind": "org", "in": "body", "name": "org_code"}),
)
async def create_account(
    body: AccountCreate, request: Request, caller: CurrentUser, identity: Identity
) -> AccountCreatedRead:
    """A real-name account in an organisation below the caller; the initial password is shown
    once and must be changed at first login."""
    org = await identity.GetOrg(identity_pb2.GetOrgRequest(org_code=body.org_code), caller=caller)
    caller.ensure_in_scope(org.org.org_path, what="机构")
    resp = await identity.CreateAccount(
        identity_pb2.CreateAccountRequest(
            username=body.username,
            real_name=body.real_name,
            id_type=_id_type(body.id_type),  # type: ignore[arg-type]
            id_number=body.id_number,
            phone=body.phone,
            org_code=body.org_code,
            roles=[role_value(r) for r in body.roles],  # type: ignore[misc]
            kind=identity_pb2.ACCOUNT_KIND_PERSON,
        ),
        caller=caller,
    )
    note = audit_note(request)
    note.object_type, note.object_id = "account", resp.account.account_id
    return AccountCreatedRead(
        account=account_read(resp.account), initial_password=resp.initial_password
    )


@router.get(
    "/accounts",
    response_model=AccountPage,
    summary="浏览下辖账号",
    **guard("account.list", {"kind": "org", "in": "query", "name": "org_code"}),
)
async def list_accounts(
    caller: CurrentUser,
    identity: Identity,
    org_code: Annotated[OrgCode | None, Query(description="范围根机构；默认本机构")] = None,
    direct_only: bool = False,
    roles: Annotated[list[RoleName] | None, Query()] = None,
    statuses: Annotated[list[str] | None, Query(description="active / locked / retired")] = None,
    q: Annotated[str | None, Query(max_length=64, description="用户名或姓名包含")] = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> AccountPage:
    """Accounts of an organisation of the caller's subtree and below."""
    status_values = []
    for name in statuses or ():
        try:
            status_values.append(enum_value(identity_pb2.AccountStatus, name, "ACCOUNT_STATUS_"))
        except ValueError:
            raise InvalidArgument(
                "账号状态应为 active、locked 或 retired", code="INVALID_ARGUMENT", field="statuses"
            ) from None
    resp = await identity.ListAccounts(
        identity_pb2.ListAccountsRequest(
            org_code=org_code or "",
            direct_only=direct_only,
            roles=[role_value(r) for r in roles or ()],  # type: ignore[misc]
            statuses=status_values,  # type: ignore[arg-type]
            query=q or "",
            page=page_request(page_size, page_token),
        ),
        caller=caller,
    )
    items = [account_read(a) for a in resp.accounts if caller.keeps(a.org_path, "account")]
    return AccountPage(
        items=items, next_page_token=resp.page.next_page_token, total=resp.page.total
    )


@router.get(
    "/accounts/{account_id}",
    response_model=AccountPersonalRead | AccountRead,
    summary="查看账号",
    **guard("account.read", ACCOUNT_IN_PATH),
)
async def get_account(
    account_id: AccountId,
    request: Request,
    caller: CurrentUser,
    identity: Identity,
    reveal: Annotated[
        bool, Query(description="返回完整证件号与手机号（需相应权限，记入审计日志）")
    ] = False,
) -> AccountPersonalRead | AccountRead:
    """One account of the caller's subtree; `reveal=true` returns the full ID and phone numbers
    (an audited read)."""
    if reveal and not allowed("account.reveal", caller):
        raise PermissionDenied("当前账号无权查看完整证件号", code="ACTION_NOT_ALLOWED",
                               details={"action": "account.reveal"})  # fmt: skip
    resp = await identity.GetAccount(
        identity_pb2.GetAccountRequest(account_id=account_id, reveal_personal_data=reveal),
        caller=caller,
    )
    caller.ensure_in_scope(resp.account.org_path, what="账号")
    if not reveal:
        return account_read(resp.account)
    note = audit_note(request)
    note.sensitive_read = True
    note.object_type, note.object_id = "account", account_id
    note.detail = "查看完整证件号与手机号"
    return AccountPersonalRead(
        **account_fields(resp.account), id_number=resp.id_number, phone=resp.phone
    )


@router.patch(
    "/accounts/{account_id}",
    response_model=AccountRead,
    summary="修改账号资料",
    **guard("account.update", ACCOUNT_IN_PATH),
)
async def update_account(
    account_id: AccountId,
    body: AccountUpdate,
    request: Request,
    caller: CurrentUser,
    identity: Identity,
) -> AccountRead:
    """Change name, ID or phone of an account below the caller."""
    await _account_in_scope(identity, caller, account_id)
    req = identity_pb2.UpdateAccountRequest(
        account_id=account_id, expected_version=body.expected_version
    )
    if body.real_name is not None:
        req.real_name = body.real_name
    if body.id_type is not None:
        req.id_type = _id_type(body.id_type)  # type: ignore[assignment]
    if body.id_number is not None:
        req.id_number = body.id_number
    if body.phone is not None:
        req.phone = body.phone
    resp = await identity.UpdateAccount(req, caller=caller)
    _note(request, account_id)
    return account_read(resp.account)


@router.put(
    "/accounts/{account_id}/roles",
    response_model=AccountRead,
    summary="设置账号角色",
    **guard("account.update", ACCOUNT_IN_PATH),
)
async def set_roles(
    account_id: AccountId,
    body: AccountRolesUpdate,
    request: Request,
    caller: CurrentUser,
    identity: Identity,
) -> AccountRead:
    """Replace the roles of an account below the caller."""
    await _account_in_scope(identity, caller, account_id)
    resp = await identity.SetAccountRoles(
        identity_pb2.SetAccountRolesRequest(
            account_id=account_id,
            roles=[role_value(r) for r in body.roles],  # type: ignore[misc]
            expected_version=body.expected_version,
        ),
        caller=caller,
    )
    _note(request, account_id)
    return account_read(resp.account)


def _note(request: Request, account_id: str) -> None:
    note = audit_note(request)
    note.object_type, note.object_id = "account", account_id


async def _account_action(
    rpc_name: str,
    request_type: type,
    account_id: str,
    body: AccountActionCreate,
    request: Request,
    caller: Caller,
    identity: Identity,
) -> Any:
    """Scope check, audit note, then the identity call for one account action."""
    await _account_in_scope(identity, caller, account_id)
    _note(request, account_id)
    return await getattr(identity, rpc_name)(
        request_type(account_id=account_id, reason=body.reason), caller=caller
    )


@router.post(
    "/accounts/{account_id}/lock",
    response_model=AccountRead,
    summary="锁定账号",
    **guard("account.lock", ACCOUNT_IN_PATH),
)
async def lock_account(
    account_id: AccountId,
    body: AccountActionCreate,
    request: Request,
    caller: CurrentUser,
    identity: Identity,
) -> AccountRead:
    """Lock an account below the caller; its sessions end at once."""
    resp = await _account_action("LockAccount", identity_pb2.LockAccountRequest, account_id,
                                 body, request, caller, identity)  # fmt: skip
    return account_read(resp.account)


@router.post(
    "/accounts/{account_id}/unlock",
    response_model=AccountRead,
    summary="解锁账号",
    **guard("account.lock", ACCOUNT_IN_PATH),
)
async def unlock_account(
    account_id: AccountId,
    body: AccountActionCreate,
    request: Request,
    caller: CurrentUser,
    identity: Identity,
) -> AccountRead:
    """Unlock an account below the caller (admin lock or failed-login lock)."""
    resp = await _account_action("UnlockAccount", identity_pb2.UnlockAccountRequest, account_id,
                                 body, request, caller, identity)  # fmt: skip
    return account_read(resp.account)


@router.post(
    "/accounts/{account_id}/reset-password",
    response_model=PasswordResetRead,
    summary="重置密码",
    **guard("account.reset", ACCOUNT_IN_PATH),
)
async def reset_password(
    account_id: AccountId,
    body: AccountActionCreate,
    request: Request,
    caller: CurrentUser,
    identity: Identity,
) -> PasswordResetRead:
    """A one-time temporary password (shown once); the account's sessions end."""
    resp = await _account_action("ResetPassword", identity_pb2.ResetPasswordRequest, account_id,
                                 body, request, caller, identity)  # fmt: skip
    return PasswordResetRead(
        account=account_read(resp.account),
        temporary_password=resp.temporary_password,
    )


@router.post(
    "/accounts/{account_id}/reset-totp",
    response_model=AccountRead,
    summary="重置动态口令",
    **guard("account.reset", ACCOUNT_IN_PATH),
)
async def reset_totp(
    account_id: AccountId,
    body: AccountActionCreate,
    request: Request,
    caller: CurrentUser,
    identity: Identity,
) -> AccountRead:
    """Remove an account's TOTP (lost device); the user enrols again."""
    resp = await _account_action("ResetTotp", identity_pb2.ResetTotpRequest, account_id,
                                 body, request, caller, identity)  # fmt: skip
    return account_read(resp.account)


@router.post(
    "/accounts/{account_id}/retire",
    response_model=AccountRead,
    summary="注销账号",
    **guard("account.retire", ACCOUNT_IN_PATH),
)
async def retire_account(
    account_id: AccountId,
    body: AccountActionCreate,
    request: Request,
    caller: CurrentUser,
    identity: Identity,
) -> AccountRead:
    """Retire (注销) an account for good; it stays for the audit trail."""
    resp = await _account_action("RetireAccount", identity_pb2.RetireAccountRequest, account_id,
                                 body, request, caller, identity)  # fmt: skip
    return account_read(resp.account)

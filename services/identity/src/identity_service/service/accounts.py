"""Account use cases (统一用户管理): create, read, update, roles, lock, unlock, reset, retire."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.crypto import hash_password
from zizhu_common.errors import AlreadyExists, Conflict, DomainError, FailedPrecondition, NotFound
from zizhu_common.rpc import CallerContext
from zizhu_contracts.identity.v1 import events_pb2

from identity_service.domain.accounts import (
    Account,
    AccountKind,
    AccountStatus,
    IdType,
    Role,
    can_reveal_personal_data,
    ensure_can_manage_account,
    ensure_can_manage_in,
    ensure_can_read_account,
    ensure_manageable_status,
    normalize_id,
    normalize_phone,
    normalize_real_name,
    normalize_roles,
    normalize_username,
)
from identity_service.domain.credentials import generate_temporary_password
from identity_service.domain.orgs import OrgStatus, is_inside
from identity_service.domain.tokens import new_id
from identity_service.events import (
    ACCOUNT_CREATED,
    ACCOUNT_LOCKED,
    ACCOUNT_PASSWORD_CHANGED,
    ACCOUNT_RETIRED,
    ACCOUNT_ROLES_CHANGED,
    ACCOUNT_UNLOCKED,
    event_meta,
)
from identity_service.protomap import KIND_TO_PB, LEVEL_TO_PB, role_values
from identity_service.repository import AccountFilter
from identity_service.service.audit import (
    OUTCOME_DENIED,
    OUTCOME_FAILED,
    OUTCOME_SUCCEEDED,
    Actor,
    AuditService,
)
from identity_service.service.context import Deps, next_page_token, page_window


@dataclass(frozen=True)
class AccountCreate:
    """CreateAccount input."""

    username: str
    real_name: str
    id_type: IdType
    id_number: str
    phone: str
    org_code: str
    roles: tuple[str, ...]
    kind: AccountKind = AccountKind.PERSON


@dataclass(frozen=True)
class AccountUpdate:
    """UpdateAccount input; None leaves a field unchanged."""

    real_name: str | None = None
    id_type: IdType | None = None
    id_number: str | None = None
    phone: str | None = None
    expected_version: int = 0


class AccountService:
    """Use cases of accounts, each audited (refusals too)."""

    def __init__(self, deps: Deps, audit: AuditService) -> None:
        self.deps = deps
        self.audit = audit

    async def hash_new_password(self, password: str) -> str:
        """PBKDF2-HMAC-SM3 with the configured iterations, off the event loop."""
        return await asyncio.to_thread(
            hash_password, password, iterations=self.deps.settings.password_iterations
        )

    async def create(
        self, caller: CallerContext, data: AccountCreate, *, initial_password: str | None = None
    ) -> tuple[Account, str]:
        """A real-name account in an org below the caller's (admins only); returns the
        temporary password to hand over (changed at first login)."""
        async with self._audited(caller, "identity.CreateAccount", object_type="account"):
            username = normalize_username(data.username)
            real_name = normalize_real_name(data.real_name)
            id_number = normalize_id(data.id_type, data.id_number)
            phone = normalize_phone(data.phone)
            roles = normalize_roles(data.roles)
            password = initial_password or generate_temporary_password()
            if initial_password:
                self.deps.password_policy.check_strength(password, username=username)
            password_hash = await self.hash_new_password(password)
            async with self.deps.db.write() as session:
                org = await self.deps.orgs.get(session, data.org_code)
                if org is None or not is_inside(org.org_path, caller.org_path):
                    raise NotFound("机构不存在", code="ORG_NOT_FOUND", field="org_code")
                ensure_can_manage_in(caller, org.org_path, org.level)
                if org.status != OrgStatus.ACTIVE:
                    raise FailedPrecondition("机构已撤销", code="ORG_RETIRED", field="org_code")
                if await self.deps.accounts.username_taken(session, username):
                    raise AlreadyExists("登录名已被使用", code="USERNAME_TAKEN", field="username")
                now = self.deps.now()
                account = Account(
                    account_id=new_id("A"),
                    username=username,
                    real_name=real_name,
                    id_type=data.id_type,
                    id_number=id_number,
                    phone=phone,
                    org_code=org.code,
                    org_path=org.org_path,
                    org_level=org.level,
                    org_name=org.name,
                    roles=roles,
                    kind=data.kind,
                    password_hash=password_hash,
                    password_changed_at=now,
                    password_expires_at=self.deps.password_policy.expires_at(now),
                    password_change_required=True,
                    created_by=caller.account_id,
                )
                await self.deps.accounts.insert(session, account, now)
                await self.deps.accounts.add_password_history(
                    session, account.account_id, password_hash, now
                )
                created = events_pb2.AccountCreated(
                    account_id=account.account_id,
                    username=username,
                    kind=KIND_TO_PB[account.kind],
                    org_code=org.code,
                    org_path=org.org_path,
                    org_level=LEVEL_TO_PB[org.level],
                    roles=role_values(roles),
                )
                created.meta.CopyFrom(event_meta(caller=caller, org_path=org.org_path))
                await self.deps.outbox.add(session, ACCOUNT_CREATED, created)
                await self._record(
                    session,
                    caller,
                    "identity.CreateAccount",
                    account,
                    f"创建账号，角色：{','.join(account.role_names())}",
                )
        return account, password

    async def get(
        self, caller: CallerContext, account_id: str, *, reveal: bool = False
    ) -> tuple[Account, bool]:
        """An account inside the caller's subtree; reveal returns full personal data (audited)."""
        async with self._audited(
            caller, "identity.GetAccount", object_type="account", object_id=account_id
        ):
            async with self.deps.db.read() as session:
                account = await self._load(session, caller, account_id)
            ensure_can_read_account(caller, account)
            if not reveal:
                return account, False
            if not can_reveal_personal_data(caller, account):
                from zizhu_common.errors import PermissionDenied

                raise PermissionDenied("无权查看完整的身份证号和手机号", code="REVEAL_FORBIDDEN")
            async with self.deps.db.write() as session:
                await self.audit.record(
                    session,
                    Actor.of(caller),
                    action="identity.GetAccount",
                    outcome=OUTCOME_SUCCEEDED,
                    org_path=account.org_path,
                    object_type="account",
                    object_id=account.account_id,
                    sensitive_read=True,
                    detail="查看完整身份证号和手机号",
                )
            return account, True

    async def list(
        self,
        caller: CallerContext,
        *,
        org_code: str,
        flt: AccountFilter,
        page_size: int,
        page_token: str,
    ) -> tuple[list[Account], int, str]:
        """Accounts in a subtree inside the caller's (admins, audit admins and viewers)."""
        from zizhu_common.errors import PermissionDenied

        if not ({Role.ADMIN.value, Role.AUDIT_ADMIN.value, Role.VIEWER.value} & set(caller.roles)):
            raise PermissionDenied("无权查看账号列表", code="ROLE_REQUIRED")
        async with self.deps.db.read() as session:
            org = await self.deps.orgs.get(session, org_code or caller.org_code)
            if org is None or not is_inside(org.org_path, caller.org_path):
                raise NotFound("机构不存在", code="ORG_NOT_FOUND", field="org_code")
            flt = AccountFilter(
                **{
                    **flt.__dict__,
                    "scope_path": org.org_path,
                    "direct_org_code": org.code if flt.direct_org_code else "",
                }
            )
            offset, limit = page_window(page_size, page_token, flt)
            accounts, total = await self.deps.accounts.list(
                session, flt, offset=offset, limit=limit
            )
        return accounts, total, next_page_token(offset, limit, total, flt)

    async def update(self, caller: CallerContext, account_id: str, data: AccountUpdate) -> Account:
        """Change name, ID or phone (admins of an ancestor org)."""
        async with self._audited(
            caller, "identity.UpdateAccount", object_type="account", object_id=account_id
        ):
            async with self.deps.db.write() as session:
                account = await self._manageable(session, caller, account_id, data.expected_version)
                changed = []
                if data.real_name is not None:
                    account.real_name = normalize_real_name(data.real_name)
                    changed.append("姓名")
                id_type = data.id_type or account.id_type
                if data.id_number is not None or data.id_type is not None:
                    account.id_number = normalize_id(id_type, data.id_number or account.id_number)
                    account.id_type = id_type
                    changed.append("证件号码")
                if data.phone is not None:
                    account.phone = normalize_phone(data.phone)
                    changed.append("手机号")
                await self.deps.accounts.save(session, account, self.deps.now())
                await self._record(
                    session,
                    caller,
                    "identity.UpdateAccount",
                    account,
                    f"修改：{'、'.join(changed) or '无'}",
                )
        return account

    async def set_roles(
        self,
        caller: CallerContext,
        account_id: str,
        roles: Sequence[str],
        expected_version: int = 0,
    ) -> Account:
        """Replace an account's roles; its sessions are revoked so tokens carry the new roles."""
        async with self._audited(
            caller, "identity.SetAccountRoles", object_type="account", object_id=account_id
        ):
            new_roles = normalize_roles(roles)
            async with self.deps.db.write() as session:
                account = await self._manageable(session, caller, account_id, expected_version)
                old_roles = account.roles
                account.roles = new_roles
                now = self.deps.now()
                account.sessions_revoked_before = now
                await self.deps.accounts.save(session, account, now)
                revoked = await self.deps.sessions.revoke(
                    session, now=now, reason="roles_changed", account_id=account.account_id
                )
                msg = events_pb2.AccountRolesChanged(
                    account_id=account.account_id,
                    old_roles=role_values(old_roles),
                    new_roles=role_values(new_roles),
                )
                msg.meta.CopyFrom(event_meta(caller=caller, org_path=account.org_path))
                await self.deps.outbox.add(session, ACCOUNT_ROLES_CHANGED, msg)
                await self._record(
                    session,
                    caller,
                    "identity.SetAccountRoles",
                    account,
                    f"角色改为：{','.join(account.role_names())}",
                )
            await self._revoke_in_redis(account.account_id, revoked)
        return account

    async def lock(self, caller: CallerContext, account_id: str, reason: str) -> Account:
        """Lock an account and revoke its sessions at once."""
        async with self._audited(
            caller, "identity.LockAccount", object_type="account", object_id=account_id
        ):
            async with self.deps.db.write() as session:
                account = await self._manageable(session, caller, account_id)
                now = self.deps.now()
                account.status = AccountStatus.LOCKED
                account.lock_reason = reason.strip()[:500] or "管理员锁定"
                account.locked_until = None
                account.sessions_revoked_before = now
                await self.deps.accounts.save(session, account, now)
                revoked = await self.deps.sessions.revoke(
                    session, now=now, reason="locked", account_id=account.account_id
                )
                msg = events_pb2.AccountLocked(
                    account_id=account.account_id, reason=account.lock_reason
                )
                msg.meta.CopyFrom(event_meta(caller=caller, org_path=account.org_path))
                await self.deps.outbox.add(session, ACCOUNT_LOCKED, msg)
                await self._record(
                    session, caller, "identity.LockAccount", account, f"锁定：{account.lock_reason}"
                )
            await self._revoke_in_redis(account.account_id, revoked)
        return account

    async def unlock(self, caller: CallerContext, account_id: str, reason: str) -> Account:
        """Unlock an account (admin lock or failed-login lock) and clear its failure count."""
        async with self._audited(
            caller, "identity.UnlockAccount", object_type="account", object_id=account_id
        ):
            async with self.deps.db.write() as session:
                account = await self._manageable(session, caller, account_id)
                account.status = AccountStatus.ACTIVE
                account.lock_reason = ""
                account.locked_until = None
                account.failed_logins = 0
                await self.deps.accounts.save(session, account, self.deps.now())
                msg = events_pb2.AccountUnlocked(account_id=account.account_id)
                msg.meta.CopyFrom(event_meta(caller=caller, org_path=account.org_path))
                await self.deps.outbox.add(session, ACCOUNT_UNLOCKED, msg)
                await self._record(
                    session,
                    caller,
                    "identity.UnlockAccount",
                    account,
                    f"解锁：{reason.strip()[:200]}",
                )
        return account

    async def reset_password(
        self, caller: CallerContext, account_id: str, reason: str
    ) -> tuple[Account, str]:
        """Issue a one-time temporary password (changed at next login) and revoke sessions."""
        async with self._audited(
            caller, "identity.ResetPassword", object_type="account", object_id=account_id
        ):
            temporary = generate_temporary_password()
            password_hash = await self.hash_new_password(temporary)
            async with self.deps.db.write() as session:
                account = await self._manageable(session, caller, account_id)
                now = self.deps.now()
                account.password_hash = password_hash
                account.password_changed_at = now
                account.password_expires_at = self.deps.password_policy.expires_at(now)
                account.password_change_required = True
                account.failed_logins = 0
                if account.status == AccountStatus.LOCKED and account.locked_until is not None:
                    account.status, account.locked_until, account.lock_reason = (
                        AccountStatus.ACTIVE,
                        None,
                        "",
                    )
                account.sessions_revoked_before = now
                await self.deps.accounts.save(session, account, now)
                await self.deps.accounts.add_password_history(
                    session, account.account_id, password_hash, now
                )
                revoked = await self.deps.sessions.revoke(
                    session, now=now, reason="password_reset", account_id=account.account_id
                )
                msg = events_pb2.AccountPasswordChanged(account_id=account.account_id, reset=True)
                msg.meta.CopyFrom(event_meta(caller=caller, org_path=account.org_path))
                await self.deps.outbox.add(session, ACCOUNT_PASSWORD_CHANGED, msg)
                await self._record(
                    session,
                    caller,
                    "identity.ResetPassword",
                    account,
                    f"重置密码：{reason.strip()[:200]}",
                )
            await self._revoke_in_redis(account.account_id, revoked)
        return account, temporary

    async def retire(self, caller: CallerContext, account_id: str, reason: str) -> Account:
        """Retire (注销) an account for good; it stays for the audit trail."""
        async with self._audited(
            caller, "identity.RetireAccount", object_type="account", object_id=account_id
        ):
            async with self.deps.db.write() as session:
                account = await self._manageable(session, caller, account_id)
                now = self.deps.now()
                account.status = AccountStatus.RETIRED
                account.retired_at = now
                account.sessions_revoked_before = now
                account.lock_reason = reason.strip()[:500]
                await self.deps.accounts.save(session, account, now)
                revoked = await self.deps.sessions.revoke(
                    session, now=now, reason="retired", account_id=account.account_id
                )
                msg = events_pb2.AccountRetired(
                    account_id=account.account_id, reason=account.lock_reason
                )
                msg.meta.CopyFrom(event_meta(caller=caller, org_path=account.org_path))
                await self.deps.outbox.add(session, ACCOUNT_RETIRED, msg)
                await self._record(
                    session,
                    caller,
                    "identity.RetireAccount",
                    account,
                    f"注销：{account.lock_reason}",
                )
            await self._revoke_in_redis(account.account_id, revoked)
        return account

    async def reset_totp(self, caller: CallerContext, account_id: str, reason: str) -> Account:
        """Remove an account's TOTP (lost device); the user enrols again."""
        async with self._audited(
            caller, "identity.ResetTotp", object_type="account", object_id=account_id
        ):
            async with self.deps.db.write() as session:
                account = await self._manageable(session, caller, account_id)
                account.totp_secret = ""
                account.totp_pending_secret = ""
                account.totp_last_step = 0
                await self.deps.accounts.save(session, account, self.deps.now())
                await self._record(
                    session,
                    caller,
                    "identity.ResetTotp",
                    account,
                    f"重置动态口令：{reason.strip()[:200]}",
                )
        return account

    # --- helpers ------------------------------------------------------------------------------

    async def _load(self, session: AsyncSession, caller: CallerContext, account_id: str) -> Account:
        account = await self.deps.accounts.get(session, account_id)
        if account is None or (
            account.account_id != caller.account_id
            and not is_inside(account.org_path, caller.org_path)
        ):
            raise NotFound("账号不存在", code="ACCOUNT_NOT_FOUND", field="account_id")
        return account

    async def _manageable(
        self,
        session: AsyncSession,
        caller: CallerContext,
        account_id: str,
        expected_version: int = 0,
    ) -> Account:
        account = await self._load(session, caller, account_id)
        ensure_can_manage_account(caller, account)
        ensure_manageable_status(account)
        if expected_version and expected_version != account.version:
            raise Conflict(
                "账号已被他人修改，请刷新后重试", code="VERSION_CONFLICT", field="expected_version"
            )
        return account

    async def _record(
        self,
        session: AsyncSession,
        caller: CallerContext,
        action: str,
        account: Account,
        detail: str,
    ) -> None:
        await self.audit.record(
            session,
            Actor.of(caller),
            action=action,
            outcome=OUTCOME_SUCCEEDED,
            org_path=account.org_path,
            object_type="account",
            object_id=account.account_id,
            detail=f"{account.username}：{detail}",
        )

    async def _revoke_in_redis(self, account_id: str, session_ids: list[str]) -> None:
        await self.deps.revocations.revoke_sessions(session_ids)
        await self.deps.revocations.revoke_account(account_id, self.deps.now().timestamp())

    def _audited(self, caller: CallerContext, action: str, **fields: str) -> _Audited:
        return _Audited(self.audit, caller, action, fields)


class _Audited:
    """Records a refusal of an account action in its own transaction, then lets it propagate."""

    def __init__(
        self, audit: AuditService, caller: CallerContext, action: str, fields: dict[str, str]
    ) -> None:
        self.audit, self.caller, self.action, self.fields = audit, caller, action, fields

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> bool:
        if isinstance(exc, DomainError):
            denied = exc.code in (
                "NOT_FOUND",
                "ACCOUNT_NOT_FOUND",
                "ORG_NOT_FOUND",
            ) or exc.grpc_status.name in (
                "PERMISSION_DENIED",
                "NOT_FOUND",
                "UNAUTHENTICATED",
            )
            await self.audit.record_alone(
                Actor.of(self.caller),
                action=self.action,
                outcome=OUTCOME_DENIED if denied else OUTCOME_FAILED,
                status_code=exc.grpc_status.name,
                detail=f"{exc.code}：{exc.message}"[:500],
                **self.fields,
            )
        return False

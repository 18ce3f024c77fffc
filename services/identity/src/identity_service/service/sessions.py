"""Sessions: login (password + TOTP), lockout, SM2 access tokens, rotating refresh tokens,
logout and verification; and the caller's own credentials (password change, TOTP enrolment)."""

from __future__ import annotations

import asyncio
import base64
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from zizhu_common.crypto import (
    TokenError,
    hash_password,
    sign_token,
    sm3,
    verify_password,
    verify_token,
)
from zizhu_common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from zizhu_common.rpc import CallerContext
from zizhu_contracts.identity.v1 import events_pb2

from identity_service.domain.accounts import Account, AccountStatus
from identity_service.domain.credentials import (
    mfa_required,
    new_totp_secret,
    provisioning_uri,
    totp_step,
)
from identity_service.domain.tokens import AccessClaims, new_id
from identity_service.events import ACCOUNT_LOCKED, ACCOUNT_PASSWORD_CHANGED, event_meta
from identity_service.service.audit import OUTCOME_DENIED, OUTCOME_SUCCEEDED, Actor, AuditService
from identity_service.service.context import Deps

# Verified against when the login name is unknown, so that timing does not tell names apart.
_DUMMY_HASH = hash_password("zizhu-dummy-password", iterations=1000)


@dataclass(frozen=True)
class IssuedTokens:
    """An access token, its refresh token and what the access token asserts."""

    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime
    claims: AccessClaims


@dataclass(frozen=True)
class ClientInfo:
    """Where a request comes from (forwarded by the gateway)."""

    ip: str = ""
    user_agent: str = ""
    request_id: str = ""


def _refresh_hash(token: str) -> str:
    return sm3(token.encode()).hex()


class SessionService:
    """Login, refresh, logout, token verification and self-service credentials."""

    def __init__(self, deps: Deps, audit: AuditService) -> None:
        self.deps = deps
        self.audit = audit

    # --- login --------------------------------------------------------------------------------

    async def login(
        self, *, username: str, password: str, totp_code: str, client: ClientInfo
    ) -> IssuedTokens:
        """Password (+ TOTP when enrolled) login; five failures lock the account for 30 minutes."""
        name = (username or "").strip().lower()
        async with self.deps.db.read() as session:
            account = await self.deps.accounts.get_by_username(session, name) if name else None
        if account is None or account.status == AccountStatus.RETIRED:
            await asyncio.to_thread(verify_password, password or "", _DUMMY_HASH)
            await self.audit.record_alone(
                self._actor(account, client),
                action="identity.Login",
                outcome=OUTCOME_DENIED,
                status_code="UNAUTHENTICATED",
                org_path=account.org_path if account else self.deps.root().org_path,
                object_type="account",
                object_id=account.account_id if account else "",
                detail=f"登录失败：用户名或密码错误（{name[:64]}）",
            )
            raise Unauthenticated("用户名或密码错误", code="INVALID_CREDENTIALS")
        now = self.deps.now()
        if self._locked(account, now):
            await self._audit_login(
                account, client, OUTCOME_DENIED, "PERMISSION_DENIED", "登录被拒绝：账号已锁定"
            )
            raise self._locked_error(account)
        ok = await asyncio.to_thread(verify_password, password or "", account.password_hash)
        step: int | None = None
        if ok and account.totp_enabled:
            if not (totp_code or "").strip():
                await self._audit_login(
                    account, client, OUTCOME_DENIED, "FAILED_PRECONDITION", "需要动态口令"
                )
                raise FailedPrecondition("请输入动态口令", code="MFA_REQUIRED", field="totp_code")
            step = totp_step(account.totp_secret, totp_code, now, last_step=account.totp_last_step)
            ok = step is not None
        if not ok:
            await self._register_failure(account.account_id, client)
        return await self._open_session(account.account_id, step, client)

    async def _register_failure(self, account_id: str, client: ClientInfo) -> None:
        now = self.deps.now()
        async with self.deps.db.write() as session:
            account = await self.deps.accounts.get(session, account_id)
            assert account is not None
            if (
                account.status == AccountStatus.LOCKED
                and account.locked_until
                and account.locked_until <= now
            ):
                account.status, account.locked_until, account.failed_logins = (
                    AccountStatus.ACTIVE,
                    None,
                    0,
                )
            count, until = self.deps.lockout.after_failure(account.failed_logins, now)
            account.failed_logins = count
            if until is not None and account.status == AccountStatus.ACTIVE:
                account.status = AccountStatus.LOCKED
                account.locked_until = until
                account.lock_reason = (
                    f"连续{count}次登录失败，锁定{self.deps.lockout.lock_minutes}分钟"
                )
                locked = events_pb2.AccountLocked(
                    account_id=account.account_id, reason=account.lock_reason
                )
                locked.locked_until.FromDatetime(until)
                locked.meta.CopyFrom(
                    event_meta(org_path=account.org_path, actor_account_id=account.account_id)
                )
                await self.deps.outbox.add(session, ACCOUNT_LOCKED, locked)
            await self.deps.accounts.save(session, account, now)
            await self.audit.record(
                session,
                self._actor(account, client),
                action="identity.Login",
                outcome=OUTCOME_DENIED,
                status_code="UNAUTHENTICATED",
                org_path=account.org_path,
                object_type="account",
                object_id=account.account_id,
                detail=f"登录失败（连续第{count}次）" + ("，账号已锁定" if until else ""),
            )
        if account.status == AccountStatus.LOCKED:
            raise self._locked_error(account)
        raise Unauthenticated("用户名、密码或动态口令错误", code="INVALID_CREDENTIALS")

    async def _open_session(
        self, account_id: str, step: int | None, client: ClientInfo
    ) -> IssuedTokens:
        now = self.deps.now()
        settings = self.deps.settings
        async with self.deps.db.write() as session:
            account = await self.deps.accounts.get(session, account_id)
            assert account is not None
            if (
                account.status == AccountStatus.LOCKED
                and account.locked_until
                and account.locked_until <= now
            ):
                account.status, account.locked_until, account.lock_reason = (
                    AccountStatus.ACTIVE,
                    None,
                    "",
                )
            account.failed_logins = 0
            account.last_login_at = now
            if step is not None:
                account.totp_last_step = step
            await self.deps.accounts.save(session, account, now)
            session_id = new_id("S")
            refresh_expires = now + timedelta(seconds=settings.refresh_token_ttl_s)
            await self.deps.sessions.create(
                session,
                session_id=session_id,
                account_id=account.account_id,
                now=now,
                expires_at=refresh_expires,
                mfa_verified=step is not None,
                client_ip=client.ip,
                user_agent=client.user_agent,
            )
            refresh = _new_refresh_token()
            await self.deps.sessions.add_refresh(
                session,
                token_hash=_refresh_hash(refresh),
                session_id=session_id,
                now=now,
                expires_at=refresh_expires,
            )
            await self.audit.record(
                session,
                self._actor(account, client),
                action="identity.Login",
                outcome=OUTCOME_SUCCEEDED,
                org_path=account.org_path,
                object_type="session",
                object_id=session_id,
                detail="登录成功" + ("（动态口令已验证）" if step is not None else ""),
            )
        return self._issue(account, session_id, step is not None, refresh, refresh_expires)

    def _issue(
        self,
        account: Account,
        session_id: str,
        mfa_verified: bool,
        refresh: str,
        refresh_expires: datetime,
    ) -> IssuedTokens:
        now = self.deps.now()
        iat = int(now.timestamp())
        exp = iat + self.deps.settings.access_token_ttl_s
        pwd_change = account.password_change_required or (
            account.password_expires_at is not None and account.password_expires_at <= now
        )
        claims = AccessClaims(
            account_id=account.account_id,
            username=account.username,
            real_name=account.real_name,
            kind=account.kind.value,
            org_code=account.org_code,
            org_name=account.org_name,
            org_path=account.org_path,
            level=account.org_level,
            roles=tuple(account.role_names()),
            session_id=session_id,
            mfa_verified=mfa_verified,
            password_change_required=pwd_change,
            issued_at=iat,
            expires_at=exp,
            jti=new_id("T"),
        )
        body = claims.to_dict()
        # The gateway lets such a session enrol TOTP and nothing else.
        body["mfa_req"] = not mfa_verified and mfa_required(
            account.org_level, account.role_names(), self.deps.settings.mfa_required_roles
        )
        token = sign_token(self.deps.keys.signer, body, key_id=self.deps.keys.current_key_id)
        return IssuedTokens(
            token, datetime.fromtimestamp(exp, now.tzinfo), refresh, refresh_expires, claims
        )

    # --- refresh / logout / verify ------------------------------------------------------------

    async def refresh(self, *, refresh_token: str, client: ClientInfo) -> IssuedTokens:
        """Exchange a refresh token for a new pair (one-time use: reuse revokes the session)."""
        if not refresh_token:
            raise Unauthenticated(
                "刷新令牌无效", code="REFRESH_TOKEN_INVALID", field="refresh_token"
            )
        now = self.deps.now()
        reused: tuple[str, str] | None = None
        refused = False
        async with self.deps.db.write() as session:
            record = await self.deps.sessions.get_refresh_for_update(
                session, _refresh_hash(refresh_token)
            )
            login = await self.deps.sessions.get(session, record.session_id) if record else None
            account = await self.deps.accounts.get(session, login.account_id) if login else None
            if record is None or login is None or account is None:
                refused = True
            elif record.used_at is not None:
                await self.deps.sessions.revoke(
                    session, now=now, reason="refresh_reuse", session_id=login.session_id
                )
                await self.audit.record(
                    session,
                    self._actor(account, client),
                    action="identity.Refresh",
                    outcome=OUTCOME_DENIED,
                    status_code="UNAUTHENTICATED",
                    org_path=account.org_path,
                    object_type="session",
                    object_id=login.session_id,
                    detail="刷新令牌被重复使用，会话已撤销",
                )
                reused = (account.account_id, login.session_id)
            elif (
                login.revoked_at is not None
                or record.expires_at <= now
                or login.expires_at <= now
                or account.status == AccountStatus.RETIRED
                or self._locked(account, now)
            ):
                refused = True
            else:
                await self.deps.sessions.mark_refresh_used(session, record.token_hash, now)
                refresh = _new_refresh_token()
                await self.deps.sessions.add_refresh(
                    session,
                    token_hash=_refresh_hash(refresh),
                    session_id=login.session_id,
                    now=now,
                    expires_at=login.expires_at,
                )
                await self.deps.sessions.touch(session, login.session_id, now)
        if reused is not None:
            await self.deps.revocations.revoke_sessions([reused[1]])
            raise Unauthenticated(
                "刷新令牌已被使用，会话已撤销，请重新登录", code="REFRESH_TOKEN_REUSED"
            )
        if refused:
            raise Unauthenticated("刷新令牌无效或已过期，请重新登录", code="REFRESH_TOKEN_INVALID")
        assert account is not None and login is not None
        return self._issue(account, login.session_id, login.mfa_verified, refresh, login.expires_at)

    async def verify(self, access_token: str) -> AccessClaims:
        """Signature, algorithm, expiry, then revocation (Redis and database) and account state."""
        now = self.deps.now()
        try:
            raw = verify_token(access_token or "", self.deps.keys.verifiers, now=now.timestamp())
            claims = AccessClaims.from_dict(raw)
        except TokenError as exc:
            raise Unauthenticated(str(exc), code=exc.code) from None
        except (KeyError, ValueError, TypeError):
            raise Unauthenticated("令牌格式错误", code="TOKEN_MALFORMED") from None
        revoked = await self.deps.revocations.is_revoked(
            jti=claims.jti,
            session_id=claims.session_id,
            account_id=claims.account_id,
            issued_at=claims.issued_at,
        )
        if not revoked:
            async with self.deps.db.read() as session:
                login = await self.deps.sessions.get(session, claims.session_id)
                account = await self.deps.accounts.get(session, claims.account_id)
            revoked = (
                login is None
                or login.revoked_at is not None
                or account is None
                or account.status == AccountStatus.RETIRED
                or self._locked(account, now)
                or (
                    account.sessions_revoked_before is not None
                    and claims.issued_at < int(account.sessions_revoked_before.timestamp())
                )
            )
        if revoked:
            raise Unauthenticated("令牌已被撤销，请重新登录", code="TOKEN_REVOKED")
        return claims

    async def logout(
        self,
        caller: CallerContext,
        *,
        session_id: str,
        jti: str,
        expires_at: int,
        all_sessions: bool,
    ) -> int:
        """Revoke the caller's session (or all of its sessions) at once."""
        if not all_sessions and not session_id:
            raise InvalidArgument("缺少会话信息", code="SESSION_REQUIRED")
        now = self.deps.now()
        async with self.deps.db.write() as session:
            if all_sessions:
                revoked = await self.deps.sessions.revoke(
                    session, now=now, reason="logout_all", account_id=caller.account_id
                )
            else:
                login = await self.deps.sessions.get(session, session_id)
                if login is None or login.account_id != caller.account_id:
                    raise NotFound("会话不存在", code="SESSION_NOT_FOUND")
                revoked = await self.deps.sessions.revoke(
                    session, now=now, reason="logout", session_id=session_id
                )
            await self.audit.record(
                session,
                Actor.of(caller),
                action="identity.Logout",
                outcome=OUTCOME_SUCCEEDED,
                object_type="session",
                object_id=session_id,
                detail="退出全部会话" if all_sessions else "退出登录",
            )
        await self.deps.revocations.revoke_sessions(revoked)
        if jti:
            await self.deps.revocations.revoke_token(jti, expires_at)
        return len(revoked)

    # --- own credentials ----------------------------------------------------------------------

    async def change_password(
        self,
        caller: CallerContext,
        *,
        current_password: str,
        new_password: str,
        session_id: str = "",
    ) -> datetime:
        """The caller changes its password (policy, not one of the last 5); other sessions end."""
        async with self.deps.db.read() as session:
            account = await self._own(session, caller)
        if not await asyncio.to_thread(
            verify_password, current_password or "", account.password_hash
        ):
            await self.audit.record_alone(
                Actor.of(caller),
                action="identity.ChangePassword",
                outcome=OUTCOME_DENIED,
                status_code="UNAUTHENTICATED",
                object_type="account",
                object_id=account.account_id,
                detail="修改密码失败：当前密码错误",
            )
            raise Unauthenticated(
                "当前密码错误", code="CURRENT_PASSWORD_WRONG", field="current_password"
            )
        policy = self.deps.password_policy
        policy.check_strength(new_password or "", username=account.username)
        async with self.deps.db.read() as session:
            recent = await self.deps.accounts.recent_password_hashes(
                session, account.account_id, policy.history
            )
        for old in recent:
            if await asyncio.to_thread(verify_password, new_password, old):
                raise InvalidArgument(
                    f"新密码不能与最近{policy.history}次使用过的密码相同",
                    code="PASSWORD_REUSED",
                    field="new_password",
                )
        new_hash = await asyncio.to_thread(
            hash_password, new_password, iterations=self.deps.settings.password_iterations
        )
        now = self.deps.now()
        async with self.deps.db.write() as session:
            account = await self._own(session, caller)
            account.password_hash = new_hash
            account.password_changed_at = now
            account.password_expires_at = policy.expires_at(now)
            account.password_change_required = False
            await self.deps.accounts.save(session, account, now)
            await self.deps.accounts.add_password_history(
                session, account.account_id, new_hash, now
            )
            revoked = await self.deps.sessions.revoke(
                session,
                now=now,
                reason="password_changed",
                account_id=account.account_id,
                except_session=session_id or None,
            )
            msg = events_pb2.AccountPasswordChanged(account_id=account.account_id, reset=False)
            msg.meta.CopyFrom(event_meta(caller=caller, org_path=account.org_path))
            await self.deps.outbox.add(session, ACCOUNT_PASSWORD_CHANGED, msg)
            await self.audit.record(
                session,
                Actor.of(caller),
                action="identity.ChangePassword",
                outcome=OUTCOME_SUCCEEDED,
                org_path=account.org_path,
                object_type="account",
                object_id=account.account_id,
                detail="修改密码",
            )
        await self.deps.revocations.revoke_sessions(revoked)
        assert account.password_expires_at is not None
        return account.password_expires_at

    async def enroll_totp(self, caller: CallerContext) -> tuple[str, str]:
        """Start TOTP enrolment: a pending secret, active after confirm_totp."""
        secret = new_totp_secret()
        async with self.deps.db.write() as session:
            account = await self._own(session, caller)
            if account.totp_enabled:
                raise FailedPrecondition(
                    "已启用动态口令；如需更换请联系管理员重置", code="TOTP_ALREADY_ENABLED"
                )
            account.totp_pending_secret = secret
            await self.deps.accounts.save(session, account, self.deps.now())
        return secret, provisioning_uri(
            secret, username=account.username, issuer=self.deps.settings.totp_issuer
        )

    async def confirm_totp(self, caller: CallerContext, code: str) -> Account:
        """Activate the pending TOTP secret with a code from the authenticator."""
        now = self.deps.now()
        async with self.deps.db.write() as session:
            account = await self._own(session, caller)
            if not account.totp_pending_secret:
                raise FailedPrecondition("请先开始绑定动态口令", code="TOTP_NOT_ENROLLING")
            step = totp_step(account.totp_pending_secret, code, now)
            if step is None:
                raise InvalidArgument("动态口令错误", code="TOTP_INVALID", field="totp_code")
            account.totp_secret, account.totp_pending_secret, account.totp_last_step = (
                account.totp_pending_secret,
                "",
                step,
            )
            await self.deps.accounts.save(session, account, now)
            await self.audit.record(
                session,
                Actor.of(caller),
                action="identity.ConfirmTotp",
                outcome=OUTCOME_SUCCEEDED,
                org_path=account.org_path,
                object_type="account",
                object_id=account.account_id,
                detail="绑定动态口令",
            )
        return account

    # --- helpers ------------------------------------------------------------------------------

    async def _own(self, session: object, caller: CallerContext) -> Account:
        account = await self.deps.accounts.get(session, caller.account_id)  # type: ignore[arg-type]
        if account is None or account.status == AccountStatus.RETIRED:
            raise Unauthenticated("账号不存在或已注销", code="ACCOUNT_NOT_FOUND")
        return account

    @staticmethod
    def _locked(account: Account, now: datetime) -> bool:
        return account.status == AccountStatus.LOCKED and (
            account.locked_until is None or account.locked_until > now
        )

    @staticmethod
    def _locked_error(account: Account) -> PermissionDenied:
        details = {"locked_until": account.locked_until.isoformat()} if account.locked_until else {}
        message = "账号已锁定" + (
            f"，请于{account.locked_until.astimezone().strftime('%H:%M')}后重试或联系管理员解锁"
            if account.locked_until
            else "，请联系管理员解锁"
        )
        return PermissionDenied(message, code="ACCOUNT_LOCKED", details=details)

    def _actor(self, account: Account | None, client: ClientInfo) -> Actor:
        if account is None:
            return Actor(
                client_ip=client.ip, user_agent=client.user_agent, request_id=client.request_id
            )
        return Actor(
            account_id=account.account_id,
            org_code=account.org_code,
            org_path=account.org_path,
            roles=tuple(account.role_names()),
            request_id=client.request_id,
            client_ip=client.ip,
            user_agent=client.user_agent,
        )

    async def _audit_login(
        self, account: Account, client: ClientInfo, outcome: int, status: str, detail: str
    ) -> None:
        await self.audit.record_alone(
            self._actor(account, client),
            action="identity.Login",
            outcome=outcome,
            status_code=status,
            org_path=account.org_path,
            object_type="account",
            object_id=account.account_id,
            detail=detail,
        )


def _new_refresh_token() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()

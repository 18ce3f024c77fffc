"""Queries of accounts (账号), with personal data (身份证号, phone, TOTP secret) encrypted and decrypted
here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    and_,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.crypto import FieldCipher
from zizhu_common.errors import Conflict

from identity_service import tables as t
from identity_service.domain.accounts import (
    Account,
    AccountKind,
    AccountStatus,
    IdType,
    Role,
)
from identity_service.domain.orgs import Level
from identity_service.repository.base import (
    like_prefix,
    utc,
)

# Accounts
# ---------------------------------------------------------------------------------------------

ID_CONTEXT = "account.id_number"
PHONE_CONTEXT = "account.phone"
TOTP_CONTEXT = "account.totp_secret"


@dataclass(frozen=True)
class AccountFilter:
    """ListAccounts filters."""

    scope_path: str
    direct_org_code: str = ""
    roles: tuple[Role, ...] = ()
    statuses: tuple[AccountStatus, ...] = ()
    kind: AccountKind | None = None
    query: str = ""


class AccountRepository:
    """The account and password_history tables; ID, phone and TOTP secrets encrypted with SM4."""

    def __init__(self, cipher: FieldCipher) -> None:
        self.cipher = cipher

    def id_index(self, id_number: str) -> str:
        """Blind index of a normalised ID number."""
        return self.cipher.blind_index(id_number, context=ID_CONTEXT)

    def phone_index(self, phone: str) -> str:
        """Blind index of a normalised phone number."""
        return self.cipher.blind_index(phone, context=PHONE_CONTEXT)

    def _select(self) -> Any:
        return select(
            t.account, t.org.c.name.label("org_name"), t.org.c.level.label("org_level")
        ).join(t.org, t.org.c.org_code == t.account.c.org_code)

    def _account(self, row: Any) -> Account:
        dec = self.cipher.decrypt
        return Account(
            account_id=row.account_id,
            username=row.username,
            real_name=row.real_name,
            id_type=IdType(row.id_type),
            id_number=dec(row.id_number_enc, context=ID_CONTEXT),
            phone=dec(row.phone_enc, context=PHONE_CONTEXT),
            org_code=row.org_code,
            org_path=row.org_path,
            org_level=Level(row.org_level),
            org_name=row.org_name,
            roles=tuple(Role(r) for r in row.roles.split(",") if r),
            kind=AccountKind(row.kind),
            status=AccountStatus(row.status),
            lock_reason=row.lock_reason,
            locked_until=utc(row.locked_until),
            failed_logins=row.failed_logins,
            password_hash=row.password_hash,
            password_changed_at=utc(row.password_changed_at),
            password_expires_at=utc(row.password_expires_at),
            password_change_required=bool(row.password_change_required),
            totp_secret=dec(row.totp_secret_enc, context=TOTP_CONTEXT)
            if row.totp_secret_enc
            else "",
            totp_pending_secret=(
                dec(row.totp_pending_enc, context=TOTP_CONTEXT) if row.totp_pending_enc else ""
            ),
            totp_last_step=int(row.totp_last_step or 0),
            last_login_at=utc(row.last_login_at),
            sessions_revoked_before=utc(row.sessions_revoked_before),
            created_by=row.created_by,
            created_at=utc(row.created_at),
            updated_at=utc(row.updated_at),
            retired_at=utc(row.retired_at),
            version=row.version,
        )

    def _values(self, a: Account) -> dict[str, Any]:
        enc = self.cipher.encrypt
        return {
            "username": a.username,
            "real_name": a.real_name,
            "kind": a.kind.value,
            "id_type": a.id_type.value,
            "id_number_enc": enc(a.id_number, context=ID_CONTEXT),
            "id_number_bidx": self.id_index(a.id_number),
            "phone_enc": enc(a.phone, context=PHONE_CONTEXT),
            "phone_bidx": self.phone_index(a.phone),
            "org_code": a.org_code,
            "org_path": a.org_path,
            "roles": ",".join(a.role_names()),
            "status": a.status.value,
            "lock_reason": a.lock_reason,
            "locked_until": a.locked_until,
            "failed_logins": a.failed_logins,
            "password_hash": a.password_hash,
            "password_changed_at": a.password_changed_at,
            "password_expires_at": a.password_expires_at,
            "password_change_required": a.password_change_required,
            "totp_secret_enc": enc(a.totp_secret, context=TOTP_CONTEXT) if a.totp_secret else None,
            "totp_pending_enc": (
                enc(a.totp_pending_secret, context=TOTP_CONTEXT) if a.totp_pending_secret else None
            ),
            "totp_last_step": a.totp_last_step,
            "last_login_at": a.last_login_at,
            "sessions_revoked_before": a.sessions_revoked_before,
            "created_by": a.created_by,
            "retired_at": a.retired_at,
        }

    async def get(self, session: AsyncSession, account_id: str) -> Account | None:
        """One account by id."""
        row = (
            await session.execute(self._select().where(t.account.c.account_id == account_id))
        ).first()
        return self._account(row) if row else None

    async def get_by_username(self, session: AsyncSession, username: str) -> Account | None:
        """One account by login name."""
        row = (
            await session.execute(self._select().where(t.account.c.username == username))
        ).first()
        return self._account(row) if row else None

    async def username_taken(self, session: AsyncSession, username: str) -> bool:
        """True when the login name is used (by any account, retired ones included)."""
        found = await session.execute(
            select(t.account.c.account_id).where(t.account.c.username == username)
        )
        return found.first() is not None

    async def find_by_id_number(self, session: AsyncSession, id_number: str) -> list[Account]:
        """Accounts of a person, found through the blind index."""
        rows = await session.execute(
            self._select().where(t.account.c.id_number_bidx == self.id_index(id_number))
        )
        return [self._account(r) for r in rows]

    async def insert(self, session: AsyncSession, account: Account, now: datetime) -> None:
        """Add a new account."""
        await session.execute(
            insert(t.account).values(
                account_id=account.account_id,
                created_at=now,
                updated_at=now,
                version=1,
                **self._values(account),
            )
        )
        account.created_at = account.updated_at = now
        account.version = 1

    async def save(self, session: AsyncSession, account: Account, now: datetime) -> None:
        """Store every mutable field; ABORTED when someone else changed the account meanwhile."""
        result = await session.execute(
            update(t.account)
            .where(
                t.account.c.account_id == account.account_id, t.account.c.version == account.version
            )
            .values(updated_at=now, version=account.version + 1, **self._values(account))
        )
        if result.rowcount != 1:
            raise Conflict("账号已被他人修改，请刷新后重试", code="VERSION_CONFLICT")
        account.version += 1
        account.updated_at = now

    async def list(
        self, session: AsyncSession, flt: AccountFilter, *, offset: int, limit: int
    ) -> tuple[list[Account], int]:
        """A page of accounts ordered by org path and login name, and the total matching."""
        c = t.account.c
        conds = [c.org_path.like(like_prefix(flt.scope_path), escape="\\")]
        if flt.direct_org_code:
            conds.append(c.org_code == flt.direct_org_code)
        if flt.roles:
            conds.append(or_(*[("," + c.roles + ",").like(f"%,{r.value},%") for r in flt.roles]))
        if flt.statuses:
            conds.append(c.status.in_([s.value for s in flt.statuses]))
        if flt.kind is not None:
            conds.append(c.kind == flt.kind.value)
        if flt.query:
            conds.append(
                or_(
                    c.username.contains(flt.query, autoescape=True),
                    c.real_name.contains(flt.query, autoescape=True),
                )
            )
        where = and_(*conds)
        total = (
            await session.execute(select(func.count()).select_from(t.account).where(where))
        ).scalar_one()
        rows = await session.execute(
            self._select().where(where).order_by(c.org_path, c.username).offset(offset).limit(limit)
        )
        return [self._account(r) for r in rows], int(total)

    async def recent_password_hashes(
        self, session: AsyncSession, account_id: str, n: int
    ) -> list[str]:
        """The last n password hashes (newest first), the current one included."""
        rows = await session.execute(
            select(t.password_history.c.password_hash)
            .where(t.password_history.c.account_id == account_id)
            .order_by(t.password_history.c.id.desc())
            .limit(n)
        )
        return list(rows.scalars())

    async def add_password_history(
        self, session: AsyncSession, account_id: str, password_hash: str, now: datetime
    ) -> None:
        """Remember a password hash for the not-one-of-the-last-5 rule."""
        await session.execute(
            insert(t.password_history).values(
                account_id=account_id, password_hash=password_hash, created_at=now
            )
        )

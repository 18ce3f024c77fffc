"""Queries of login sessions and their refresh tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from identity_service import tables as t
from identity_service.repository.base import (
    utc,
)

# Sessions and refresh tokens
# ---------------------------------------------------------------------------------------------


@dataclass
class SessionRecord:
    """A login session (a refresh-token family)."""

    session_id: str
    account_id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    mfa_verified: bool


@dataclass
class RefreshRecord:
    """One refresh token (stored as its SM3 hash)."""

    token_hash: str
    session_id: str
    expires_at: datetime
    used_at: datetime | None


class SessionRepository:
    """The auth_session and refresh_token tables."""

    async def create(
        self,
        session: AsyncSession,
        *,
        session_id: str,
        account_id: str,
        now: datetime,
        expires_at: datetime,
        mfa_verified: bool,
        client_ip: str,
        user_agent: str,
    ) -> None:
        """Open a session."""
        await session.execute(
            insert(t.auth_session).values(
                session_id=session_id,
                account_id=account_id,
                created_at=now,
                expires_at=expires_at,
                mfa_verified=mfa_verified,
                client_ip=client_ip[:64],
                user_agent=user_agent[:300],
                last_used_at=now,
                revoke_reason="",
            )
        )

    async def get(self, session: AsyncSession, session_id: str) -> SessionRecord | None:
        """One session."""
        row = (
            await session.execute(
                select(t.auth_session).where(t.auth_session.c.session_id == session_id)
            )
        ).first()
        if row is None:
            return None
        return SessionRecord(
            session_id=row.session_id,
            account_id=row.account_id,
            created_at=utc(row.created_at),  # type: ignore[arg-type]
            expires_at=utc(row.expires_at),  # type: ignore[arg-type]
            revoked_at=utc(row.revoked_at),
            mfa_verified=bool(row.mfa_verified),
        )

    async def touch(self, session: AsyncSession, session_id: str, now: datetime) -> None:
        """Record use of a session."""
        await session.execute(
            update(t.auth_session)
            .where(t.auth_session.c.session_id == session_id)
            .values(last_used_at=now)
        )

    async def revoke(
        self,
        session: AsyncSession,
        *,
        now: datetime,
        reason: str,
        session_id: str | None = None,
        account_id: str | None = None,
        except_session: str | None = None,
    ) -> list[str]:
        """Revoke one session or every open session of an account; returns the revoked ids."""
        c = t.auth_session.c
        conds = [c.revoked_at.is_(None)]
        if session_id is not None:
            conds.append(c.session_id == session_id)
        if account_id is not None:
            conds.append(c.account_id == account_id)
        if except_session is not None:
            conds.append(c.session_id != except_session)
        ids = list((await session.execute(select(c.session_id).where(*conds))).scalars())
        if ids:
            await session.execute(
                update(t.auth_session)
                .where(c.session_id.in_(ids))
                .values(revoked_at=now, revoke_reason=reason[:100])
            )
        return ids

    async def add_refresh(
        self,
        session: AsyncSession,
        *,
        token_hash: str,
        session_id: str,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        """Store a new refresh token of a session."""
        await session.execute(
            insert(t.refresh_token).values(
                token_hash=token_hash, session_id=session_id, created_at=now, expires_at=expires_at
            )
        )

    async def get_refresh_for_update(
        self, session: AsyncSession, token_hash: str
    ) -> RefreshRecord | None:
        """A refresh token, row-locked (PostgreSQL) so that two uses cannot both succeed."""
        row = (
            await session.execute(
                select(t.refresh_token)
                .where(t.refresh_token.c.token_hash == token_hash)
                .with_for_update()
            )
        ).first()
        if row is None:
            return None
        return RefreshRecord(row.token_hash, row.session_id, utc(row.expires_at), utc(row.used_at))  # type: ignore[arg-type]

    async def mark_refresh_used(
        self, session: AsyncSession, token_hash: str, now: datetime
    ) -> None:
        """Spend a refresh token."""
        await session.execute(
            update(t.refresh_token)
            .where(t.refresh_token.c.token_hash == token_hash)
            .values(used_at=now)
        )

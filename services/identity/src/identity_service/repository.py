"""Queries of the identity database, returning domain objects (personal data decrypted here)."""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    DateTime,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
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
from identity_service.domain.audit import ChainRow
from identity_service.domain.orgs import Level, Org, OrgStatus, Stage, path_depth

CHUNK = 500


def utc(moment: datetime | None) -> datetime | None:
    """Aware UTC datetimes from either backend (SQLite returns naive values)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def like_prefix(prefix: str) -> str:
    """A LIKE pattern for `startswith(prefix)` (paths hold digits and slashes only)."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# ---------------------------------------------------------------------------------------------
# Organisations
# ---------------------------------------------------------------------------------------------

_ORG_COLUMNS = tuple(c.name for c in t.org.columns)
_OrgRow = namedtuple("_OrgRow", _ORG_COLUMNS)  # type: ignore[misc]
_ORG_TIMESTAMPS = tuple(i for i, c in enumerate(t.org.columns) if isinstance(c.type, DateTime))


def _stages_text(stages: Iterable[Stage]) -> str:
    values = [s.value for s in stages]
    return "," + ",".join(values) + "," if values else ""


def _org(row: Any) -> Org:
    return Org(
        code=row.org_code,
        name=row.name,
        level=Level(row.level),
        parent_code=row.parent_code,
        org_path=row.org_path,
        region_code=row.region_code,
        school_category=row.school_category,
        stages=tuple(Stage(s) for s in row.stages.split(",") if s),
        ownership=row.ownership,
        status=OrgStatus(row.status),
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
        retired_at=utc(row.retired_at),
        retire_reason=row.retire_reason,
        version=row.version,
    )


class ReaderUnavailable(Exception):
    """The direct SQLite reader could not answer; use the session path instead."""


class SqliteOrgReader:
    """GetOrg's reads straight from the SQLite file, on the calling (event loop) thread.

    Through aiosqlite every statement, fetch and transaction end is handed to the connection's
    thread and back; for a primary-key read (~10 µs with the pages cached) those hand-offs cost
    many times the read and make the threads contend for the GIL. This reader keeps one read-only
    connection of its own and reads an org, its active child count and its ancestors in one
    snapshot without leaving the loop. WAL readers never wait for the writer; anything unusual
    (SQLITE_BUSY after a short timeout, a missing file) raises ReaderUnavailable so that the
    caller uses the ordinary session path. Only for file databases (not `:memory:`).

    Answers are kept in memory while the database file is unchanged: SQLite's `data_version`
    (one pragma on this connection) changes whenever any other connection, of this process or
    another, commits, and the whole cache is dropped then. A hit costs that pragma and a dict
    look-up instead of three statements and five rows turned into Orgs. Cached Orgs are shared
    by every caller that reads them: callers must not modify them.
    """

    def __init__(self, path: str, *, busy_timeout_ms: int = 50, cache_size: int = 4096) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self.cache_size = cache_size
        self._conn: sqlite3.Connection | None = None
        self._cache: dict[str, tuple[Org, dict[str, Org]]] = {}
        self._cache_version: int | None = None
        self.hits = 0
        columns = ", ".join(f"org.{name}" for name in _ORG_COLUMNS)
        self._get_sql = (
            f"SELECT {columns}, (SELECT count(*) FROM org AS child WHERE child.parent_code = "
            "org.org_code AND child.status = ?) FROM org WHERE org.org_code = ?"
        )
        self._many_sql = f"SELECT {columns} FROM org WHERE org.org_code IN (%s)"

    @classmethod
    def for_url(cls, url: str) -> SqliteOrgReader | None:
        """A reader for a `sqlite+aiosqlite:///file` URL; None for other databases."""
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            return None
        if (parsed.query or {}).get("mode") == "memory":
            return None
        return cls(str(parsed.database))

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            uri = Path(self.path).absolute().as_uri() + "?mode=ro"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
            conn.execute("PRAGMA query_only=ON")
            conn.execute("PRAGMA mmap_size=268435456")
            self._conn = conn
        return self._conn

    def close(self) -> None:
        """Close the connection (reopened on next use)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._cache.clear()
        self._cache_version = None

    @staticmethod
    def _org(values: Sequence[Any]) -> Org:
        row = list(values)
        for i in _ORG_TIMESTAMPS:
            if isinstance(row[i], str):
                row[i] = datetime.fromisoformat(row[i])
        return _org(_OrgRow(*row))

    def org_detail(self, code: str) -> tuple[Org | None, dict[str, Org]]:
        """The org with its active child count, and its ancestors by code, in one snapshot
        (from the cache while the database is unchanged; unknown codes are not cached)."""
        try:
            conn = self._connection()
            version = conn.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error as exc:
            self.close()
            raise ReaderUnavailable(str(exc)) from exc
        if version != self._cache_version:
            self._cache.clear()
            self._cache_version = version
        cached = self._cache.get(code)
        if cached is not None:
            self.hits += 1
            return cached
        org, ancestors = self._read_detail(code)
        # Read after the version: a commit in between changes the version again, and the next
        # call drops this entry with the rest.
        if org is not None:
            if len(self._cache) >= self.cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[code] = (org, ancestors)
        return org, ancestors

    def _read_detail(self, code: str) -> tuple[Org | None, dict[str, Org]]:
        try:
            conn = self._connection()
            conn.execute("BEGIN")
            try:
                row = conn.execute(self._get_sql, (OrgStatus.ACTIVE.value, code)).fetchone()
                if row is None:
                    return None, {}
                org = self._org(row[:-1])
                org.child_count = int(row[-1])
                codes = org.ancestor_codes()
                ancestors: dict[str, Org] = {}
                if codes:
                    sql = self._many_sql % ",".join("?" * len(codes))
                    for values in conn.execute(sql, codes).fetchall():
                        ancestor = self._org(values)
                        ancestors[ancestor.code] = ancestor
                return org, ancestors
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self.close()
            raise ReaderUnavailable(str(exc)) from exc


@dataclass(frozen=True)
class OrgFilter:
    """ListSubtree filters."""

    root_path: str
    include_root: bool = False
    max_depth: int = 0
    levels: tuple[Level, ...] = ()
    stages: tuple[Stage, ...] = ()
    query: str = ""
    include_retired: bool = False


def _active_children() -> Any:
    child = t.org.alias("child")
    return (
        select(func.count())
        .select_from(child)
        .where(child.c.parent_code == t.org.c.org_code, child.c.status == OrgStatus.ACTIVE.value)
        .scalar_subquery()
    )


# GetOrg's statements, built once (building and cache-keying a select costs more than the read).
_ORG_WITH_CHILDREN = select(t.org, _active_children().label("active_children")).where(
    t.org.c.org_code == bindparam("code")
)
_ORGS_BY_CODE = select(t.org).where(t.org.c.org_code.in_(bindparam("codes", expanding=True)))


class OrgRepository:
    """The org table."""

    async def get(self, session: AsyncSession, code: str) -> Org | None:
        """One org by code."""
        row = (await session.execute(select(t.org).where(t.org.c.org_code == code))).first()
        return _org(row) if row else None

    async def org_detail(
        self, conn: AsyncConnection, code: str
    ) -> tuple[Org | None, dict[str, Org]]:
        """One org by code with its number of active direct children, and its ancestors by code:
        two statements on a plain connection (GetOrg; see SqliteOrgReader for SQLite)."""
        row = (await conn.execute(_ORG_WITH_CHILDREN, {"code": code})).first()
        if row is None:
            return None, {}
        org = _org(row)
        org.child_count = int(row.active_children)
        codes = org.ancestor_codes()
        if not codes:
            return org, {}
        rows = await conn.execute(_ORGS_BY_CODE, {"codes": codes})
        return org, {r.org_code: _org(r) for r in rows}

    async def get_many(self, session: AsyncSession, codes: Iterable[str]) -> dict[str, Org]:
        """Orgs by code (unknown codes are absent)."""
        found: dict[str, Org] = {}
        wanted = sorted(set(codes))
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            rows = await session.execute(select(t.org).where(t.org.c.org_code.in_(chunk)))
            found.update({r.org_code: _org(r) for r in rows})
        return found

    async def insert(self, session: AsyncSession, org: Org, now: datetime) -> None:
        """Add a new org."""
        await session.execute(
            insert(t.org).values(
                org_code=org.code,
                name=org.name,
                level=org.level.value,
                parent_code=org.parent_code,
                org_path=org.org_path,
                depth=path_depth(org.org_path),
                region_code=org.region_code,
                school_category=org.school_category,
                stages=_stages_text(org.stages),
                ownership=org.ownership,
                status=org.status.value,
                retire_reason="",
                created_at=now,
                updated_at=now,
                version=1,
            )
        )

    async def update_fields(self, session: AsyncSession, org: Org, now: datetime) -> None:
        """Store name, region, stages, ownership and status changes (not the path)."""
        await session.execute(
            update(t.org)
            .where(t.org.c.org_code == org.code)
            .values(
                name=org.name,
                region_code=org.region_code,
                stages=_stages_text(org.stages),
                ownership=org.ownership,
                status=org.status.value,
                retire_reason=org.retire_reason,
                retired_at=org.retired_at,
                updated_at=now,
                version=t.org.c.version + 1,
            )
        )

    async def move(
        self, session: AsyncSession, *, code: str, new_parent: str, new_path: str, now: datetime
    ) -> str:
        """Re-parent an org and rewrite the paths of its subtree and their accounts; returns the
        old path."""
        old_path = (
            await session.execute(select(t.org.c.org_path).where(t.org.c.org_code == code))
        ).scalar_one()
        delta = path_depth(new_path) - path_depth(old_path)
        pattern = like_prefix(old_path)
        await session.execute(
            update(t.org)
            .where(t.org.c.org_code == code)
            .values(parent_code=new_parent, updated_at=now, version=t.org.c.version + 1)
        )
        tail = func.substr(t.org.c.org_path, len(old_path) + 1)
        await session.execute(
            update(t.org)
            .where(t.org.c.org_path.like(pattern, escape="\\"))
            .values(org_path=literal(new_path) + tail, depth=t.org.c.depth + delta)
        )
        account_tail = func.substr(t.account.c.org_path, len(old_path) + 1)
        await session.execute(
            update(t.account)
            .where(t.account.c.org_path.like(pattern, escape="\\"))
            .values(org_path=literal(new_path) + account_tail)
        )
        return old_path

    async def list_subtree(
        self, session: AsyncSession, flt: OrgFilter, *, offset: int, limit: int
    ) -> tuple[list[Org], int]:
        """A page of a subtree ordered by path, and the total matching."""
        c = t.org.c
        conds = [c.org_path.like(like_prefix(flt.root_path), escape="\\")]
        if not flt.include_root:
            conds.append(c.org_path != flt.root_path)
        if flt.max_depth > 0:
            conds.append(c.depth <= path_depth(flt.root_path) + flt.max_depth)
        if flt.levels:
            conds.append(c.level.in_([lv.value for lv in flt.levels]))
        if flt.stages:
            conds.append(or_(*[c.stages.like(f"%,{s.value},%") for s in flt.stages]))
        if flt.query:
            conds.append(
                or_(
                    c.name.contains(flt.query, autoescape=True),
                    c.org_code.startswith(flt.query, autoescape=True),
                )
            )
        if not flt.include_retired:
            conds.append(c.status == OrgStatus.ACTIVE.value)
        where = and_(*conds)
        total = (
            await session.execute(select(func.count()).select_from(t.org).where(where))
        ).scalar_one()
        rows = await session.execute(
            select(t.org).where(where).order_by(c.org_path).offset(offset).limit(limit)
        )
        orgs = [_org(r) for r in rows]
        counts = await self.child_counts(session, [o.code for o in orgs])
        for o in orgs:
            o.child_count = counts.get(o.code, 0)
        return orgs, int(total)

    async def child_counts(self, session: AsyncSession, codes: Sequence[str]) -> dict[str, int]:
        """Active direct children per org."""
        counts: dict[str, int] = {}
        for start in range(0, len(codes), CHUNK):
            rows = await session.execute(
                select(t.org.c.parent_code, func.count())
                .where(
                    t.org.c.parent_code.in_(codes[start : start + CHUNK]),
                    t.org.c.status == OrgStatus.ACTIVE.value,
                )
                .group_by(t.org.c.parent_code)
            )
            counts.update({code: int(n) for code, n in rows})
        return counts

    async def count_active_accounts(self, session: AsyncSession, org_code: str) -> int:
        """Accounts of an org that are not retired."""
        return int(
            (
                await session.execute(
                    select(func.count())
                    .select_from(t.account)
                    .where(
                        t.account.c.org_code == org_code,
                        t.account.c.status != AccountStatus.RETIRED.value,
                    )
                )
            ).scalar_one()
        )


# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# Audit log
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditColumns:
    """The indexed columns of one entry, extracted from its payload."""

    event_id: str
    occurred_at: datetime
    actor_account_id: str
    actor_org_code: str
    org_path: str
    action: str
    object_type: str
    object_id: str
    outcome: int
    sensitive_read: bool
    correlation_id: str


@dataclass(frozen=True)
class AuditRecord:
    """One stored entry."""

    seq: int
    recorded_at: datetime
    payload: bytes
    prev_hash: str
    hash: str
    columns: AuditColumns


@dataclass(frozen=True)
class AuditFilter:
    """QueryAuditLog filters."""

    scope_path: str
    actor_account_id: str = ""
    action_prefix: str = ""
    object_type: str = ""
    object_id: str = ""
    outcome: int = 0
    sensitive_reads_only: bool = False
    since: datetime | None = None
    until: datetime | None = None
    correlation_id: str = ""


@dataclass(frozen=True)
class AuditHead:
    """The chain head and the purge checkpoint."""

    last_seq: int
    last_hash: str
    purged_through_seq: int
    purged_through_hash: str


def _audit_record(row: Any) -> AuditRecord:
    return AuditRecord(
        seq=int(row.seq),
        recorded_at=utc(row.recorded_at),  # type: ignore[arg-type]
        payload=bytes(row.payload),
        prev_hash=row.prev_hash,
        hash=row.hash,
        columns=AuditColumns(
            event_id=row.event_id,
            occurred_at=utc(row.occurred_at),  # type: ignore[arg-type]
            actor_account_id=row.actor_account_id,
            actor_org_code=row.actor_org_code,
            org_path=row.org_path,
            action=row.action,
            object_type=row.object_type,
            object_id=row.object_id,
            outcome=int(row.outcome),
            sensitive_read=bool(row.sensitive_read),
            correlation_id=row.correlation_id,
        ),
    )


class AuditRepository:
    """The append-only audit_log and its head row."""

    async def head_for_update(self, session: AsyncSession) -> AuditHead:
        """The chain head, locked until commit (appends are serialised so seq stays gap-free)."""
        row = (
            await session.execute(
                select(t.audit_head).where(t.audit_head.c.id == 1).with_for_update()
            )
        ).one()
        return AuditHead(
            row.last_seq, row.last_hash, row.purged_through_seq, row.purged_through_hash
        )

    async def head(self, session: AsyncSession) -> AuditHead:
        """The chain head (unlocked)."""
        row = (await session.execute(select(t.audit_head).where(t.audit_head.c.id == 1))).one()
        return AuditHead(
            row.last_seq, row.last_hash, row.purged_through_seq, row.purged_through_hash
        )

    async def known_event_ids(self, session: AsyncSession, event_ids: Sequence[str]) -> set[str]:
        """Which event ids are already stored."""
        found: set[str] = set()
        for start in range(0, len(event_ids), CHUNK):
            rows = await session.execute(
                select(t.audit_log.c.event_id).where(
                    t.audit_log.c.event_id.in_(event_ids[start : start + CHUNK])
                )
            )
            found.update(rows.scalars())
        return found

    async def append(
        self,
        session: AsyncSession,
        rows: Sequence[tuple[int, datetime, bytes, str, str, AuditColumns]],
        head: AuditHead,
    ) -> None:
        """Insert chained rows (seq, recorded_at, payload, prev_hash, hash, columns) and move the head."""
        await session.execute(
            insert(t.audit_log),
            [
                {
                    "seq": seq,
                    "recorded_at": recorded_at,
                    "payload": payload,
                    "prev_hash": prev_hash,
                    "hash": digest,
                    **cols.__dict__,
                }
                for seq, recorded_at, payload, prev_hash, digest, cols in rows
            ],
        )
        await session.execute(
            update(t.audit_head)
            .where(t.audit_head.c.id == 1)
            .values(last_seq=head.last_seq, last_hash=head.last_hash)
        )

    async def query(
        self, session: AsyncSession, flt: AuditFilter, *, offset: int, limit: int
    ) -> tuple[list[AuditRecord], int]:
        """A page of entries, newest first, and the total matching."""
        c = t.audit_log.c
        conds = [c.org_path.like(like_prefix(flt.scope_path), escape="\\")]
        if flt.actor_account_id:
            conds.append(c.actor_account_id == flt.actor_account_id)
        if flt.action_prefix:
            conds.append(c.action.startswith(flt.action_prefix, autoescape=True))
        if flt.object_type:
            conds.append(c.object_type == flt.object_type)
        if flt.object_id:
            conds.append(c.object_id == flt.object_id)
        if flt.outcome:
            conds.append(c.outcome == flt.outcome)
        if flt.sensitive_reads_only:
            conds.append(c.sensitive_read.is_(True))
        if flt.since is not None:
            conds.append(c.recorded_at >= flt.since)
        if flt.until is not None:
            conds.append(c.recorded_at < flt.until)
        if flt.correlation_id:
            conds.append(c.correlation_id == flt.correlation_id)
        where = and_(*conds)
        total = (
            await session.execute(select(func.count()).select_from(t.audit_log).where(where))
        ).scalar_one()
        rows = await session.execute(
            select(t.audit_log).where(where).order_by(c.seq.desc()).offset(offset).limit(limit)
        )
        return [_audit_record(r) for r in rows], int(total)

    async def chain_rows(
        self, session: AsyncSession, *, from_seq: int, to_seq: int, batch: int = 2000
    ) -> list[AuditRecord]:
        """Entries from_seq..to_seq in order (one batch)."""
        rows = await session.execute(
            select(t.audit_log)
            .where(t.audit_log.c.seq >= from_seq, t.audit_log.c.seq <= to_seq)
            .order_by(t.audit_log.c.seq)
            .limit(batch)
        )
        return [_audit_record(r) for r in rows]

    async def hash_of(self, session: AsyncSession, seq: int) -> str | None:
        """The stored hash of one entry."""
        return (
            await session.execute(select(t.audit_log.c.hash).where(t.audit_log.c.seq == seq))
        ).scalar_one_or_none()

    async def purge_through(self, session: AsyncSession, *, cutoff: datetime, now: datetime) -> int:
        """Delete the oldest entries recorded before cutoff (a prefix of the chain) and move the
        checkpoint to the last deleted one; returns how many were deleted."""
        c = t.audit_log.c
        first_young = (
            await session.execute(select(func.min(c.seq)).where(c.recorded_at >= cutoff))
        ).scalar_one_or_none()
        head = await self.head_for_update(session)
        last = (int(first_young) - 1) if first_young is not None else head.last_seq
        if last <= head.purged_through_seq:
            return 0
        checkpoint = await self.hash_of(session, last)
        if checkpoint is None:
            return 0
        result = await session.execute(delete(t.audit_log).where(c.seq <= last))
        await session.execute(
            update(t.audit_head)
            .where(t.audit_head.c.id == 1)
            .values(purged_through_seq=last, purged_through_hash=checkpoint, purged_at=now)
        )
        return int(result.rowcount or 0)


def chain_row(record: AuditRecord) -> ChainRow:
    """The hashed part of a record."""
    return ChainRow(record.seq, record.payload, record.recorded_at, record.prev_hash, record.hash)

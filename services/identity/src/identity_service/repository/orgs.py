"""Queries of organisations (机构) through the session: reads, subtree listing, insert, update and
moves."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    and_,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from identity_service import tables as t
from identity_service.domain.accounts import (
    AccountStatus,
)
from identity_service.domain.orgs import Level, Org, OrgStatus, Stage, path_depth
from identity_service.repository.base import (
    CHUNK,
    like_prefix,
    utc,
)

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

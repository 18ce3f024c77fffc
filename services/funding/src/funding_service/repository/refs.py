"""Read copies of identity's org tree and aid's projects, and the cost-share table."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from funding_service import tables as t
from funding_service.domain.model import (
    CostShare,
    FundSource,
    Level,
    OrgNode,
    ProjectRef,
    ShareLine,
)
from funding_service.domain.rules import ancestor_paths
from funding_service.repository.sql import chunks, in_subtree, upsert_add, utc


def _org(row: Any) -> OrgNode:
    return OrgNode(
        code=row.org_code,
        name=row.name,
        level=Level(row.level),
        parent_code=row.parent_code,
        path=row.org_path,
        active=bool(row.active),
    )


class OrgRepository:
    """The org tree as last published by identity."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    async def get(self, session: AsyncSession, code: str) -> OrgNode | None:
        """One org by code."""
        row = (
            await session.execute(select(t.org_node).where(t.org_node.c.org_code == code))
        ).first()
        return _org(row) if row else None

    async def get_many(self, session: AsyncSession, codes: Iterable[str]) -> dict[str, OrgNode]:
        """Orgs by code (unknown codes are absent)."""
        out: dict[str, OrgNode] = {}
        for chunk in chunks(sorted(set(codes)), 1000):
            rows = await session.execute(select(t.org_node).where(t.org_node.c.org_code.in_(chunk)))
            out.update({r.org_code: _org(r) for r in rows})
        return out

    async def by_path(self, session: AsyncSession, paths: Iterable[str]) -> dict[str, OrgNode]:
        """Orgs by materialised path."""
        out: dict[str, OrgNode] = {}
        for chunk in chunks(sorted(set(paths)), 1000):
            rows = await session.execute(select(t.org_node).where(t.org_node.c.org_path.in_(chunk)))
            out.update({r.org_path: _org(r) for r in rows})
        return out

    async def children(self, session: AsyncSession, code: str) -> list[OrgNode]:
        """Direct children of an org, by code."""
        rows = await session.execute(
            select(t.org_node)
            .where(t.org_node.c.parent_code == code)
            .order_by(t.org_node.c.org_code)
        )
        return [_org(r) for r in rows]

    async def root(self, session: AsyncSession) -> OrgNode | None:
        """The root of the tree (the org without a parent)."""
        row = (
            await session.execute(
                select(t.org_node)
                .where(t.org_node.c.parent_code.is_(None))
                .order_by(func.length(t.org_node.c.org_path))
                .limit(1)
            )
        ).first()
        return _org(row) if row else None

    async def upsert(
        self, session: AsyncSession, org: OrgNode, version: int, now: datetime
    ) -> bool:
        """Store an org's state unless a newer version is already stored; True when stored."""
        current = (
            await session.execute(
                select(t.org_node.c.version).where(t.org_node.c.org_code == org.code)
            )
        ).scalar_one_or_none()
        if current is not None and version and current > version:
            return False
        await upsert_add(
            session,
            self.dialect,
            t.org_node,
            [
                {
                    "org_code": org.code,
                    "name": org.name,
                    "level": org.level.value,
                    "parent_code": org.parent_code,
                    "org_path": org.path,
                    "active": org.active,
                    "version": version,
                    "updated_at": now,
                }
            ],
            keys=["org_code"],
            replace=["name", "level", "parent_code", "org_path", "active", "version", "updated_at"],
        )
        return True

    async def set_active(
        self, session: AsyncSession, code: str, active: bool, now: datetime
    ) -> None:
        """Mark an org retired (or active again)."""
        await session.execute(
            update(t.org_node)
            .where(t.org_node.c.org_code == code)
            .values(active=active, updated_at=now)
        )

    async def set_parent(self, session: AsyncSession, code: str, parent_code: str) -> None:
        """Record an org's new parent (its path is rewritten by rewrite_paths)."""
        await session.execute(
            update(t.org_node).where(t.org_node.c.org_code == code).values(parent_code=parent_code)
        )

    async def rewrite_paths(self, session: AsyncSession, old: str, new: str) -> None:
        """Every stored path of the moved subtree (old prefix) now starts with new."""
        for table, column in (
            (t.org_node, "org_path"),
            (t.allocation, "from_org_path"),
            (t.allocation, "to_org_path"),
            (t.fund_balance, "org_path"),
            (t.fund_rollup, "org_path"),
            (t.cost_share, "region_org_path"),
            (t.project_ref, "owner_org_path"),
        ):
            col = table.c[column]
            await session.execute(
                update(table)
                .where(in_subtree(col, old))
                .values({column: literal(new) + func.substr(col, len(old) + 1)})
            )


class ProjectRepository:
    """Aid projects as last published by aid."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    async def get(self, session: AsyncSession, code: str) -> ProjectRef | None:
        """One project by code."""
        row = (
            await session.execute(select(t.project_ref).where(t.project_ref.c.project_code == code))
        ).first()
        if row is None:
            return None
        return ProjectRef(
            code=row.project_code,
            name=row.name,
            owner_org_code=row.owner_org_code,
            owner_org_path=row.owner_org_path,
            owner_level=Level(row.owner_level) if row.owner_level else None,
            category=row.category,
            stage=row.stage,
            active=bool(row.active),
        )

    async def names(self, session: AsyncSession, codes: Iterable[str]) -> dict[str, str]:
        """Project names by code."""
        out: dict[str, str] = {}
        for chunk in chunks(sorted(set(codes)), 1000):
            rows = await session.execute(
                select(t.project_ref.c.project_code, t.project_ref.c.name).where(
                    t.project_ref.c.project_code.in_(chunk)
                )
            )
            out.update({r.project_code: r.name for r in rows})
        return out

    async def upsert(self, session: AsyncSession, project: ProjectRef, now: datetime) -> None:
        """Store a project's current state."""
        await upsert_add(
            session,
            self.dialect,
            t.project_ref,
            [
                {
                    "project_code": project.code,
                    "name": project.name,
                    "owner_org_code": project.owner_org_code,
                    "owner_org_path": project.owner_org_path,
                    "owner_level": project.owner_level.value if project.owner_level else None,
                    "category": project.category,
                    "stage": project.stage,
                    "active": project.active,
                    "updated_at": now,
                }
            ],
            keys=["project_code"],
            replace=[
                "name",
                "owner_org_code",
                "owner_org_path",
                "owner_level",
                "category",
                "stage",
                "active",
                "updated_at",
            ],
        )


def encode_shares(shares: Sequence[ShareLine]) -> str:
    """Shares as stored: "1:3000,2:7000"."""
    return ",".join(f"{int(s.source)}:{s.basis_points}" for s in shares)


def decode_shares(text: str) -> tuple[ShareLine, ...]:
    """Shares from their stored form."""
    out = []
    for part in text.split(","):
        if ":" in part:
            source, bp = part.split(":", 1)
            out.append(ShareLine(FundSource(int(source)), int(bp)))
    return tuple(out)


class CostShareRepository:
    """Cost shares per project × fiscal year × region (the nearest region governs a subtree)."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    def _share(self, row: Any, region: OrgNode) -> CostShare:
        return CostShare(
            project_code=row.project_code,
            fiscal_year=row.fiscal_year,
            region=region,
            shares=decode_shares(row.shares),
            document_number=row.document_number,
            set_by=row.set_by,
            set_at=utc(row.set_at),
        )

    async def upsert(self, session: AsyncSession, share: CostShare) -> None:
        """Set or replace the share of a region."""
        await upsert_add(
            session,
            self.dialect,
            t.cost_share,
            [
                {
                    "project_code": share.project_code,
                    "fiscal_year": share.fiscal_year,
                    "region_org_code": share.region.code,
                    "region_org_path": share.region.path,
                    "shares": encode_shares(share.shares),
                    "document_number": share.document_number,
                    "set_by": share.set_by,
                    "set_at": share.set_at,
                    "version": 1,
                }
            ],
            keys=["project_code", "fiscal_year", "region_org_code"],
            add=["version"],
            replace=["region_org_path", "shares", "document_number", "set_by", "set_at"],
        )

    async def governing(
        self, session: AsyncSession, *, project_code: str, fiscal_year: str, path: str
    ) -> tuple[ShareLine, ...] | None:
        """The share governing path: the nearest one set on it (path itself first), if any."""
        above = ancestor_paths(path)
        row = (
            await session.execute(
                select(t.cost_share)
                .where(
                    t.cost_share.c.project_code == project_code,
                    t.cost_share.c.fiscal_year == fiscal_year,
                    t.cost_share.c.region_org_path.in_(above),
                )
                .order_by(func.length(t.cost_share.c.region_org_path).desc())
                .limit(1)
            )
        ).first()
        return decode_shares(row.shares) if row else None

    async def for_view(
        self,
        session: AsyncSession,
        *,
        path: str,
        fiscal_year: str | None,
        project_code: str | None,
        orgs: OrgRepository,
    ) -> list[CostShare]:
        """Shares of regions on path (its ancestors and itself) or inside its subtree."""
        col = t.cost_share.c.region_org_path
        stmt = select(t.cost_share).where(or_(col.in_(ancestor_paths(path)), in_subtree(col, path)))
        if fiscal_year:
            stmt = stmt.where(t.cost_share.c.fiscal_year == fiscal_year)
        if project_code:
            stmt = stmt.where(t.cost_share.c.project_code == project_code)
        rows = (
            await session.execute(
                stmt.order_by(
                    t.cost_share.c.fiscal_year,
                    t.cost_share.c.project_code,
                    col,
                )
            )
        ).all()
        regions = await orgs.get_many(session, [r.region_org_code for r in rows])
        out = []
        for r in rows:
            region = regions.get(r.region_org_code) or OrgNode(
                r.region_org_code, r.region_org_code, Level.NATIONAL, None, r.region_org_path
            )
            out.append(self._share(r, region))
        return out

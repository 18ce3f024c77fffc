"""The read copy of the organisation tree."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import String, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from aid_service import tables as t
from aid_service.domain.enums import Level, Stage
from aid_service.domain.orgs import OrgNode, path_codes
from aid_service.repository.common import chunks, prefix_range

_o = t.aid_org


def _node(row: object) -> OrgNode:
    stages = tuple(Stage(int(s)) for s in row.stages.split(",") if s)  # type: ignore[attr-defined]
    return OrgNode(
        org_code=row.org_code,  # type: ignore[attr-defined]
        name=row.name,  # type: ignore[attr-defined]
        level=Level(row.level),  # type: ignore[attr-defined]
        parent_code=row.parent_code,  # type: ignore[attr-defined]
        org_path=row.org_path,  # type: ignore[attr-defined]
        stages=stages,
        active=bool(row.active),  # type: ignore[attr-defined]
    )


class OrgRepository:
    """aid_org: org code → name, level, parent, path, stages."""

    async def upsert(self, session: AsyncSession, node: OrgNode, now: datetime) -> None:
        """Insert or replace one node."""
        values = {
            "org_code": node.org_code,
            "name": node.name,
            "level": int(node.level),
            "parent_code": node.parent_code,
            "org_path": node.org_path,
            "stages": ",".join(str(int(s)) for s in node.stages),
            "active": node.active,
            "updated_at": now,
        }
        dialect = session.bind.dialect.name
        ins = (pg_insert if dialect == "postgresql" else sqlite_insert)(_o).values(**values)
        await session.execute(
            ins.on_conflict_do_update(
                index_elements=[_o.c.org_code],
                set_={k: v for k, v in values.items() if k != "org_code"},
            )
        )

    async def get(self, session: AsyncSession, org_code: str) -> OrgNode | None:
        """One node by code."""
        row = (await session.execute(select(_o).where(_o.c.org_code == org_code))).first()
        return _node(row) if row else None

    async def get_many(self, session: AsyncSession, codes: Sequence[str]) -> dict[str, OrgNode]:
        """Nodes by code (unknown codes are left out)."""
        out: dict[str, OrgNode] = {}
        for part in chunks(list(dict.fromkeys(codes))):
            rows = await session.execute(select(_o).where(_o.c.org_code.in_(part)))
            out.update({r.org_code: _node(r) for r in rows})
        return out

    async def ancestors(self, session: AsyncSession, org_path: str) -> list[OrgNode]:
        """The nodes above the org at org_path, root first (those known to the copy)."""
        codes = path_codes(org_path)[:-1]
        found = await self.get_many(session, codes)
        return [found[c] for c in codes if c in found]

    async def children(self, session: AsyncSession, parent_code: str) -> list[OrgNode]:
        """Direct children of a node."""
        rows = await session.execute(
            select(_o).where(_o.c.parent_code == parent_code).order_by(_o.c.org_code)
        )
        return [_node(r) for r in rows]

    async def in_subtree(self, session: AsyncSession, org_path: str) -> list[OrgNode]:
        """Every node inside org_path's subtree (the node itself included)."""
        rows = await session.execute(select(_o).where(prefix_range(_o.c.org_path, org_path)))
        return [_node(r) for r in rows]

    async def move(self, session: AsyncSession, old_path: str, new_path: str) -> None:
        """Rewrite every path under old_path to start with new_path (a subtree moved)."""
        cut = len(old_path) + 1
        for table, column in (
            (_o, _o.c.org_path),
            (t.aid_project, t.aid_project.c.owner_org_path),
            (t.aid_window, t.aid_window.c.org_path),
            (t.aid_record, t.aid_record.c.school_org_path),
            (t.aid_import, t.aid_import.c.school_org_path),
        ):
            await session.execute(
                update(table)
                .where(prefix_range(column, old_path))
                .values({column.key: literal(new_path, String()).concat(func.substr(column, cut))})
            )

    async def set_parent(self, session: AsyncSession, org_code: str, parent_code: str) -> None:
        """Record a node's new parent."""
        await session.execute(
            update(_o).where(_o.c.org_code == org_code).values(parent_code=parent_code)
        )

    async def retire(self, session: AsyncSession, org_code: str, now: datetime) -> None:
        """Mark a node retired (it stays for history and paths)."""
        await session.execute(
            update(_o).where(_o.c.org_code == org_code).values(active=False, updated_at=now)
        )

"""The read copy of identity's organisation tree, fed by identity.org.* events."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.consumer import Event
from zizhu_contracts.identity.v1 import events_pb2, identity_pb2

from aid_service.domain.enums import Level, Stage
from aid_service.domain.orgs import OrgNode
from aid_service.service.context import Deps

log = logging.getLogger(__name__)


def node_from(org: identity_pb2.Org) -> OrgNode:
    """An OrgNode from identity's Org message."""
    return OrgNode(
        org_code=org.org_code,
        name=org.name,
        level=Level(org.level) if org.level else Level.SCHOOL,
        parent_code=org.parent_code or None,
        org_path=org.org_path,
        stages=tuple(Stage(s) for s in org.stages if s),
        active=org.status != identity_pb2.ORG_STATUS_RETIRED,
    )


class OrgCopy:
    """Applies identity's org events to aid_org (and rewrites stored paths on moves)."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def apply_events(self, session: AsyncSession, events: Sequence[Event]) -> None:
        """Consumer handler: events in stream order, inside the consumer's transaction."""
        now = self.deps.now()
        for e in events:
            kind = e.subject.rsplit(".", 1)[-1]
            if kind in ("created", "updated"):
                msg = (
                    events_pb2.OrgCreated if kind == "created" else events_pb2.OrgUpdated
                ).FromString(e.data)
                if msg.org.org_code:
                    await self.deps.orgs.upsert(session, node_from(msg.org), now)
            elif kind == "moved":
                moved = events_pb2.OrgMoved.FromString(e.data)
                if moved.old_path and moved.new_path and moved.old_path != moved.new_path:
                    await self.deps.orgs.move(session, moved.old_path, moved.new_path)
                    await self.deps.orgs.set_parent(session, moved.org_code, moved.new_parent_code)
            elif kind == "retired":
                retired = events_pb2.OrgRetired.FromString(e.data)
                await self.deps.orgs.retire(session, retired.org_code, now)
            else:
                log.debug("ignoring %s", e.subject)

    async def seed(self, nodes: Sequence[OrgNode]) -> None:
        """Write nodes directly (tests, and a deployment bootstrapping before identity's events)."""
        async with self.deps.db.write() as session:
            for node in nodes:
                await self.deps.orgs.upsert(session, node, self.deps.now())

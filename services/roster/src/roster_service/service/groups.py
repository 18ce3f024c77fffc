"""Special-group use cases (十三类特殊群体): central/provincial issue batches matched to the
roster, school verification (核实), self-collected members (自采集), and the period listing
reconcile reads."""

from __future__ import annotations

import asyncio

from roster_service.repository.groups import GroupRepository
from roster_service.service.batches import BatchOps
from roster_service.service.context import Deps
from roster_service.service.memberships import MembershipOps


class GroupService(BatchOps, MembershipOps):
    """Special groups."""

    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.repo = GroupRepository()
        self._tasks: set[asyncio.Task[None]] = set()

"""What every use case needs (database, outbox, repositories, clock) and the shared helpers:
resolving an org inside the caller's scope, role checks and paging."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.db import Database
from zizhu_common.errors import InvalidArgument, NotFound, PermissionDenied
from zizhu_common.outbox import Outbox
from zizhu_common.rpc import CallerContext

from funding_service.domain.model import OrgNode
from funding_service.repository import (
    AllocationRepository,
    CostShareRepository,
    ExecutionRepository,
    LedgerRepository,
    OrgRepository,
    ProjectRepository,
)

DEFAULT_PAGE = 50
MAX_PAGE = 1000
SYSTEM_ROLE = "system"


def utcnow() -> datetime:
    """The current instant (UTC)."""
    return datetime.now(UTC)


@dataclass
class Deps:
    """Shared collaborators of the funding use cases."""

    db: Database
    outbox: Outbox
    orgs: OrgRepository
    projects: ProjectRepository
    allocations: AllocationRepository
    ledger: LedgerRepository
    execution: ExecutionRepository
    cost_shares: CostShareRepository
    clock: Callable[[], datetime] = field(default=utcnow)

    @classmethod
    def create(cls, db: Database, outbox: Outbox) -> Deps:
        """Repositories for the database's dialect."""
        d = db.dialect
        return cls(
            db=db,
            outbox=outbox,
            orgs=OrgRepository(d),
            projects=ProjectRepository(d),
            allocations=AllocationRepository(),
            ledger=LedgerRepository(d),
            execution=ExecutionRepository(d),
            cost_shares=CostShareRepository(d),
        )

    def now(self) -> datetime:
        """The current instant (replaceable in tests)."""
        return self.clock()


def is_system(caller: CallerContext) -> bool:
    """Scheduled jobs, consumers and the demo seed."""
    return caller.has_role(SYSTEM_ROLE)


def require_role(caller: CallerContext, *roles: str) -> None:
    """Refuse callers holding none of the roles (the gateway checks first; this is the backstop)."""
    if not (is_system(caller) or caller.has_role(*roles)):
        raise PermissionDenied(
            "当前账号的角色无权执行该操作", code="ROLE_NOT_ALLOWED", details={"roles": list(roles)}
        )


async def org_in_scope(
    deps: Deps, session: AsyncSession, caller: CallerContext, code: str, *, field: str = "org_code"
) -> OrgNode:
    """The org named by code (empty: the caller's own org), answering NOT_FOUND when it is
    unknown or outside the caller's subtree."""
    code = (code or "").strip()
    if not code:
        if caller.org_code:
            code = caller.org_code
        else:
            root = await deps.orgs.root(session)
            if root is None:
                raise NotFound("机构不存在", code="ORG_NOT_FOUND", field=field)
            return root
    org = await deps.orgs.get(session, code)
    if org is None or not caller.in_scope(org.path):
        raise NotFound(f"机构不存在或不在本辖区：{code}", code="ORG_NOT_FOUND", field=field)
    return org


def page_window(page_size: int, page_token: str, filters: object) -> tuple[int, int]:
    """(offset, limit) from a page request; a token only works with the filters it came from."""
    if page_size < 0:
        raise InvalidArgument(
            "每页条数不能为负数", code="PAGE_SIZE_INVALID", field="page.page_size"
        )
    limit = DEFAULT_PAGE if page_size == 0 else min(page_size, MAX_PAGE)
    if not page_token:
        return 0, limit
    try:
        body = json.loads(base64.urlsafe_b64decode(page_token + "=" * (-len(page_token) % 4)))
        offset, digest = int(body["o"]), str(body["f"])
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument(
            "分页标记无效", code="PAGE_TOKEN_INVALID", field="page.page_token"
        ) from None
    if digest != _digest(filters) or offset < 0:
        raise InvalidArgument(
            "分页标记与查询条件不符", code="PAGE_TOKEN_INVALID", field="page.page_token"
        )
    return offset, limit


def next_page_token(offset: int, limit: int, total: int, filters: object) -> str:
    """The token of the following page, or empty on the last page."""
    if offset + limit >= total:
        return ""
    body = json.dumps({"o": offset + limit, "f": _digest(filters)}).encode()
    return base64.urlsafe_b64encode(body).rstrip(b"=").decode()


def _digest(filters: object) -> str:
    return hashlib.sha256(repr(filters).encode()).hexdigest()[:12]

"""What every use case needs: database, outbox, lock, blind index, clock; and the shared checks
(who may act, which subtree a request means, paging, audit events)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.crypto import FieldCipher
from zizhu_common.db import Database
from zizhu_common.errors import InvalidArgument, NotFound, PermissionDenied
from zizhu_common.idnumber import IdentifierError, normalize_resident_id
from zizhu_common.outbox import Outbox
from zizhu_common.rpc import CallerContext
from zizhu_contracts.common.v1 import common_pb2

from reconcile_service.domain.periods import Period
from reconcile_service.domain.scope import LEVELS
from reconcile_service.events import AUDIT_RECORDED, event_meta
from reconcile_service.lock import RunLock
from reconcile_service.repository import runs as run_repo
from reconcile_service.settings import Settings

DEFAULT_PAGE = 50
MAX_PAGE = 1000
AUTHORITIES = ("national", "province", "city", "county")
ROLE_VALUES = {"operator": 1, "auditor": 2, "admin": 3, "viewer": 4, "audit_admin": 5}


def utcnow() -> datetime:
    """The current instant (UTC)."""
    return datetime.now(UTC)


@dataclass
class Deps:
    """Shared collaborators of the reconcile use cases."""

    settings: Settings
    db: Database
    outbox: Outbox
    lock: RunLock
    cipher: FieldCipher
    clock: Callable[[], datetime] = field(default=utcnow)

    def now(self) -> datetime:
        """The current instant (replaceable in tests)."""
        return self.clock()

    def blind_index(self, id_number: str, *, field: str = "id_number") -> str:
        """The cross-service blind index of a resident ID number (InvalidArgument if malformed)."""
        try:
            normalized = normalize_resident_id(id_number)
        except IdentifierError as err:
            raise InvalidArgument(err.message, code=err.code, field=field) from None
        return self.cipher.blind_index(normalized, context=self.settings.id_index_context)


@dataclass(frozen=True)
class Scope:
    """The subtree a request is about: inside the caller's own."""

    org_code: str
    org_path: str
    level: int
    name: str


def is_system(caller: CallerContext) -> bool:
    """Scheduled jobs and consumers (national scope, every action)."""
    return "system" in caller.roles


def require(
    caller: CallerContext, *, roles: Iterable[str], levels: Iterable[str], action: str
) -> None:
    """PermissionDenied unless the caller holds one of the roles at one of the levels."""
    if is_system(caller):
        return
    if caller.level not in set(levels) or not caller.has_role(*roles):
        raise PermissionDenied(
            f"当前账号的角色或层级无权{action}",
            code="ACTION_NOT_ALLOWED",
            details={"action": action},
        )


async def resolve_scope(session: AsyncSession, caller: CallerContext, org_code: str) -> Scope:
    """The org a request names (empty = the caller's own), which must lie in the caller's
    subtree; an unknown or outside org answers NOT_FOUND, like an object guessed from outside."""
    code = (org_code or "").strip()
    if not code or code == caller.org_code:
        org = await run_repo.get_org(session, caller.org_code) if caller.org_code else None
        return Scope(
            caller.org_code,
            caller.org_path,
            LEVELS.get(caller.level, 0),
            org.name if org else "",
        )
    org = await run_repo.get_org(session, code)
    if org is None or not caller.in_scope(org.org_path):
        raise NotFound("机构不存在或不在本辖区内", code="ORG_NOT_FOUND", field="org_code")
    return Scope(org.org_code, org.org_path, org.level, org.name)


def parse_period(value: common_pb2.AidPeriod | None, *, field: str = "period") -> Period | None:
    """A period from a request (None when unset)."""
    if value is None or (not value.school_year and not value.term):
        return None
    return Period.parse(value.school_year, int(value.term), field=field)


def page_limit(page_size: int) -> int:
    """Rows per page: default 50, at most 1000."""
    if page_size < 0:
        raise InvalidArgument(
            "每页条数不能为负数", code="PAGE_SIZE_INVALID", field="page.page_size"
        )
    return DEFAULT_PAGE if page_size == 0 else min(page_size, MAX_PAGE)


def decode_token(token: str, filters: object) -> list[Any] | None:
    """The keyset position of a page token (None for the first page)."""
    if not token:
        return None
    try:
        body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        position, digest = list(body["k"]), str(body["f"])
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument(
            "分页标记无效", code="PAGE_TOKEN_INVALID", field="page.page_token"
        ) from None
    if digest != _digest(filters):
        raise InvalidArgument(
            "分页标记与查询条件不符", code="PAGE_TOKEN_INVALID", field="page.page_token"
        )
    return position


def encode_token(position: list[Any], filters: object) -> str:
    """A token for the page after position."""
    body = json.dumps({"k": position, "f": _digest(filters)}, default=str).encode()
    return base64.urlsafe_b64encode(body).rstrip(b"=").decode()


def _digest(filters: object) -> str:
    return hashlib.sha256(repr(filters).encode()).hexdigest()[:12]


async def audit(
    deps: Deps,
    session: AsyncSession,
    caller: CallerContext,
    *,
    action: str,
    object_type: str = "",
    object_id: str = "",
    detail: str = "",
    org_path: str = "",
) -> None:
    """Publish an ActionAudited event (stored in identity's audit log) with the change."""
    msg = common_pb2.ActionAudited(
        action=f"reconcile.{action}",
        object_type=object_type,
        object_id=object_id[:200],
        outcome=common_pb2.AUDIT_OUTCOME_SUCCEEDED,
        status_code="OK",
        actor_org_code=caller.org_code,
        actor_org_path=caller.org_path,
        actor_roles=[ROLE_VALUES[r] for r in sorted(caller.roles) if r in ROLE_VALUES],
        detail=detail[:500],
    )
    msg.meta.CopyFrom(event_meta(caller, org_path=org_path or caller.org_path))
    await deps.outbox.add(session, AUDIT_RECORDED, msg)

"""What every use case needs (database, outbox, roster, cipher, clock) and the caller rules
shared by them: roles, levels, scope, paging."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.crypto import FieldCipher
from zizhu_common.db import Database
from zizhu_common.errors import InvalidArgument, NotFound, PermissionDenied
from zizhu_common.outbox import Outbox
from zizhu_common.rpc import CallerContext

from aid_service.domain.enums import Level
from aid_service.domain.orgs import OrgNode
from aid_service.domain.periods import TZ
from aid_service.repository import (
    ImportRepository,
    OrgRepository,
    PeriodRepository,
    ProjectRepository,
    RecordRepository,
    WindowRepository,
)
from aid_service.roster import Roster
from aid_service.settings import Settings

DEFAULT_PAGE = 50
MAX_PAGE = 1000
# Must equal roster's: the blind index of an ID number is the person key shared by services.
ID_NUMBER_CONTEXT = "person.id_number"
BANK_CARD_CONTEXT = "aid_record.bank_card"
SYSTEM = "system"


def utcnow() -> datetime:
    """The current instant (UTC)."""
    return datetime.now(UTC)


@dataclass
class Deps:
    """Shared collaborators of the aid use cases."""

    settings: Settings
    db: Database
    outbox: Outbox
    roster: Roster
    cipher: FieldCipher
    clock: Callable[[], datetime] = field(default=utcnow)
    orgs: OrgRepository = field(default_factory=OrgRepository)
    projects: ProjectRepository = field(default_factory=ProjectRepository)
    periods: PeriodRepository = field(default_factory=PeriodRepository)
    windows: WindowRepository = field(default_factory=WindowRepository)
    records: RecordRepository = field(default_factory=RecordRepository)
    imports: ImportRepository = field(default_factory=ImportRepository)

    def now(self) -> datetime:
        """The current instant (replaceable in tests)."""
        return self.clock()

    def today(self) -> date:
        """Today in Asia/Shanghai."""
        return self.now().astimezone(TZ).date()

    def blind_index(self, id_number: str, id_type: int = 1) -> str:
        """The HMAC-SM3 blind index of a (normalised) ID number, as roster computes it."""
        value = id_number if id_type in (0, 1) else f"{int(id_type)}:{id_number}"
        return self.cipher.blind_index(value, context=ID_NUMBER_CONTEXT)


def is_system(caller: CallerContext) -> bool:
    """True for scheduled jobs, consumers and the demo seed."""
    return SYSTEM in caller.roles


def level_of(caller: CallerContext) -> Level:
    """The caller's level."""
    return Level.from_name(caller.level)


def require_roles(caller: CallerContext, *roles: str, what: str) -> None:
    """Refuse a caller holding none of the roles (system callers pass)."""
    if is_system(caller) or caller.has_role(*roles):
        return
    names = {"operator": "业务操作人员", "auditor": "业务审核人员", "admin": "系统管理员"}
    raise PermissionDenied(
        f"{what}需要{'或'.join(names.get(r, r) for r in roles)}角色",
        code="ROLE_REQUIRED",
        details={"roles": list(roles)},
    )


def require_levels(caller: CallerContext, *levels: Level, what: str) -> None:
    """Refuse a caller at another level (system callers pass)."""
    if is_system(caller) or level_of(caller) in levels:
        return
    raise PermissionDenied(
        f"{what}只能由{'、'.join(lvl.label for lvl in levels)}进行",
        code="LEVEL_NOT_ALLOWED",
    )


def out_of_scope(what: str = "机构", *, field: str | None = None) -> NotFound:
    """The answer for a missing object or one outside the caller's subtree (the same)."""
    return NotFound(f"{what}不存在或不在本辖区内", code="NOT_FOUND", field=field)


async def scope_org(
    deps: Deps, session: AsyncSession, caller: CallerContext, org_code: str, *, field: str
) -> OrgNode | None:
    """The org named by a request inside the caller's subtree; None for "the caller's own"."""
    if not org_code or org_code == caller.org_code:
        return None
    org = await deps.orgs.get(session, org_code)
    if org is None or not caller.in_scope(org.org_path):
        raise out_of_scope(field=field)
    return org


async def scope_path(
    deps: Deps, session: AsyncSession, caller: CallerContext, org_code: str, *, field: str
) -> str:
    """The path of the request's scope root (org_code, default the caller's org)."""
    org = await scope_org(deps, session, caller, org_code, field=field)
    return org.org_path if org else caller.org_path


async def school_of(
    deps: Deps, session: AsyncSession, caller: CallerContext, org_code: str
) -> OrgNode:
    """The school a school-level write is for: the caller's own (or, for system, any)."""
    code = org_code or caller.org_code
    if not is_system(caller) and code != caller.org_code:
        raise PermissionDenied(
            "只能为本校录入、导入或上报资助名单", code="NOT_OWN_SCHOOL", field="school_org_code"
        )
    org = await deps.orgs.get(session, code)
    if org is None:
        raise NotFound(
            "学校机构信息尚未同步到资助系统，请稍后重试",
            code="ORG_UNKNOWN",
            field="school_org_code",
        )
    if org.level is not Level.SCHOOL:
        raise InvalidArgument(
            "资助名单只能录入到学校", code="NOT_A_SCHOOL", field="school_org_code"
        )
    if not org.active:
        raise InvalidArgument("该学校已撤销", code="ORG_RETIRED", field="school_org_code")
    return org


@dataclass(frozen=True)
class Page:
    """offset and limit of a page."""

    offset: int
    limit: int


def page_of(page_size: int, page_token: str, filters: object) -> Page:
    """Decode a page request; a token only works with the filters it came from."""
    limit = DEFAULT_PAGE if page_size <= 0 else min(page_size, MAX_PAGE)
    if not page_token:
        return Page(0, limit)
    try:
        raw = base64.urlsafe_b64decode(page_token + "=" * (-len(page_token) % 4))
        body = json.loads(raw)
        offset, digest = int(body["o"]), str(body["f"])
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument(
            "分页标记无效", code="PAGE_TOKEN_INVALID", field="page.page_token"
        ) from None
    if digest != _digest(filters) or offset < 0:
        raise InvalidArgument(
            "分页标记与查询条件不符", code="PAGE_TOKEN_INVALID", field="page.page_token"
        )
    return Page(offset, limit)


def next_token(page: Page, total: int, filters: object) -> str:
    """The token of the following page; empty on the last one."""
    if page.offset + page.limit >= total:
        return ""
    body = json.dumps({"o": page.offset + page.limit, "f": _digest(filters)}).encode()
    return base64.urlsafe_b64encode(body).rstrip(b"=").decode()


def _digest(filters: object) -> str:
    return hashlib.sha256(repr(filters).encode()).hexdigest()[:12]

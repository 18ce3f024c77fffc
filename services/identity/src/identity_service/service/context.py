"""What every use case needs: database, outbox, Redis revocations, ciphers, keys, policies."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from zizhu_common.db import Database
from zizhu_common.errors import InvalidArgument
from zizhu_common.outbox import Outbox

from identity_service.domain.credentials import LockoutPolicy, PasswordPolicy
from identity_service.domain.orgs import Level, Org, OrgStatus
from identity_service.keys import TokenKeys
from identity_service.repository import (
    AccountRepository,
    AuditRepository,
    OrgRepository,
    SessionRepository,
)
from identity_service.revocation import Revocations
from identity_service.settings import Settings

DEFAULT_PAGE = 50
MAX_PAGE = 1000


def utcnow() -> datetime:
    """The current instant (UTC)."""
    return datetime.now(UTC)


@dataclass
class Deps:
    """Shared collaborators of the identity use cases."""

    settings: Settings
    db: Database
    outbox: Outbox
    revocations: Revocations
    keys: TokenKeys
    orgs: OrgRepository
    accounts: AccountRepository
    sessions: SessionRepository
    audit: AuditRepository
    password_policy: PasswordPolicy
    lockout: LockoutPolicy
    clock: Callable[[], datetime] = field(default=utcnow)

    def now(self) -> datetime:
        """The current instant (replaceable in tests)."""
        return self.clock()

    def root(self) -> Org:
        """The root of this deployment's tree (the nation, or the province of a provincial build)."""
        code = self.settings.root_org_code
        return Org(
            code=code,
            name=self.settings.root_org_name,
            level=Level(self.settings.root_org_level),
            parent_code=None,
            org_path=f"/{code}/",
            status=OrgStatus.ACTIVE,
        )


def page_window(page_size: int, page_token: str, filters: object) -> tuple[int, int]:
    """(offset, limit) from a page request; a token only works with the filters it came from."""
    limit = DEFAULT_PAGE if page_size <= 0 else min(page_size, MAX_PAGE)
    if not page_token:
        return 0, limit
    try:
        body = json.loads(base64.urlsafe_b64decode(page_token + "=" * (-len(page_token) % 4)))
        offset, digest = int(body["o"]), str(body["f"])
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument(
            "分页标记无效", code="PAGE_TOKEN_INVALID", field="page.page_token"
        ) from None
    if digest != _filters_digest(filters) or offset < 0:
        raise InvalidArgument(
            "分页标记与查询条件不符", code="PAGE_TOKEN_INVALID", field="page.page_token"
        )
    return offset, limit


def next_page_token(offset: int, limit: int, total: int, filters: object) -> str:
    """The token of the following page, or empty on the last page."""
    if offset + limit >= total:
        return ""
    body = json.dumps({"o": offset + limit, "f": _filters_digest(filters)}).encode()
    return base64.urlsafe_b64encode(body).rstrip(b"=").decode()


def _filters_digest(filters: object) -> str:
    return hashlib.sha256(repr(filters).encode()).hexdigest()[:12]

"""What every roster use case needs: database, outbox, cipher, clock, repositories, and the
scope rule (an org outside the caller's subtree answers NOT_FOUND)."""

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
from zizhu_contracts.common.v1 import common_pb2

from roster_service.domain.common import SHANGHAI, school_year_of, valid_school_year
from roster_service.prepare import PreparePool, Preparer, id_index_value
from roster_service.repository.imports import ImportRepository
from roster_service.repository.orgs import OrgRef, OrgRepository
from roster_service.repository.recognitions import RecognitionRepository
from roster_service.repository.students import StudentRepository
from roster_service.settings import Settings

DEFAULT_PAGE = 50
MAX_PAGE = 1000
ID_CONTEXT = "person.id_number"
PHONE_CONTEXT = "student.phone"
AUDIT_SUBJECT = "roster.audit.recorded"


def utcnow() -> datetime:
    """The current instant (UTC)."""
    return datetime.now(UTC)


@dataclass
class Deps:
    """Shared collaborators of the roster use cases."""

    settings: Settings
    db: Database
    outbox: Outbox
    cipher: FieldCipher
    orgs: OrgRepository = field(default_factory=OrgRepository)
    students: StudentRepository = field(default_factory=StudentRepository)
    recognitions: RecognitionRepository = field(default_factory=RecognitionRepository)
    imports: ImportRepository = field(default_factory=ImportRepository)
    clock: Callable[[], datetime] = field(default=utcnow)
    pool: PreparePool | None = None

    @property
    def preparer(self) -> Preparer:
        """In-process validation and encryption of 学籍 rows."""
        return Preparer(self.cipher)

    def close(self) -> None:
        """Stop worker processes."""
        if self.pool is not None:
            self.pool.close()

    def now(self) -> datetime:
        """The current instant (replaceable in tests)."""
        return self.clock()

    def today(self) -> date:
        """Today in Asia/Shanghai."""
        return self.now().astimezone(SHANGHAI).date()

    def current_school_year(self) -> str:
        """The school year containing today."""
        return school_year_of(self.today())

    # -- personal data ---------------------------------------------------------------------------

    def id_index(self, id_type: int, number: str) -> str:
        """Blind index of an ID number: the person key shared with other services."""
        return self.cipher.blind_index(id_index_value(id_type, number), context=ID_CONTEXT)

    def encrypt_id(self, number: str) -> str:
        """SM4 ciphertext of an ID number."""
        return self.cipher.encrypt(number, context=ID_CONTEXT)

    def decrypt_id(self, token: str) -> str:
        """The ID number of a ciphertext."""
        return self.cipher.decrypt(token, context=ID_CONTEXT)

    def encrypt_phone(self, phone: str) -> str:
        """SM4 ciphertext of a phone number."""
        return self.cipher.encrypt(phone, context=PHONE_CONTEXT)

    def decrypt_phone(self, token: str) -> str:
        """The phone number of a ciphertext ("" for none)."""
        return self.cipher.decrypt(token, context=PHONE_CONTEXT) if token else ""

    def may_reveal(self, caller: CallerContext) -> bool:
        """True when the caller's roles may read full ID and phone numbers."""
        return caller.has_role(*self.settings.reveal_roles)

    # -- scope ---------------------------------------------------------------------------------

    async def scope(self, session: AsyncSession, caller: CallerContext, org_code: str) -> OrgRef:
        """The org at the root of a request's scope: the caller's own org when empty; an org
        outside the caller's subtree answers NOT_FOUND."""
        code = org_code.strip() if org_code else caller.org_code
        if not code:
            # System callers (jobs, consumers) act on the whole tree.
            return OrgRef("", "全部", "national", "", caller.org_path, (), "active")
        org = await self.orgs.get(session, code)
        if org is None:
            if code == caller.org_code:
                return OrgRef(code, code, caller.level, "", caller.org_path, (), "active")
            raise NotFound(
                "机构不存在或不在本单位管辖范围内", code="ORG_NOT_FOUND", field="org_code"
            )
        if not caller.in_scope(org.org_path):
            raise NotFound(
                "机构不存在或不在本单位管辖范围内", code="ORG_NOT_FOUND", field="org_code"
            )
        return org

    def school_year(self, value: str, *, field_name: str = "school_year") -> str:
        """A school year from a request ("" = the current one)."""
        if not value:
            return self.current_school_year()
        if not valid_school_year(value):
            raise InvalidArgument(
                "学年格式应为YYYY-YYYY，如2024-2025", code="SCHOOL_YEAR_FORMAT", field=field_name
            )
        return value


def require_level(caller: CallerContext, *levels: str, action: str) -> None:
    """Refuse callers whose level may not take this action."""
    if caller.level not in levels and "system" not in caller.roles:
        raise PermissionDenied(f"本级用户不能{action}", code="LEVEL_NOT_ALLOWED")


def page_window(page: common_pb2.PageRequest | None, filters: object) -> tuple[int, int]:
    """(offset, limit) of a page request; a token is only valid with the filters it came from."""
    size = page.page_size if page else 0
    token = page.page_token if page else ""
    limit = DEFAULT_PAGE if size <= 0 else min(size, MAX_PAGE)
    if not token:
        return 0, limit
    try:
        body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
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


def next_token(offset: int, limit: int, returned: int, total: int, filters: object) -> str:
    """The token of the next page ("" on the last one)."""
    if returned < limit or offset + returned >= total:
        return ""
    body = json.dumps({"o": offset + returned, "f": _digest(filters)}).encode()
    return base64.urlsafe_b64encode(body).rstrip(b"=").decode()


def _digest(filters: object) -> str:
    return hashlib.sha256(repr(filters).encode()).hexdigest()[:16]


def audit_event(
    caller: CallerContext,
    *,
    action: str,
    object_type: str,
    object_id: str,
    org_path: str,
    detail: str,
    sensitive: bool,
) -> common_pb2.ActionAudited:
    """An ActionAudited event for the audit log (identity stores it)."""
    msg = common_pb2.ActionAudited(
        action=action,
        object_type=object_type,
        object_id=object_id,
        outcome=common_pb2.AUDIT_OUTCOME_SUCCEEDED,
        status_code="OK",
        actor_org_code=caller.org_code,
        actor_org_path=caller.org_path,
        sensitive_read=sensitive,
        detail=detail,
    )
    for role in sorted(caller.roles):
        value = (
            common_pb2.Role.Value(f"ROLE_{role.upper()}")
            if f"ROLE_{role.upper()}" in common_pb2.Role.keys()
            else 0
        )
        if value:
            msg.actor_roles.append(value)
    msg.meta.actor_account_id = caller.account_id
    msg.meta.correlation_id = caller.request_id
    msg.meta.org_path = org_path
    return msg

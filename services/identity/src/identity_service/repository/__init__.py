"""Queries of the identity database, returning domain objects (personal data decrypted here), one
module per aggregate."""

from identity_service.repository.accounts import (
    ID_CONTEXT,
    PHONE_CONTEXT,
    TOTP_CONTEXT,
    AccountFilter,
    AccountRepository,
)
from identity_service.repository.audit import (
    AuditColumns,
    AuditFilter,
    AuditHead,
    AuditRecord,
    AuditRepository,
    chain_row,
)
from identity_service.repository.base import (
    CHUNK,
    like_prefix,
    utc,
)
from identity_service.repository.org_reader import (
    ReaderUnavailable,
    SqliteOrgReader,
)
from identity_service.repository.orgs import (
    OrgFilter,
    OrgRepository,
)
from identity_service.repository.sessions import (
    RefreshRecord,
    SessionRecord,
    SessionRepository,
)

__all__ = [
    "AccountFilter",
    "AccountRepository",
    "AuditColumns",
    "AuditFilter",
    "AuditHead",
    "AuditRecord",
    "AuditRepository",
    "CHUNK",
    "ID_CONTEXT",
    "OrgFilter",
    "OrgRepository",
    "PHONE_CONTEXT",
    "ReaderUnavailable",
    "RefreshRecord",
    "SessionRecord",
    "SessionRepository",
    "SqliteOrgReader",
    "TOTP_CONTEXT",
    "chain_row",
    "like_prefix",
    "utc",
]

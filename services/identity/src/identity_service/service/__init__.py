"""Use cases of the identity service; each owns its transaction and writes outbox events."""

from identity_service.service.accounts import AccountCreate, AccountService, AccountUpdate
from identity_service.service.audit import Actor, AuditService
from identity_service.service.context import Deps
from identity_service.service.orgs import ImportResult, OrgService
from identity_service.service.sessions import ClientInfo, IssuedTokens, SessionService

__all__ = [
    "AccountCreate",
    "AccountService",
    "AccountUpdate",
    "Actor",
    "AuditService",
    "ClientInfo",
    "Deps",
    "IdentityServices",
    "ImportResult",
    "IssuedTokens",
    "OrgService",
    "SessionService",
]


class IdentityServices:
    """All identity use cases over one set of dependencies."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.audit = AuditService(deps)
        self.orgs = OrgService(deps, self.audit)
        self.accounts = AccountService(deps, self.audit)
        self.sessions = SessionService(deps, self.audit)

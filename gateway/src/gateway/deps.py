"""Request dependencies: the authenticated caller (`CurrentUser`), the client IP, the runtime."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from redis.exceptions import RedisError
from zizhu_common.errors import NotFound, PermissionDenied
from zizhu_common.logs import request_id_var
from zizhu_common.rpc import CallerContext

from gateway.audit import audit_note
from gateway.security import client_ip
from gateway.tokens import TOKEN_MISSING, Claims, TokenError

if TYPE_CHECKING:
    from gateway.runtime import GatewayRuntime

log = logging.getLogger(__name__)

# The caller's session, for identity's own-session calls (logout, password change).
MD_SESSION = "x-zizhu-session-id"


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller of one request: verified claims plus where the request came from."""

    claims: Claims
    client_ip: str
    user_agent: str
    request_id: str
    context: CallerContext = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "context",
            CallerContext(
                account_id=self.claims.account_id,
                org_code=self.claims.org_code,
                org_path=self.claims.org_path,
                level=self.claims.level,
                roles=self.claims.roles,
                request_id=self.request_id,
            ),
        )

    @property
    def account_id(self) -> str:
        """The caller's account id."""
        return self.claims.account_id

    @property
    def org_code(self) -> str:
        """The caller's organisation code."""
        return self.claims.org_code

    @property
    def org_path(self) -> str:
        """The materialised path of the caller's organisation (its subtree's prefix)."""
        return self.claims.org_path

    @property
    def level(self) -> str:
        """national | province | city | county | school."""
        return self.claims.level

    @property
    def roles(self) -> frozenset[str]:
        """The caller's roles."""
        return self.claims.roles

    @property
    def restricted(self) -> bool:
        """True while the session must first change the password or enrol TOTP."""
        return self.claims.restricted

    def in_scope(self, org_path: str) -> bool:
        """True when an object at org_path lies inside the caller's subtree."""
        return bool(org_path) and org_path.startswith(self.claims.org_path)

    def to_metadata(self) -> list[tuple[str, str]]:
        """gRPC metadata of a call made for this caller: the caller context and its session."""
        return [*self.context.to_metadata(), (MD_SESSION, self.claims.session_id)]

    def keeps(self, org_path: str, what: str) -> bool:
        """Defence in depth for service answers: False (and an error logged) when out of scope."""
        if self.in_scope(org_path):
            return True
        log.error("service returned an out-of-scope %s (%s) to %s", what, org_path,
                  self.account_id)  # fmt: skip
        return False

    def ensure_in_scope(self, org_path: str, *, what: str = "对象") -> None:
        """Answer 404 (never the object) for anything outside the caller's subtree."""
        if not self.in_scope(org_path):
            raise NotFound(f"{what}不存在或不在本辖区内", code="NOT_FOUND")


def runtime_of(request: Request) -> GatewayRuntime:
    """The gateway runtime (clients, Redis, verifier, audit) of the app serving request."""
    return request.app.state.runtime  # type: ignore[no-any-return]


def request_client_ip(request: Request) -> str:
    """The client IP, honouring X-Forwarded-For only from trusted proxies."""
    settings = runtime_of(request).settings
    peer = request.client.host if request.client else None
    return client_ip(peer, request.headers.get("x-forwarded-for"), settings.trusted_proxies)


def bearer_token(request: Request) -> str:
    """The token of `Authorization: Bearer <token>`; 401 TOKEN_MISSING without one."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError("请先登录", code=TOKEN_MISSING)
    return token.strip()


# The request's Caller once current_session has admitted it: the policy check, current_user and
# idempotent all ask for it, and the request must be counted against the rate limits only once.
CALLER_SCOPE_KEY = "zizhu.caller"


async def current_session(request: Request) -> Caller:
    """The caller of a valid token (restricted sessions included): verified locally, checked for
    revocation and rate limits in Redis (or by identity when Redis is down); once per request."""
    cached = request.scope.get(CALLER_SCOPE_KEY)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    runtime = runtime_of(request)
    token = bearer_token(request)
    claims = await runtime.verifier.verify(token)
    ip = request_client_ip(request)
    try:
        await runtime.gate.admit(claims, ip)
    except RedisError as exc:
        log.warning("redis unavailable, verifying the token with identity: %s", exc)
        await runtime.verify_with_identity(token)
    caller = Caller(
        claims=claims,
        client_ip=ip,
        user_agent=request.headers.get("user-agent", "")[:256],
        request_id=request_id_var.get() or "",
    )
    audit_note(request).caller = caller
    request.scope[CALLER_SCOPE_KEY] = caller
    return caller


async def current_user(request: Request) -> Caller:
    """The caller of a full (unrestricted) session. Takes the request rather than depending on
    current_session so that FastAPI solves one dependency less per request (same caller)."""
    caller = await current_session(request)
    if caller.restricted:
        raise PermissionDenied(
            "请先完成修改密码或绑定动态口令后再进行其他操作", code="SESSION_RESTRICTED"
        )
    return caller


CurrentSession = Annotated[Caller, Depends(current_session)]
CurrentUser = Annotated[Caller, Depends(current_user)]


async def identity_client(request: Request) -> Any:
    """The identity service client (async: FastAPI would run a plain function in a thread)."""
    return runtime_of(request).clients.identity


Identity = Annotated[Any, Depends(identity_client)]


async def roster_client(request: Request) -> Any:
    """The roster service client."""
    return runtime_of(request).clients.roster


async def aid_client(request: Request) -> Any:
    """The aid service client."""
    return runtime_of(request).clients.aid


async def funding_client(request: Request) -> Any:
    """The funding service client."""
    return runtime_of(request).clients.funding


async def reconcile_client(request: Request) -> Any:
    """The reconcile service client."""
    return runtime_of(request).clients.reconcile


Roster = Annotated[Any, Depends(roster_client)]
Aid = Annotated[Any, Depends(aid_client)]
Funding = Annotated[Any, Depends(funding_client)]
Reconcile = Annotated[Any, Depends(reconcile_client)]

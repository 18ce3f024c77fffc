"""Local verification of identity's SM2-signed access tokens, with a cache of verified tokens.

Token: `base64url(header) "." base64url(payload) "." base64url(signature)`; header
`{"alg": "SM2SM3", "typ": "JWT", "kid": ...}`; signature SM2 with SM3 digest and the default
signer id over `header_b64 "." payload_b64`, 64-byte r||s (zizhu_common.crypto, shared with
identity, which signs). SM2 verification costs ~0.7 ms, so a
verified token's claims are kept (keyed by a hash of the token) until it expires; revocation is
checked separately, in Redis, on every request.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from zizhu_common import crypto
from zizhu_common.errors import Unauthenticated

ISSUER = "zizhu-identity"
LEVELS = frozenset({"national", "province", "city", "county", "school"})

TOKEN_INVALID = "TOKEN_INVALID"
TOKEN_EXPIRED = "TOKEN_EXPIRED"
TOKEN_REVOKED = "TOKEN_REVOKED"
TOKEN_MISSING = "TOKEN_MISSING"


class TokenError(Unauthenticated):
    """A token that does not authenticate anyone (401)."""


def invalid(reason: str) -> TokenError:
    """The one answer for malformed, tampered, wrong-algorithm or unknown-key tokens."""
    return TokenError("登录凭证无效，请重新登录", code=TOKEN_INVALID, details={"reason": reason})


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified access token says about its holder."""

    account_id: str
    username: str
    org_code: str
    org_path: str
    level: str
    roles: frozenset[str]
    jti: str
    session_id: str
    issued_at: int
    expires_at: int
    key_id: str
    # The session may only change the password or enrol TOTP until it does (受限会话).
    password_change_required: bool = False
    mfa_enrollment_required: bool = False

    @property
    def restricted(self) -> bool:
        """True when the session may do nothing but finish the password or TOTP step."""
        return self.password_change_required or self.mfa_enrollment_required


def public_key_verifier(key_id: str, pem: str) -> crypto.Sm2Verifier:
    """A verifier for one of identity's public keys (SubjectPublicKeyInfo PEM or hex)."""
    return crypto.Sm2Verifier(pem, key_id=key_id)


def _str(payload: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = payload.get(name, "")
    if not isinstance(value, str) or (required and not value):
        raise invalid(f"claim {name}")
    return value


def _int(payload: dict[str, Any], name: str) -> int:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(f"claim {name}")
    return int(value)


def claims_from_payload(payload: dict[str, Any], key_id: str) -> Claims:
    """Read the claims identity puts in an access token; any missing or odd claim is invalid."""
    if payload.get("iss") != ISSUER:
        raise invalid("issuer")
    level = _str(payload, "lvl")
    roles = payload.get("roles", [])
    if level not in LEVELS or not isinstance(roles, list):
        raise invalid("claim lvl/roles")
    org_path = _str(payload, "path")
    if not org_path.startswith("/") or not org_path.endswith("/"):
        raise invalid("claim path")
    return Claims(
        account_id=_str(payload, "sub"),
        username=_str(payload, "usr", required=False),
        org_code=_str(payload, "org"),
        org_path=org_path,
        level=level,
        roles=frozenset(str(r) for r in roles),
        jti=_str(payload, "jti"),
        session_id=_str(payload, "sid", required=False),
        issued_at=_int(payload, "iat"),
        expires_at=_int(payload, "exp"),
        key_id=key_id,
        password_change_required=payload.get("pwd") is True,
        mfa_enrollment_required=payload.get("mfa_req") is True,
    )


def token_digest(token: str) -> bytes:
    """The cache key of a token (tokens themselves are not kept in memory longer than needed)."""
    return hashlib.blake2b(token.encode(), digest_size=20).digest()


KeyFetcher = Callable[[], Awaitable[dict[str, crypto.Sm2Verifier]]]


class TokenVerifier:
    """Verifies access tokens against identity's SM2 public keys and caches the results."""

    def __init__(
        self,
        fetch_keys: KeyFetcher,
        *,
        cache_size: int = 50_000,
        leeway_s: int = 5,
        refresh_min_interval_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._fetch_keys = fetch_keys
        self._keys: dict[str, crypto.Sm2Verifier] = {}
        self._cache: OrderedDict[bytes, Claims] = OrderedDict()
        self._cache_size = cache_size
        self._leeway = leeway_s
        self._refresh_min_interval = refresh_min_interval_s
        self._last_refresh = float("-inf")
        self._clock = clock
        self.verified_count = 0

    @property
    def key_ids(self) -> list[str]:
        """Ids of the keys currently trusted."""
        return sorted(self._keys)

    def set_keys(self, keys: dict[str, crypto.Sm2Verifier]) -> None:
        """Trust exactly these keys (kid → verifier)."""
        self._keys = dict(keys)

    async def refresh_keys(self, *, force: bool = False) -> bool:
        """Fetch identity's current keys, at most once per refresh interval unless forced or
        none is trusted yet. Only a fetch that succeeded counts: a gateway that started before
        identity (its first fetch failed) fetches again at the first token, not 10 s later."""
        now = time.monotonic()
        throttled = now - self._last_refresh < self._refresh_min_interval
        if not force and self._keys and throttled:
            return False
        self.set_keys(await self._fetch_keys())
        self._last_refresh = now
        return True

    async def verify(self, token: str) -> Claims:
        """The claims of a valid, unexpired token; TokenError otherwise (revocation not checked)."""
        now = self._clock()
        digest = token_digest(token)
        claims = self._cache.get(digest)
        if claims is not None:
            if claims.expires_at + self._leeway <= now:
                self._cache.pop(digest, None)
                raise _expired()
            return claims
        claims = await self._verify_signature(token, now)
        if claims.issued_at - self._leeway > now:
            raise invalid("issued in the future")
        self._cache[digest] = claims
        if len(self._cache) > self._cache_size:
            self._evict(now)
        return claims

    def forget(self, tokens: Iterable[str]) -> None:
        """Drop tokens from the cache (after logout in this process)."""
        for token in tokens:
            self._cache.pop(token_digest(token), None)

    def _evict(self, now: float) -> None:
        expired = [d for d, c in self._cache.items() if c.expires_at + self._leeway <= now]
        for digest in expired:
            del self._cache[digest]
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def _verify_signature(self, token: str, now: float) -> Claims:
        try:
            kid = crypto.token_header(token).get("kid")
            if not isinstance(kid, str) or not kid:
                raise invalid("kid")
            if kid not in self._keys:
                await self.refresh_keys()
            payload = crypto.verify_token(token, self._keys, now=now, leeway_s=self._leeway)
        except crypto.TokenError as exc:
            if exc.code == "TOKEN_EXPIRED":
                raise _expired() from exc
            raise invalid(exc.code) from exc
        self.verified_count += 1
        return claims_from_payload(payload, kid)


def _expired() -> TokenError:
    return TokenError("登录已过期，请重新登录", code=TOKEN_EXPIRED)

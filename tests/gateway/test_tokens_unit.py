"""Local token verification: signature, algorithm, expiry, claims, cache and key refresh."""

from __future__ import annotations

import base64
import json

import pytest
from gateway.tokens import TOKEN_EXPIRED, TOKEN_INVALID, TokenError, TokenVerifier
from zizhu_common import crypto

NOW = 1_800_000_000


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "iss": "zizhu-identity", "sub": "A1", "usr": "u", "org": "130102",
        "path": "/000000/130000/130100/130102/", "lvl": "county", "roles": ["admin"],
        "sid": "S1", "mfa": True, "pwd": False, "iat": NOW - 10, "exp": NOW + 890, "jti": "T1",
    }  # fmt: skip
    base.update(overrides)
    return base


@pytest.fixture
def signer() -> crypto.Sm2Signer:
    private_pem, _ = crypto.generate_sm2_keypair()
    return crypto.Sm2Signer(private_pem)


def verifier_for(signer: crypto.Sm2Signer, now: float = NOW) -> TokenVerifier:
    async def fetch() -> dict[str, crypto.Sm2Verifier]:
        return {signer.key_id: crypto.Sm2Verifier(signer.verifier.public_key_pem)}

    return TokenVerifier(fetch, clock=lambda: now, refresh_min_interval_s=0)


async def test_valid_token_verifies_once_then_comes_from_the_cache(signer) -> None:
    verifier = verifier_for(signer)
    token = crypto.sign_token(signer, claims())
    first = await verifier.verify(token)
    second = await verifier.verify(token)
    assert first is second
    assert verifier.verified_count == 1
    assert first.account_id == "A1" and first.level == "county" and first.roles == {"admin"}


async def test_expired_token_is_refused_even_from_the_cache(signer) -> None:
    now = [float(NOW)]
    verifier = verifier_for(signer)
    verifier._clock = lambda: now[0]
    token = crypto.sign_token(signer, claims(exp=NOW + 60))
    await verifier.verify(token)
    now[0] = NOW + 120
    with pytest.raises(TokenError) as exc:
        await verifier.verify(token)
    assert exc.value.code == TOKEN_EXPIRED
    expired = crypto.sign_token(signer, claims(exp=NOW - 60))
    with pytest.raises(TokenError) as exc:
        await verifier.verify(expired)
    assert exc.value.code == TOKEN_EXPIRED


async def test_tampered_wrong_alg_and_foreign_key_tokens_are_invalid(signer) -> None:
    verifier = verifier_for(signer)
    token = crypto.sign_token(signer, claims())
    head, _, sig = token.split(".")
    forged_body = b64url_encode(json.dumps(claims(roles=["admin", "audit_admin"])).encode())
    hs256 = b64url_encode(json.dumps({"alg": "HS256", "typ": "JWT", "kid": signer.key_id}).encode())
    none = b64url_encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    other = crypto.Sm2Signer(crypto.generate_sm2_keypair()[0])
    foreign = crypto.sign_token(other, claims(), key_id=signer.key_id)
    for bad in (
        f"{head}.{forged_body}.{sig}",
        f"{hs256}.{token.split('.')[1]}.{sig}",
        f"{none}.{token.split('.')[1]}.",
        foreign,
        "not-a-token",
        token + "x",
    ):
        with pytest.raises(TokenError) as exc:
            await verifier.verify(bad)
        assert exc.value.code == TOKEN_INVALID, bad


async def test_unknown_kid_refreshes_the_keys(signer) -> None:
    rotated = crypto.Sm2Signer(crypto.generate_sm2_keypair()[0])
    keys = {signer.key_id: crypto.Sm2Verifier(signer.verifier.public_key_pem)}

    async def fetch() -> dict[str, crypto.Sm2Verifier]:
        return dict(keys)

    verifier = TokenVerifier(fetch, clock=lambda: NOW, refresh_min_interval_s=0)
    await verifier.refresh_keys(force=True)
    keys[rotated.key_id] = crypto.Sm2Verifier(rotated.verifier.public_key_pem)
    assert (await verifier.verify(crypto.sign_token(rotated, claims()))).account_id == "A1"


async def test_missing_claims_and_other_issuers_are_invalid(signer) -> None:
    verifier = verifier_for(signer)
    for bad in (claims(iss="someone"), claims(lvl="planet"), claims(path="130102"),
                {k: v for k, v in claims().items() if k != "sub"}):  # fmt: skip
        with pytest.raises(TokenError) as exc:
            await verifier.verify(crypto.sign_token(signer, bad))
        assert exc.value.code == TOKEN_INVALID


async def test_cache_is_bounded(signer) -> None:
    verifier = verifier_for(signer)
    verifier._cache_size = 3
    for i in range(6):
        await verifier.verify(crypto.sign_token(signer, claims(jti=f"T{i}")))
    assert len(verifier._cache) == 3


async def test_a_failed_key_fetch_does_not_hold_back_the_next_one(signer) -> None:
    """A gateway started before identity: its first fetch fails, and the first token a moment
    later fetches the keys at once (the refresh interval counts successful fetches only)."""
    up = False

    async def fetch() -> dict[str, crypto.Sm2Verifier]:
        if not up:
            raise ConnectionError("identity not up yet")
        return {signer.key_id: crypto.Sm2Verifier(signer.verifier.public_key_pem)}

    verifier = TokenVerifier(fetch, clock=lambda: NOW, refresh_min_interval_s=3600)
    with pytest.raises(ConnectionError):
        await verifier.refresh_keys(force=True)
    up = True
    assert (await verifier.verify(crypto.sign_token(signer, claims()))).account_id == "A1"
    # With keys trusted, an unknown kid within the interval is not fetched again.
    rotated = crypto.Sm2Signer(crypto.generate_sm2_keypair()[0])
    with pytest.raises(TokenError) as exc:
        await verifier.verify(crypto.sign_token(rotated, claims()))
    assert exc.value.code == TOKEN_INVALID

"""Login, lockout, TOTP, tokens (expired, revoked, tampered, wrong algorithm), refresh rotation."""

from __future__ import annotations

import base64
import json

import grpc
import pytest
from zizhu_common.crypto import Sm2Verifier, verify_token
from zizhu_common.errors import error_from_rpc
from zizhu_contracts.identity.v1 import identity_pb2


async def _fails(coro, status: grpc.StatusCode, code: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await coro
    assert info.value.code() == status, info.value.details()
    assert error_from_rpc(info.value).code == code


async def test_login_issues_sm2_token_verifiable_with_public_key(identity) -> None:
    resp = await identity.login("th_operator")
    p = resp.principal
    assert (p.username, p.org_code, p.org_path) == (
        "th_operator",
        "440106",
        "/000000/440000/440100/440106/",
    )
    head = json.loads(base64.urlsafe_b64decode(resp.access_token.split(".")[0] + "=="))
    assert head["alg"] == "SM2SM3" and head["typ"] == "JWT"
    keys = await identity.stub.GetPublicKey(identity_pb2.GetPublicKeyRequest(), timeout=5)
    verifiers = {k.key_id: Sm2Verifier(k.public_key_pem) for k in keys.keys}
    assert head["kid"] == keys.current_key_id
    claims = verify_token(resp.access_token, verifiers, now=identity.clock.now.timestamp())
    assert claims["exp"] - claims["iat"] == 900 and claims["roles"] == ["operator"]
    verified = await identity.stub.VerifyToken(
        identity_pb2.VerifyTokenRequest(access_token=resp.access_token), timeout=5
    )
    assert verified.principal.account_id == p.account_id


async def test_wrong_password_is_unauthenticated_without_hint(identity) -> None:
    await _fails(
        identity.login("th_operator", "Wrong@2024x"),
        grpc.StatusCode.UNAUTHENTICATED,
        "INVALID_CREDENTIALS",
    )
    await _fails(
        identity.login("nobody_here", "Wrong@2024x"),
        grpc.StatusCode.UNAUTHENTICATED,
        "INVALID_CREDENTIALS",
    )


async def test_five_failures_lock_the_account_for_30_minutes(identity) -> None:
    for _ in range(4):
        await _fails(
            identity.login("th_operator", "Wrong@2024x"),
            grpc.StatusCode.UNAUTHENTICATED,
            "INVALID_CREDENTIALS",
        )
    await _fails(
        identity.login("th_operator", "Wrong@2024x"),
        grpc.StatusCode.PERMISSION_DENIED,
        "ACCOUNT_LOCKED",
    )
    # Even the right password is refused while locked.
    await _fails(identity.login("th_operator"), grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_LOCKED")
    identity.clock.advance(minutes=29)
    await _fails(identity.login("th_operator"), grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_LOCKED")
    identity.clock.advance(minutes=1, seconds=1)
    resp = await identity.login("th_operator")
    assert resp.access_token


async def test_totp_is_required_for_auditors(identity) -> None:
    demo = identity.logins["th_auditor"]
    assert demo.totp_secret
    request = identity_pb2.LoginRequest(username="th_auditor", password=demo.password)
    await _fails(
        identity.stub.Login(request, timeout=5), grpc.StatusCode.FAILED_PRECONDITION, "MFA_REQUIRED"
    )
    request.totp_code = "000000" if identity.totp("th_auditor") != "000000" else "111111"
    await _fails(
        identity.stub.Login(request, timeout=5),
        grpc.StatusCode.UNAUTHENTICATED,
        "INVALID_CREDENTIALS",
    )
    request.totp_code = identity.totp("th_auditor")
    resp = await identity.stub.Login(request, timeout=5)
    assert resp.principal.mfa_verified
    # The same code cannot be replayed.
    await _fails(
        identity.stub.Login(request, timeout=5),
        grpc.StatusCode.UNAUTHENTICATED,
        "INVALID_CREDENTIALS",
    )


async def test_expired_token_is_refused(identity) -> None:
    resp = await identity.login("th_operator")
    identity.clock.advance(minutes=15)
    await _fails(
        identity.stub.VerifyToken(
            identity_pb2.VerifyTokenRequest(access_token=resp.access_token), timeout=5
        ),
        grpc.StatusCode.UNAUTHENTICATED,
        "TOKEN_EXPIRED",
    )


async def test_tampered_and_wrong_algorithm_tokens_are_refused(identity) -> None:
    token = (await identity.login("th_operator")).access_token
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["roles"] = ["admin"]
    forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    await _fails(
        identity.stub.VerifyToken(
            identity_pb2.VerifyTokenRequest(access_token=f"{head}.{forged_body}.{sig}"), timeout=5
        ),
        grpc.StatusCode.UNAUTHENTICATED,
        "TOKEN_SIGNATURE",
    )
    header = json.loads(base64.urlsafe_b64decode(head + "=="))
    for alg in ("none", "HS256"):
        bad_head = (
            base64.urlsafe_b64encode(json.dumps({**header, "alg": alg}).encode())
            .rstrip(b"=")
            .decode()
        )
        await _fails(
            identity.stub.VerifyToken(
                identity_pb2.VerifyTokenRequest(access_token=f"{bad_head}.{body}.{sig}"), timeout=5
            ),
            grpc.StatusCode.UNAUTHENTICATED,
            "TOKEN_ALG",
        )


async def test_logout_and_admin_lock_revoke_tokens_at_once(identity) -> None:
    op = await identity.login("th_operator")
    md = [("authorization", f"Bearer {op.access_token}")]
    caller_md = await identity.caller("th_operator")
    caller_md = [kv for kv in caller_md if kv[0] != "authorization"] + md
    await identity.stub.Logout(identity_pb2.LogoutRequest(), metadata=caller_md, timeout=5)
    await _fails(
        identity.stub.VerifyToken(
            identity_pb2.VerifyTokenRequest(access_token=op.access_token), timeout=5
        ),
        grpc.StatusCode.UNAUTHENTICATED,
        "TOKEN_REVOKED",
    )
    school_op = await identity.login("hy_operator")
    admin = await identity.caller("th_admin")
    await identity.stub.LockAccount(
        identity_pb2.LockAccountRequest(account_id=school_op.principal.account_id, reason="离职"),
        metadata=admin,
        timeout=5,
    )
    await _fails(
        identity.stub.VerifyToken(
            identity_pb2.VerifyTokenRequest(access_token=school_op.access_token), timeout=5
        ),
        grpc.StatusCode.UNAUTHENTICATED,
        "TOKEN_REVOKED",
    )
    await _fails(identity.login("hy_operator"), grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_LOCKED")


async def test_refresh_rotates_and_reuse_revokes_the_family(identity) -> None:
    first = await identity.login("th_operator")
    second = await identity.stub.Refresh(
        identity_pb2.RefreshRequest(refresh_token=first.refresh_token), timeout=5
    )
    assert second.refresh_token != first.refresh_token
    assert second.principal.session_id == first.principal.session_id
    await _fails(
        identity.stub.Refresh(
            identity_pb2.RefreshRequest(refresh_token=first.refresh_token), timeout=5
        ),
        grpc.StatusCode.UNAUTHENTICATED,
        "REFRESH_TOKEN_REUSED",
    )
    # The whole family is gone: the newer refresh token and the access tokens too.
    await _fails(
        identity.stub.Refresh(
            identity_pb2.RefreshRequest(refresh_token=second.refresh_token), timeout=5
        ),
        grpc.StatusCode.UNAUTHENTICATED,
        "REFRESH_TOKEN_INVALID",
    )
    await _fails(
        identity.stub.VerifyToken(
            identity_pb2.VerifyTokenRequest(access_token=second.access_token), timeout=5
        ),
        grpc.StatusCode.UNAUTHENTICATED,
        "TOKEN_REVOKED",
    )


async def test_first_login_forces_password_change(identity) -> None:
    admin = await identity.caller("th_admin")
    created = await identity.stub.CreateAccount(
        identity_pb2.CreateAccountRequest(
            username="hy_new_op",
            real_name="李四",
            id_type=1,
            id_number="11010519491231002x",
            phone="13900001111",
            org_code="2144010601",
            roles=[1],
        ),
        metadata=admin,
        timeout=5,
    )
    temp = created.initial_password
    first = await identity.login("hy_new_op", temp)
    assert first.principal.password_change_required
    md = [
        ("x-zizhu-account-id", first.principal.account_id),
        ("x-zizhu-org-path", first.principal.org_path),
        ("x-zizhu-org-code", "2144010601"),
        ("x-zizhu-level", "school"),
        ("x-zizhu-roles", "operator"),
    ]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await identity.stub.ChangePassword(
            identity_pb2.ChangePasswordRequest(current_password=temp, new_password="short"),
            metadata=md,
            timeout=5,
        )
    assert error_from_rpc(info.value).code == "PASSWORD_TOO_SHORT"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await identity.stub.ChangePassword(
            identity_pb2.ChangePasswordRequest(current_password=temp, new_password=temp),
            metadata=md,
            timeout=5,
        )
    assert error_from_rpc(info.value).code == "PASSWORD_REUSED"
    await identity.stub.ChangePassword(
        identity_pb2.ChangePasswordRequest(current_password=temp, new_password="Better#Pass9"),
        metadata=md,
        timeout=5,
    )
    again = await identity.login("hy_new_op", "Better#Pass9")
    assert not again.principal.password_change_required

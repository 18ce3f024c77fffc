"""Authentication and authorization at the gateway, over HTTP against the real identity service:
expired, revoked, tampered and wrong-algorithm tokens; the policy table's 403s; restricted
sessions; the one Chinese error shape; rate limits with Retry-After."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator

import pytest
from gateway_harness import Api, User, start_gateway
from gateway_world import HOME, World, new_user
from zizhu_common.crypto import sign_token

ERROR_KEYS = {"status", "code", "message", "field", "request_id"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(token: str) -> dict:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def assert_error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert ERROR_KEYS <= set(error), error
    assert error["status"] == status and error["code"] == code, error
    assert any("\u4e00" <= ch <= "\u9fff" for ch in error["message"]), error["message"]
    assert "Traceback" not in resp.text and 'File "' not in resp.text
    assert error["request_id"] == resp.headers["x-request-id"]
    return error


def as_token(token: str) -> User:
    user = User("x", "x")
    user.token = token
    return user


def test_requests_without_a_token_are_refused_in_the_one_shape(api: Api) -> None:
    assert_error(api.request("GET", "/me"), 401, "TOKEN_MISSING")
    resp = api.request("GET", "/me", headers={"Authorization": "Basic abc"})
    assert_error(resp, 401, "TOKEN_MISSING")
    assert resp.headers["www-authenticate"].startswith("Bearer")


def test_tampered_and_wrong_algorithm_tokens_are_invalid(api: Api, world: World) -> None:
    user = world.admins["county"]
    head, body, sig = user.token.split(".")
    escalated = {**claims_of(user.token), "lvl": "national", "path": "/000000/", "org": "000000"}
    tampered = f"{head}.{b64url(json.dumps(escalated).encode())}.{sig}"
    hs256 = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "x"}).encode())
    none = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    for bad in (
        tampered,
        f"{hs256}.{body}.{sig}",
        f"{none}.{body}.",
        f"{head}.{body}.{sig[:-4]}AAAA",
        "garbage",
        user.token + ".x",
    ):
        assert_error(api.request("GET", "/me", as_token(bad)), 401, "TOKEN_INVALID")
    assert api.request("GET", "/me", user).status_code == 200


def test_expired_tokens_are_refused(api: Api, world: World, stack) -> None:
    user = world.admins["county"]
    now = int(time.time())
    expired = sign_token(
        stack.signer, {**claims_of(user.token), "iat": now - 1000, "exp": now - 100,
                       "jti": f"T{uuid.uuid4().hex}"},
    )  # fmt: skip
    assert_error(api.request("GET", "/me", as_token(expired)), 401, "TOKEN_EXPIRED")
    # The same claims, still valid, pass: only the expiry was at fault.
    fresh = sign_token(stack.signer, {**claims_of(user.token), "jti": f"T{uuid.uuid4().hex}"})
    assert api.request("GET", "/me", as_token(fresh)).status_code == 200


def test_logout_revokes_the_token_at_once(api: Api, world: World) -> None:
    user = new_user(api, world.admins["county"], HOME["school"], ["viewer"])
    token = user.token
    assert api.request("GET", "/me", user).status_code == 200
    api.ok("POST", "/auth/logout", user, json={})
    assert_error(api.request("GET", "/me", as_token(token)), 401, "TOKEN_REVOKED")


def test_admin_lock_revokes_the_accounts_tokens(api: Api, world: World) -> None:
    county = world.admins["county"]
    user = new_user(api, county, HOME["school"], ["viewer"])
    assert api.request("GET", "/me", user).status_code == 200
    api.ok("POST", f"/accounts/{user.account_id}/lock", county, json={"reason": "离职"})
    assert_error(api.request("GET", "/me", user), 401, "TOKEN_REVOKED")
    resp = api.request("POST", "/auth/login", json={"username": user.username,
                                                     "password": user.password})  # fmt: skip
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "ACCOUNT_LOCKED"


def test_refresh_rotates_and_the_old_refresh_token_stops_working(api: Api, world: World) -> None:
    user = new_user(api, world.admins["county"], HOME["school"], ["viewer"])
    first = api.ok("POST", "/auth/refresh", json={"refresh_token": user.refresh_token})
    assert first["status"] == "authenticated" and first["access_token"] != user.token
    again = api.request("POST", "/auth/refresh", json={"refresh_token": user.refresh_token})
    assert again.status_code == 401


def test_policy_table_refuses_wrong_role_and_wrong_level(api: Api, world: World) -> None:
    county = world.admins["county"]
    viewer = new_user(api, world.admins["city"], HOME["county"], ["viewer"])
    # viewer: no account management; admin at school level: no account management either.
    error = assert_error(api.request("GET", "/accounts", viewer), 403, "ACTION_NOT_ALLOWED")
    assert error["details"]["action"] == "account.list"
    assert_error(api.request("GET", "/accounts", world.admins["school"]), 403,
                 "ACTION_NOT_ALLOWED")  # fmt: skip
    # admins do not read the audit log; audit admins do not manage accounts.
    assert_error(api.request("GET", "/audit-log", county), 403, "ACTION_NOT_ALLOWED")
    assert_error(
        api.request("POST", f"/accounts/{viewer.account_id}/lock", world.audit_admins["county"],
                    json={}),
        403, "ACTION_NOT_ALLOWED",
    )  # fmt: skip
    # the chain is verified by root-level audit admins only.
    assert_error(api.request("GET", "/audit-log/verify", world.audit_admins["county"]), 403,
                 "ACTION_NOT_ALLOWED")  # fmt: skip
    assert api.ok("GET", "/audit-log/verify", world.audit_admins["national"])["intact"] is True


def test_a_session_with_a_temporary_password_may_only_change_it(api: Api, world: World) -> None:
    county = world.admins["county"]
    user = new_user(api, county, HOME["school"], ["viewer"], login=False)
    data = api.login(user, expect_restricted=True)
    assert data["status"] == "password_change_required"
    assert_error(api.request("GET", f"/orgs/{HOME['school']}", user), 403, "SESSION_RESTRICTED")
    assert api.request("GET", "/me", user).json()["restricted"] is True
    api.login(user)
    assert api.request("GET", f"/orgs/{HOME['school']}", user).status_code == 200


def test_validation_errors_are_chinese_with_the_field(api: Api, world: World) -> None:
    error = assert_error(api.request("POST", "/auth/login", json={"username": "a"}), 422,
                         "INVALID_ARGUMENT")  # fmt: skip
    assert error["field"] == "password"
    bad = api.request("POST", "/accounts", world.admins["county"],
                      json={"username": "x!", "real_name": "", "org_code": "130102"})  # fmt: skip
    assert_error(bad, 422, "INVALID_ARGUMENT")
    assert_error(api.request("GET", "/nope", world.admins["county"]), 404, "NOT_FOUND")
    resp = api.request("GET", "/orgs/999999", world.admins["county"])
    assert resp.status_code == 404 and resp.json()["error"]["code"].endswith("NOT_FOUND")


def test_wrong_password_answers_401_without_saying_which_part_was_wrong(api: Api) -> None:
    resp = api.request("POST", "/auth/login", json={"username": "nobody", "password": "x"})
    error = assert_error(resp, 401, "INVALID_CREDENTIALS")
    unknown_user_message = error["message"]
    assert "不存在" not in unknown_user_message


def test_oversize_upload_is_refused_with_413(api: Api, world: World) -> None:
    big = b"x" * (21 * 1024 * 1024)
    resp = api.request("POST", "/orgs/import", world.admins["national"],
                       files={"file": ("big.csv", big, "text/csv")})  # fmt: skip
    assert_error(resp, 413, "PAYLOAD_TOO_LARGE")


# --------------------------------------------------------------------------- rate limits


@pytest.fixture(scope="module")
def limited(stack, tmp_path_factory) -> Iterator[Api]:
    url, proc = start_gateway(
        identity_addr=stack.identity_addr, nats_url=stack.nats_url, redis_url=stack.redis_url,
        tmp=tmp_path_factory.mktemp("limited"), name="limited-gateway",
        env={"RATE_LIMIT_WINDOW_S": "86400", "LOGIN_LIMIT_WINDOW_S": "86400",
             "RATE_LIMIT_PER_ACCOUNT": "5", "RATE_LIMIT_PER_IP": "8", "LOGIN_LIMIT_PER_IP": "3",
             "TRUSTED_PROXIES": '["127.0.0.1/32"]'},
    )  # fmt: skip
    client = Api(url)
    yield client
    client.close()
    proc.stop()


def from_ip() -> dict[str, str]:
    return {"X-Forwarded-For": f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"}


def test_rate_limit_per_account_answers_429_with_retry_after(
    api: Api, limited: Api, world: World
) -> None:
    user = new_user(api, world.admins["county"], HOME["school"], ["viewer"])
    ip = from_ip()
    for _ in range(5):
        assert limited.request("GET", "/me", user, headers=ip).status_code == 200
    resp = limited.request("GET", "/me", user, headers=ip)
    error = assert_error(resp, 429, "RATE_LIMITED")
    assert error["details"]["scope"] == "account"
    assert 1 <= int(resp.headers["retry-after"]) <= 86401


def test_rate_limit_per_ip_counts_every_account(api: Api, limited: Api, world: World) -> None:
    a = new_user(api, world.admins["county"], HOME["school"], ["viewer"])
    b = new_user(api, world.admins["county"], HOME["school"], ["viewer"])
    ip = from_ip()
    for user in (a, a, a, a, a, b, b, b):
        assert limited.request("GET", "/me", user, headers=ip).status_code == 200
    resp = limited.request("GET", "/me", b, headers=ip)
    assert assert_error(resp, 429, "RATE_LIMITED")["details"]["scope"] == "ip"
    assert int(resp.headers["retry-after"]) >= 1
    # b has used 4 of its 5 (a refused request counts too): another IP still gets through.
    assert limited.request("GET", "/me", b, headers=from_ip()).status_code == 200


def test_login_attempts_are_limited_per_ip(limited: Api) -> None:
    ip = from_ip()
    body = {"username": "nobody", "password": "wrong-password"}
    for _ in range(3):
        assert limited.request("POST", "/auth/login", json=body, headers=ip).status_code == 401
    resp = limited.request("POST", "/auth/login", json=body, headers=ip)
    assert assert_error(resp, 429, "RATE_LIMITED")["details"]["scope"] == "login"
    assert int(resp.headers["retry-after"]) >= 1


def test_five_failed_logins_lock_the_account(api: Api, world: World) -> None:
    user = new_user(api, world.admins["county"], HOME["school"], ["viewer"])
    for _ in range(5):
        resp = api.request("POST", "/auth/login",
                           json={"username": user.username, "password": "Wrong-pass-123"})  # fmt: skip
        assert resp.status_code in (401, 403), resp.text
    resp = api.request("POST", "/auth/login",
                       json={"username": user.username, "password": user.password})  # fmt: skip
    assert_error(resp, 403, "ACCOUNT_LOCKED")
    # Guessing someone's password must not log them out: existing sessions go on.
    assert api.ok("GET", "/me", user)["status"] == "locked"

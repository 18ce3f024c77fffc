"""Redis is never the record: while it is away the gateway still refuses revoked tokens (asking
identity instead), serves everything else, and refuses Idempotency-Keys it cannot honour."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from gateway_harness import Api, User, start_gateway
from gateway_world import HOME, World, new_user
from zizhu_common.devservers import free_port


@pytest.fixture(scope="module")
def no_redis(stack, tmp_path_factory) -> Iterator[Api]:
    url, proc = start_gateway(
        identity_addr=stack.identity_addr, nats_url=stack.nats_url,
        redis_url=f"redis://127.0.0.1:{free_port()}/0", tmp=tmp_path_factory.mktemp("no-redis"),
        name="no-redis-gateway",
    )  # fmt: skip
    client = Api(url)
    yield client
    client.close()
    proc.stop()


def test_without_redis_revocation_is_checked_by_identity(
    api: Api, no_redis: Api, world: World
) -> None:
    user = new_user(api, world.admins["county"], HOME["school"], ["viewer"])
    assert no_redis.ok("GET", "/me", user)["username"] == user.username
    token = user.token
    api.ok("POST", "/auth/logout", user, json={})
    revoked = User("x", "x")
    revoked.token = token
    resp = no_redis.request("GET", "/me", revoked)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "TOKEN_REVOKED"


def test_without_redis_idempotency_keys_are_refused_not_ignored(
    no_redis: Api, world: World
) -> None:
    county = world.admins["county"]
    resp = no_redis.request("POST", f"/accounts/{county.account_id}/unlock", county, json={},
                            headers={"Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "IDEMPOTENCY_UNAVAILABLE"
    assert resp.headers["retry-after"] == "5"

"""Idempotency-Key on mutating POSTs: same key and body → the stored answer; other body → 422;
still in flight → 409; keys belong to one account."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from gateway_harness import Api, PausableProxy, User, resident_id, start_gateway
from gateway_world import HOME, World, next_serial


def account_body(org_code: str) -> dict:
    n = next_serial()
    return {"username": f"idem_{n}", "real_name": "幂等", "id_type": "resident_id",
            "id_number": resident_id(n), "phone": f"137{n:08d}", "org_code": org_code,
            "roles": ["viewer"]}  # fmt: skip


def test_same_key_and_body_answers_the_stored_response(api: Api, world: World) -> None:
    county = world.admins["county"]
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = account_body(HOME["school"])
    first = api.request("POST", "/accounts", county, json=body, headers=key)
    assert first.status_code == 201, first.text
    again = api.request("POST", "/accounts", county, json=body, headers=key)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    listed = api.ok("GET", "/accounts", county, params={"q": body["username"]})
    assert [a["username"] for a in listed["items"]] == [body["username"]]


def test_same_key_with_another_body_is_refused(api: Api, world: World) -> None:
    county = world.admins["county"]
    key = {"Idempotency-Key": uuid.uuid4().hex}
    assert api.request("POST", "/accounts", county, json=account_body(HOME["school"]),
                       headers=key).status_code == 201  # fmt: skip
    other = api.request("POST", "/accounts", county, json=account_body(HOME["school"]),
                        headers=key)  # fmt: skip
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_keys_are_per_account(api: Api, world: World) -> None:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    a = api.request("POST", "/accounts", world.admins["county"],
                    json=account_body(HOME["school"]), headers=key)  # fmt: skip
    b = api.request("POST", "/accounts", world.admins["city"],
                    json=account_body(HOME["county"]), headers=key)  # fmt: skip
    assert a.status_code == 201 and b.status_code == 201
    assert b.headers.get("idempotent-replayed") is None


def test_refusals_before_the_request_ran_are_not_stored(api: Api, world: World) -> None:
    county = world.admins["county"]
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = account_body(HOME["school"])
    expired = User("x", "x")
    expired.token = "a.b.c"
    assert api.request("POST", "/accounts", expired, json=body, headers=key).status_code == 401
    assert api.request("POST", "/accounts", county, json=body, headers=key).status_code == 201


@pytest.fixture(scope="module")
def slow_gateway(stack, tmp_path_factory) -> Iterator[tuple[Api, PausableProxy]]:
    proxy = PausableProxy(stack.identity_addr)
    url, proc = start_gateway(
        identity_addr=proxy.addr, nats_url=stack.nats_url, redis_url=stack.redis_url,
        tmp=tmp_path_factory.mktemp("slow"), name="slow-gateway",
        env={"RPC_DEADLINE_S": "20"},
    )  # fmt: skip
    client = Api(url)
    yield client, proxy
    proxy.resume()
    client.close()
    proc.stop()
    proxy.close()


def test_same_key_while_in_flight_answers_409(
    api: Api, world: World, slow_gateway: tuple[Api, PausableProxy]
) -> None:
    slow, proxy = slow_gateway
    county = world.admins["county"]
    assert slow.request("GET", "/me", county).status_code == 200  # channel connected
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = account_body(HOME["school"])
    results: dict[str, httpx.Response] = {}

    def first() -> None:
        results["first"] = slow.request("POST", "/accounts", county, json=body, headers=key)

    proxy.pause()
    thread = threading.Thread(target=first)
    thread.start()
    time.sleep(0.5)  # the first request has claimed the key and waits on identity
    try:
        second = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            second = api.request("POST", "/accounts", county, json=body, headers=key)
            if second.status_code == 409:
                break
            time.sleep(0.05)
        assert second is not None and second.status_code == 409, second and second.text
        assert second.json()["error"]["code"] == "IDEMPOTENCY_IN_FLIGHT"
        assert second.headers.get("retry-after")
    finally:
        proxy.resume()
        thread.join(timeout=30)
    assert results["first"].status_code == 201, results["first"].text
    replay = api.request("POST", "/accounts", county, json=body, headers=key)
    assert replay.status_code == 201 and replay.json() == results["first"].json()

"""Gateway test fixtures: the real identity service and gateways as processes, and a small
five-level world (two branches at every level) of organisations and logged-in accounts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from gateway_harness import (
    Api,
    Proc,
    User,
    bootstrap_admin,
    start_gateway,
    start_identity,
)
from gateway_world import HOME, LEVELS, ORGS, SIBLING, World, new_user
from zizhu_common.crypto import Sm2Signer, generate_sm2_keypair


@dataclass
class Stack:
    """Identity + one gateway + the signing key the identity uses."""

    identity_addr: str
    gateway_url: str
    signer: Sm2Signer
    nats_url: str
    redis_url: str
    tmp: Path
    procs: list[Proc] = field(default_factory=list)


@pytest.fixture(scope="session")
def stack(nats_server, redis_server, tmp_path_factory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("gw")
    private_pem, _ = generate_sm2_keypair()
    identity_addr, identity = start_identity(
        nats_url=nats_server.url, redis_url=redis_server.url, tmp=tmp,
        env={"TOKEN_SIGNING_KEY": private_pem},
    )  # fmt: skip
    procs = [identity]
    try:
        url, gateway = start_gateway(
            identity_addr=identity_addr, nats_url=nats_server.url, redis_url=redis_server.url,
            tmp=tmp,
        )  # fmt: skip
        procs.append(gateway)
        yield Stack(identity_addr, url, Sm2Signer(private_pem), nats_server.url,
                    redis_server.url, tmp, procs)  # fmt: skip
    finally:
        for proc in reversed(procs):
            proc.stop()


@pytest.fixture(scope="session")
def api(stack: Stack) -> Iterator[Api]:
    client = Api(stack.gateway_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def national_admin(api: Api) -> User:
    user = bootstrap_admin()
    api.login(user)
    return user


@pytest.fixture(scope="session")
def world(api: Api, national_admin: User) -> World:
    resp = api.import_orgs(national_admin, ORGS)
    assert resp.status_code == 200, resp.text
    admins = {"national": national_admin}
    audit_admins: dict[str, User] = {}
    for level in LEVELS:
        org = HOME[level]
        creator = (
            admins["national"]
            if level in ("national", "province")
            else admins[LEVELS[LEVELS.index(level) - 1]]
        )
        if level != "national":
            admins[level] = new_user(api, creator, org, ["admin"], level=level)
        audit_admins[level] = new_user(api, creator, org, ["audit_admin"], level=level)
    sibling_accounts = {
        level: new_user(api, national_admin, code, ["operator"], login=False).account_id
        for level, code in SIBLING.items()
    }
    return World(admins, audit_admins, dict(SIBLING), sibling_accounts)

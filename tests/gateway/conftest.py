"""Gateway test fixtures: the five services and a gateway as real processes, and a small
five-level world (two branches at every level) of organisations and logged-in accounts of every
role at each level, which every service knows about before a test runs."""

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
    start_services,
    stop_all,
)
from gateway_world import World, build_world
from zizhu_common.crypto import Sm2Signer, generate_sm2_keypair


@dataclass
class Stack:
    """The five services, one gateway in front of them, and the key identity signs tokens with."""

    addrs: dict[str, str]
    gateway_url: str
    signer: Sm2Signer
    nats_url: str
    redis_url: str
    tmp: Path
    procs: list[Proc] = field(default_factory=list)

    @property
    def identity_addr(self) -> str:
        """The identity service's gRPC address."""
        return self.addrs["identity"]


@pytest.fixture(scope="session")
def stack(nats_server, redis_server, tmp_path_factory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("gw")
    private_pem, _ = generate_sm2_keypair()
    addrs, services = start_services(
        nats_url=nats_server.url, redis_url=redis_server.url, tmp=tmp,
        env={"identity": {"TOKEN_SIGNING_KEY": private_pem}},
    )  # fmt: skip
    procs = list(services.values())
    try:
        # After the services: a gateway whose first connection attempts fail backs off for long.
        url, gateway = start_gateway(
            identity_addr=addrs["identity"], nats_url=nats_server.url, redis_url=redis_server.url,
            tmp=tmp, env={f"{svc.upper()}_ADDR": addr for svc, addr in addrs.items()},
        )  # fmt: skip
        procs.append(gateway)
        yield Stack(addrs, url, Sm2Signer(private_pem), nats_server.url, redis_server.url, tmp,
                    procs)  # fmt: skip
    finally:
        stop_all(procs)


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
def world(api: Api, national_admin: User, stack: Stack) -> World:
    return build_world(api, national_admin, nats_url=stack.nats_url)

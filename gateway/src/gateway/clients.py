"""The only place gRPC channels and stubs are made; every call carries a deadline and the caller."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import grpc
from zizhu_common.logs import request_id_var
from zizhu_common.rpc import MD_REQUEST_ID, open_channel
from zizhu_contracts.identity.v1 import identity_pb2_grpc

from gateway.settings import Settings

SERVICES = ("identity", "roster", "aid", "funding", "reconcile")

Call = Callable[..., Awaitable[Any]]


class HasMetadata(Protocol):
    """A caller that knows its gRPC metadata (CallerContext, or the gateway's Caller)."""

    def to_metadata(self) -> list[tuple[str, str]]: ...


class ServiceClient:
    """A stub whose every method call gets the deadline and the caller context as metadata.

    `await client.GetOrg(request, caller=caller)`; `caller=None` only for calls made on nobody's
    behalf (login, refresh, the public keys), which still carry the request id.
    """

    def __init__(self, stub: Any, *, deadline_s: float) -> None:
        self._stub = stub
        self._deadline_s = deadline_s
        self._calls: dict[str, Call] = {}

    def __getattr__(self, name: str) -> Call:
        call = self._calls.get(name)
        if call is None:
            call = self._wrap(getattr(self._stub, name))
            self._calls[name] = call
        return call

    def _wrap(self, method: Any) -> Call:
        default_deadline_s = self._deadline_s

        async def call(
            request: Any,
            *,
            caller: HasMetadata | None,
            deadline_s: float | None = None,
            metadata: Sequence[tuple[str, str]] = (),
        ) -> Any:
            if caller is not None:
                md = caller.to_metadata()
            else:
                md = [(MD_REQUEST_ID, request_id_var.get() or uuid.uuid4().hex)]
            md.extend(metadata)
            return await method(request, metadata=md, timeout=deadline_s or default_deadline_s)

        return call


class Clients:
    """One channel per backend service, opened at start-up and closed at shutdown."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.addresses = {name: getattr(settings, f"{name}_addr") for name in SERVICES}
        self.channels: dict[str, grpc.aio.Channel] = {}
        self._identity: ServiceClient | None = None

    def open(self) -> None:
        """Open the channels (lazy connect) and make the stubs."""
        for name, addr in self.addresses.items():
            self.channels[name] = open_channel(addr)
        self._identity = ServiceClient(
            identity_pb2_grpc.IdentityServiceStub(self.channels["identity"]),
            deadline_s=self.settings.rpc_deadline_s,
        )

    async def close(self) -> None:
        """Close every channel."""
        for channel in self.channels.values():
            await channel.close()
        self.channels.clear()

    def channel(self, name: str) -> grpc.aio.Channel:
        """The channel to one service."""
        return self.channels[name]

    @property
    def identity(self) -> Any:
        """The identity service (zizhu_contracts.identity.v1.IdentityService)."""
        if self._identity is None:
            raise RuntimeError("Clients.open() first")
        return self._identity

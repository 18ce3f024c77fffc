"""The only place gRPC channels and stubs are made; every call carries a deadline and the caller."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import grpc
from zizhu_common.logs import request_id_var
from zizhu_common.rpc import MD_REQUEST_ID, open_channel
from zizhu_contracts.aid.v1 import aid_pb2_grpc
from zizhu_contracts.funding.v1 import funding_pb2_grpc
from zizhu_contracts.identity.v1 import identity_pb2_grpc
from zizhu_contracts.reconcile.v1 import reconcile_pb2_grpc
from zizhu_contracts.roster.v1 import roster_pb2_grpc

from gateway.settings import Settings

SERVICES = ("identity", "roster", "aid", "funding", "reconcile")
STUBS: dict[str, Any] = {
    "identity": identity_pb2_grpc.IdentityServiceStub,
    "roster": roster_pb2_grpc.RosterServiceStub,
    "aid": aid_pb2_grpc.AidServiceStub,
    "funding": funding_pb2_grpc.FundingServiceStub,
    "reconcile": reconcile_pb2_grpc.ReconcileServiceStub,
}

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
        self._clients: dict[str, ServiceClient] = {}

    def open(self) -> None:
        """Open the channels (lazy connect) and make the stubs."""
        for name, addr in self.addresses.items():
            self.channels[name] = open_channel(addr)
            self._clients[name] = ServiceClient(
                STUBS[name](self.channels[name]), deadline_s=self.settings.rpc_deadline_s
            )

    async def close(self) -> None:
        """Close every channel."""
        for channel in self.channels.values():
            await channel.close()
        self.channels.clear()

    def channel(self, name: str) -> grpc.aio.Channel:
        """The channel to one service."""
        return self.channels[name]

    def client(self, name: str) -> ServiceClient:
        """The deadline- and caller-carrying client of one service."""
        try:
            return self._clients[name]
        except KeyError:
            raise RuntimeError("Clients.open() first") from None

    @property
    def identity(self) -> Any:
        """zizhu_contracts.identity.v1.IdentityService."""
        return self.client("identity")

    @property
    def roster(self) -> Any:
        """zizhu_contracts.roster.v1.RosterService."""
        return self.client("roster")

    @property
    def aid(self) -> Any:
        """zizhu_contracts.aid.v1.AidService."""
        return self.client("aid")

    @property
    def funding(self) -> Any:
        """zizhu_contracts.funding.v1.FundingService."""
        return self.client("funding")

    @property
    def reconcile(self) -> Any:
        """zizhu_contracts.reconcile.v1.ReconcileService."""
        return self.client("reconcile")

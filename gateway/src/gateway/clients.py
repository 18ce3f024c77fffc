"""The only place gRPC channels and stubs are made; every call carries a deadline."""

from __future__ import annotations

import grpc
from zizhu_common.rpc import open_channel

from gateway.settings import Settings

SERVICES = ("identity", "roster", "aid", "funding", "reconcile")


class Clients:
    """One channel per backend service, opened at start-up and closed at shutdown."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.addresses = {name: getattr(settings, f"{name}_addr") for name in SERVICES}
        self.channels: dict[str, grpc.aio.Channel] = {}

    def open(self) -> None:
        """Open the channels (lazy connect)."""
        for name, addr in self.addresses.items():
            self.channels[name] = open_channel(addr)

    async def close(self) -> None:
        """Close every channel."""
        for channel in self.channels.values():
            await channel.close()
        self.channels.clear()

    def channel(self, name: str) -> grpc.aio.Channel:
        """The channel to one service."""
        return self.channels[name]

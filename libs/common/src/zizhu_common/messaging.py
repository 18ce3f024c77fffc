"""NATS JetStream: connection, one stream per producer, durable pull consumers."""

from __future__ import annotations

import logging

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

log = logging.getLogger(__name__)

# One stream per producer; subjects are `<producer>.<aggregate>.<event>`.
PRODUCER_STREAMS: dict[str, str] = {
    "identity": "IDENTITY",
    "roster": "ROSTER",
    "aid": "AID",
    "funding": "FUNDING",
    "reconcile": "RECONCILE",
    "gateway": "GATEWAY",
}

EVENT_ID_HEADER = "Nats-Msg-Id"
EVENT_TYPE_HEADER = "Zizhu-Event-Type"


def stream_for(producer: str) -> str:
    """The stream name of a producer (`aid` → `AID`)."""
    return PRODUCER_STREAMS[producer]


async def connect_nats(url: str, *, name: str) -> NatsClient:
    """Connect and keep reconnecting forever; JetStream calls fail fast while disconnected."""

    async def on_disconnected() -> None:
        log.warning("NATS disconnected")

    async def on_reconnected() -> None:
        log.info("NATS reconnected")

    async def on_error(exc: Exception) -> None:
        log.warning("NATS error: %s", exc)

    return await nats.connect(
        servers=[u.strip() for u in url.split(",") if u.strip()],
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=5,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
        error_cb=on_error,
        allow_reconnect=True,
    )


async def ensure_stream(
    js: JetStreamContext,
    *,
    name: str,
    subjects: list[str],
    duplicate_window_s: float = 120.0,
    replicas: int = 1,
    max_age_s: float = 400 * 24 * 3600,
) -> None:
    """Create the stream, or bring an existing one's settings up to date."""
    config = StreamConfig(
        name=name,
        subjects=subjects,
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        num_replicas=replicas,
        duplicate_window=duplicate_window_s,
        max_age=max_age_s,
    )
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(config)
        log.info("stream %s created for %s", name, subjects)
        return
    current = info.config
    if (
        sorted(current.subjects or []) != sorted(subjects)
        or current.duplicate_window != duplicate_window_s
        or current.max_age != max_age_s
    ):
        await js.update_stream(config)
        log.info("stream %s updated", name)


async def ensure_producer_stream(
    js: JetStreamContext, *, producer: str, duplicate_window_s: float, replicas: int
) -> str:
    """Ensure the stream `<PRODUCER>` holding `<producer>.>` exists; returns its name."""
    name = stream_for(producer)
    await ensure_stream(
        js,
        name=name,
        subjects=[f"{producer}.>"],
        duplicate_window_s=duplicate_window_s,
        replicas=replicas,
    )
    return name

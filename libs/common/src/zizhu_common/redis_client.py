"""Redis client: rate limits, revocation, caches, locks, idempotency keys (never the record)."""

from __future__ import annotations

from redis.asyncio import Redis


def connect_redis(url: str) -> Redis:
    """A pooled asyncio Redis client with short timeouts."""
    return Redis.from_url(
        url, socket_timeout=2.0, socket_connect_timeout=2.0, health_check_interval=30
    )

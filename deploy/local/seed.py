"""Idempotent demo data for the embedded default.

Each service contributes its part through `python -m <svc>_service seed-demo`, run with the same
environment as the running service: it writes through the service's own use cases and outbox (so
the running service's relay publishes the events) and prints the demo logins it knows as JSON.
Identity goes first (organisations and accounts); the others only read what identity's events
carry, so they seed side by side.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from deploy.local.config import ROOT, SERVICES


@dataclass(frozen=True)
class Login:
    """A demo account to print: organisation, role, username, password, TOTP secret."""

    org: str
    role: str
    username: str
    password: str
    totp_secret: str = ""


class SeedError(RuntimeError):
    """A service refused its demo data."""


def _seed_one(svc: str, env: dict[str, str]) -> list[Login]:
    proc = subprocess.run(
        [sys.executable, "-m", f"{svc}_service", "seed-demo"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise SeedError(f"{svc} 演示数据写入失败：\n{proc.stderr[-3000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    return [Login(**entry) for entry in (json.loads(lines[-1]) if lines else [])]


def run(service_env: Callable[[str], dict[str, str]]) -> list[Login]:
    """Seed identity first (everything hangs off its organisations), then the other services side
    by side; returns the demo logins to print."""
    logins = _seed_one(SERVICES[0], service_env(SERVICES[0]))
    rest = SERVICES[1:]
    with ThreadPoolExecutor(max_workers=len(rest)) as pool:
        for found in pool.map(lambda svc: _seed_one(svc, service_env(svc)), rest):
            logins.extend(found)
    return logins

"""Idempotent demo data for the embedded default.

Each service contributes its part through `python -m <svc>_service seed-demo`, run with the same
environment as the running service: it writes through the service's own use cases and outbox (so
the running service's relay publishes the events) and prints the demo logins it knows as JSON.
Order matters: organisations and accounts first, then students, projects, funds, reconcile.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
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


def run(service_env: Callable[[str], dict[str, str]]) -> list[Login]:
    """Seed every service in dependency order; returns the demo logins to print."""
    logins: list[Login] = []
    for svc in SERVICES:
        proc = subprocess.run(
            [sys.executable, "-m", f"{svc}_service", "seed-demo"],
            env=service_env(svc),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode != 0:
            raise SeedError(f"{svc} 演示数据写入失败：\n{proc.stderr[-3000:]}")
        lines = [line for line in proc.stdout.splitlines() if line.startswith("[")]
        for entry in json.loads(lines[-1]) if lines else []:
            logins.append(Login(**entry))
    return logins

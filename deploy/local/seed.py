"""Idempotent demo data for the embedded default.

Each service adds a step here as its capabilities land (organisations and accounts, students and
special groups, projects and an open period, allocations, reconcile dictionaries). A step must be
safe to run on every start: it checks what exists and only adds what is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from deploy.local.config import LocalLayout


@dataclass(frozen=True)
class Login:
    """A demo account to print: organisation, role, username, password."""

    org: str
    role: str
    username: str
    password: str


Step = Callable[[LocalLayout], list[Login]]

STEPS: list[Step] = []


def run(layout: LocalLayout) -> list[Login]:
    """Run every seeding step in order; returns the demo logins to print."""
    logins: list[Login] = []
    for step in STEPS:
        logins.extend(step(layout))
    return logins

"""Reconcile's use cases; `ReconcileServices` bundles them over one set of dependencies."""

from __future__ import annotations

from reconcile_service.service.context import Deps
from reconcile_service.service.findings import FindingService
from reconcile_service.service.history import HistoryService
from reconcile_service.service.runs import RunService
from reconcile_service.service.stats import StatsService
from reconcile_service.service.unfunded import UnfundedService


class ReconcileServices:
    """Every use case of the service over the same database, outbox, lock and clock."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.runs = RunService(deps)
        self.unfunded = UnfundedService(deps)
        self.stats = StatsService(deps)
        self.history = HistoryService(deps)
        self.findings = FindingService(deps)


__all__ = ["Deps", "ReconcileServices"]

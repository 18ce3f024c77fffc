"""Use cases of the funding service; each owns its transaction and writes outbox events."""

from funding_service.service.allocations import AllocationPage, AllocationService
from funding_service.service.context import Deps
from funding_service.service.costshares import CostSharePage, CostShareService
from funding_service.service.feeds import FeedService
from funding_service.service.summary import (
    ExecutionRow,
    OverspendingRow,
    Page,
    Summary,
    SummaryService,
)

__all__ = [
    "AllocationPage",
    "AllocationService",
    "CostSharePage",
    "CostShareService",
    "Deps",
    "ExecutionRow",
    "FeedService",
    "FundingServices",
    "OverspendingRow",
    "Page",
    "Summary",
    "SummaryService",
]


class FundingServices:
    """All funding use cases over one set of dependencies."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.allocations = AllocationService(deps)
        self.cost_shares = CostShareService(deps)
        self.summary = SummaryService(deps)
        self.feeds = FeedService(deps)

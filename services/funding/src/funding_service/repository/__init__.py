"""Queries of the funding service: each repository reads and writes its tables and returns
domain objects. Transactions belong to the service layer."""

from funding_service.repository.allocations import AllocationFilter, AllocationRepository
from funding_service.repository.execution import ExecutionRepository, RecordState
from funding_service.repository.ledger import FlagChange, LedgerRepository
from funding_service.repository.refs import CostShareRepository, OrgRepository, ProjectRepository

__all__ = [
    "AllocationFilter",
    "AllocationRepository",
    "CostShareRepository",
    "ExecutionRepository",
    "FlagChange",
    "LedgerRepository",
    "OrgRepository",
    "ProjectRepository",
    "RecordState",
]

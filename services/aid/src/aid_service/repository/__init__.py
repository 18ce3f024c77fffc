"""Queries of the aid database, returning domain objects (SQLite and PostgreSQL)."""

from aid_service.repository.common import prefix_range
from aid_service.repository.imports import ImportRepository, StoredImport
from aid_service.repository.orgs import OrgRepository
from aid_service.repository.projects import PeriodRepository, ProjectRepository, WindowRepository
from aid_service.repository.records import RecordQuery, RecordRepository

__all__ = [
    "ImportRepository",
    "OrgRepository",
    "PeriodRepository",
    "ProjectRepository",
    "RecordQuery",
    "RecordRepository",
    "StoredImport",
    "WindowRepository",
    "prefix_range",
]

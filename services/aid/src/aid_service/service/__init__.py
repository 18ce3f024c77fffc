"""The aid use cases, built over one set of collaborators (Deps)."""

from __future__ import annotations

from aid_service.service.audit import AuditService
from aid_service.service.context import Deps
from aid_service.service.imports import ImportService
from aid_service.service.orgs import OrgCopy
from aid_service.service.projects import ProjectService
from aid_service.service.record_reads import RecordReads
from aid_service.service.records import RecordService
from aid_service.service.stats import StatsService
from aid_service.service.windows import WindowService


class AidServices:
    """Every use case of the aid service."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.orgs = OrgCopy(deps)
        self.projects = ProjectService(deps)
        self.windows = WindowService(deps)
        self.records = RecordService(deps)
        self.reads = RecordReads(deps)
        self.audit = AuditService(deps, self.reads)
        self.imports = ImportService(deps, self.records)
        self.stats = StatsService(deps)


__all__ = ["AidServices", "Deps"]

"""The roster's use cases: each owns its transaction and writes its events to the outbox."""

from __future__ import annotations

from roster_service.service.context import Deps
from roster_service.service.groups import GroupService
from roster_service.service.recognitions import RecognitionService
from roster_service.service.students import StudentService


class RosterServices:
    """Every roster use case over one set of collaborators."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.students = StudentService(deps)
        self.groups = GroupService(deps)
        self.recognitions = RecognitionService(deps)


__all__ = ["Deps", "RosterServices"]

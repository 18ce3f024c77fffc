"""The organisation tree as aid sees it: a read copy of identity's, fed by its events."""

from __future__ import annotations

from dataclasses import dataclass

from aid_service.domain.enums import Level, Stage


@dataclass
class OrgNode:
    """One node: code, name, level, parent and materialised path (/000000/440000/…/)."""

    org_code: str
    name: str
    level: Level
    parent_code: str | None
    org_path: str
    stages: tuple[Stage, ...] = ()
    active: bool = True

    @property
    def ancestor_codes(self) -> list[str]:
        """Codes from the root down to the parent."""
        return path_codes(self.org_path)[:-1]


def path_codes(org_path: str) -> list[str]:
    """The codes of a materialised path, root first."""
    return [c for c in org_path.split("/") if c]


def child_segment(root_path: str, org_path: str) -> str | None:
    """The code right below root_path on org_path (None when org_path is root_path itself)."""
    if not org_path.startswith(root_path) or org_path == root_path:
        return None
    rest = org_path[len(root_path) :]
    return rest.split("/", 1)[0]

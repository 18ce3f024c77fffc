"""Organisations: the nation, provinces, cities, counties and schools."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from zizhu_contracts.identity.v1 import identity_pb2

from gateway.schemas.common import (
    OrgRef,
    RowErrorRead,
    Schema,
    enum_name,
    level_name,
    org_ref,
    stage_names,
    ts,
)


class OrgRead(BaseModel):
    """An organisation node."""

    org_code: str
    name: str
    level: str
    parent_code: str
    org_path: str
    region_code: str
    stages: list[str]
    school_category: str
    status: str
    child_count: int
    created_at: datetime | None
    updated_at: datetime | None
    retired_at: datetime | None
    version: int


class OrgDetailRead(OrgRead):
    """An organisation with its ancestors (root first), for breadcrumbs."""

    ancestors: list[OrgRef]


class OrgPage(BaseModel):
    """One page of a subtree, parents before children."""

    items: list[OrgRead]
    next_page_token: str
    total: int


class OrgRetireCreate(Schema):
    """Why the organisation is retired (撤销)."""

    reason: str = Field(min_length=1, max_length=200)


class OrgImportRead(BaseModel):
    """Result of an organisation import: counts, or the rows at fault (then nothing changed)."""

    file_name: str
    total_rows: int
    dry_run: bool
    committed: bool
    created_count: int
    updated_count: int
    moved_count: int
    unchanged_count: int
    errors: list[RowErrorRead]


def org_read(o: identity_pb2.Org) -> OrgRead:
    """Proto Org → schema."""
    return OrgRead(**org_fields(o))


def org_fields(o: identity_pb2.Org) -> dict[str, Any]:
    """The schema fields of a proto Org."""
    return {
        "org_code": o.org_code,
        "name": o.name,
        "level": level_name(o.level),
        "parent_code": o.parent_code,
        "org_path": o.org_path,
        "region_code": o.region_code,
        "stages": stage_names(o.stages),
        "school_category": o.school_category,
        "status": enum_name(identity_pb2.OrgStatus, o.status, "ORG_STATUS_"),
        "child_count": o.child_count,
        "created_at": ts(o.created_at, o.HasField("created_at")),
        "updated_at": ts(o.updated_at, o.HasField("updated_at")),
        "retired_at": ts(o.retired_at, o.HasField("retired_at")),
        "version": o.version,
    }


def org_detail_read(resp: identity_pb2.GetOrgResponse) -> OrgDetailRead:
    """GetOrg answer → schema."""
    return OrgDetailRead(**org_fields(resp.org), ancestors=[org_ref(a) for a in resp.ancestors])

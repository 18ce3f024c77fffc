"""Shared schema pieces and the proto ↔ JSON conversions of shared enums and timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Query
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, ConfigDict, Field
from zizhu_contracts.common.v1 import common_pb2

Level = Literal["national", "province", "city", "county", "school"]
RoleName = Literal["operator", "auditor", "admin", "viewer", "audit_admin"]
StageName = Literal[
    "preschool",
    "compulsory",
    "general_high_school",
    "secondary_vocational",
    "undergraduate",
    "postgraduate",
]
IdTypeName = Literal[
    "resident_id",
    "hk_macao_residence_permit",
    "taiwan_residence_permit",
    "foreigner_permanent_residence",
    "passport",
    "other",
]

OrgCode = Annotated[str, Field(min_length=2, max_length=32, pattern=r"^[0-9A-Za-z_-]+$")]
PageSize = Annotated[int, Query(ge=1, le=1000, description="每页条数，默认 50")]
PageToken = Annotated[str, Query(max_length=512, description="上一页返回的 next_page_token")]


class Schema(BaseModel):
    """Base of request schemas: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


def enum_name(enum: Any, value: int, prefix: str) -> str:
    """`ORG_LEVEL_CITY` → `city`; the unspecified value → ``."""
    name: str = enum.Name(value)
    short = name.removeprefix(prefix).lower()
    return "" if short == "unspecified" else short


def enum_value(enum: Any, name: str, prefix: str) -> int:
    """`city` → `ORG_LEVEL_CITY`'s number."""
    return int(enum.Value(prefix + name.upper()))


def level_name(value: int) -> str:
    """OrgLevel value → `national` … `school`."""
    return enum_name(common_pb2.OrgLevel, value, "ORG_LEVEL_")


def level_value(name: str) -> int:
    """`national` … `school` → OrgLevel value."""
    return enum_value(common_pb2.OrgLevel, name, "ORG_LEVEL_")


def role_names(values: Any) -> list[str]:
    """Role values → names (`admin`), unknown values left out."""
    return [enum_name(common_pb2.Role, v, "ROLE_") for v in values if v]


def role_value(name: str) -> int:
    """`admin` → ROLE_ADMIN's number."""
    return enum_value(common_pb2.Role, name, "ROLE_")


def stage_names(values: Any) -> list[str]:
    """Stage values → names."""
    return [enum_name(common_pb2.Stage, v, "STAGE_") for v in values if v]


def stage_value(name: str) -> int:
    """Stage name → value."""
    return enum_value(common_pb2.Stage, name, "STAGE_")


def ts(value: Timestamp, present: bool = True) -> datetime | None:
    """A Timestamp as an aware UTC datetime; None when unset."""
    if not present or (value.seconds == 0 and value.nanos == 0):
        return None
    return value.ToDatetime(tzinfo=UTC)


def to_timestamp(value: datetime) -> Timestamp:
    """An aware (or UTC-naive) datetime as a Timestamp."""
    stamp = Timestamp()
    stamp.FromDatetime(value if value.tzinfo else value.replace(tzinfo=UTC))
    return stamp


def page_request(page_size: int | None, page_token: str | None) -> common_pb2.PageRequest:
    """The proto page request."""
    return common_pb2.PageRequest(page_size=page_size or 0, page_token=page_token or "")


class OrgRef(BaseModel):
    """A reference to an organisation, for display."""

    org_code: str
    name: str
    level: str
    org_path: str


class RowErrorRead(BaseModel):
    """One invalid row of an import (row, column, value, why)."""

    row: int
    column: str
    value: str
    code: str
    message: str


def row_error(err: common_pb2.RowError) -> RowErrorRead:
    """Proto RowError → schema."""
    return RowErrorRead(
        row=err.row, column=err.column, value=err.value, code=err.code, message=err.message
    )


def org_ref(ref: common_pb2.OrgRef) -> OrgRef:
    """Proto OrgRef → schema."""
    return OrgRef(
        org_code=ref.org_code, name=ref.name, level=level_name(ref.level), org_path=ref.org_path
    )

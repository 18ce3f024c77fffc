"""Roster (学生信息、特殊群体、困难认定): request and response schemas, and the proto ↔ JSON mapping.

Enums travel as lower-case names without their prefix (`in_school`, `dibao`, `special`); personal
identifiers only masked, except in the audited identity read. This module holds the shared enum
names and mapping helpers and the import result (its OpenAPI component name,
`gateway__schemas__roster__ImportRead`, is derived from this module's name); the models of each area
are in `students`, `groups` and `recognitions`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from google.protobuf.message import Message
from pydantic import BaseModel, Field
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.roster.v1 import roster_pb2

from gateway.schemas.common import (
    RowErrorRead,
    enum_name,
    enum_value,
    org_ref,
    row_error,
    ts,
)

GroupName = Literal[
    "poverty_alleviated",
    "unstable_post_poverty",
    "near_poverty",
    "sudden_severe_hardship",
    "dibao",
    "extreme_poverty_support",
    "orphan",
    "disabled",
    "child_of_disabled",
    "de_facto_unsupported",
    "dibao_edge",
    "rigid_expenditure",
    "other_low_income",
]
LevelName = Literal["special", "difficult", "general", "not_difficult"]
TermName = Literal["autumn", "spring"]
StatusName = Literal[
    "in_school", "registered_absent", "suspended", "dropped_out", "graduated",
    "transferred_out", "deceased",
]  # fmt: skip
GenderName = Literal["male", "female"]
HouseholdName = Literal["rural", "urban"]
VerificationName = Literal["pending", "confirmed", "rejected"]
MatchName = Literal["pending", "matched", "not_found", "not_enrolled", "invalid", "ambiguous"]
ModeName = Literal["full", "delta"]
ActionName = Literal["add", "remove"]
ChangeKindName = Literal["added", "removed", "changed"]
BatchStatusName = Literal["receiving", "matching", "committed", "failed", "cancelled"]
MembershipStatusName = Literal["active", "ended"]
SourceName = Literal["issued", "self_collected"]

SchoolYear = Annotated[
    str, Field(pattern=r"^\d{4}-\d{4}$", examples=["2024-2025"], description="学年 YYYY-YYYY")
]
DateText = Annotated[
    str, Field(pattern=r"^(\d{4}-\d{2}-\d{2})?$", examples=["2024-09-15"], description="YYYY-MM-DD")
]
IdText = Annotated[str, Field(max_length=40)]

# Enum of each response field: (proto enum, prefix).
_ENUMS: dict[str, tuple[Any, str]] = {
    "stage": (common_pb2.Stage, "STAGE_"),
    "status": (roster_pb2.StudentStatus, "STUDENT_STATUS_"),
    "gender": (roster_pb2.Gender, "GENDER_"),
    "id_type": (common_pb2.IdType, "ID_TYPE_"),
    "household_type": (roster_pb2.HouseholdType, "HOUSEHOLD_TYPE_"),
    "group": (common_pb2.SpecialGroup, "SPECIAL_GROUP_"),
    "groups": (common_pb2.SpecialGroup, "SPECIAL_GROUP_"),
    "basis_groups": (common_pb2.SpecialGroup, "SPECIAL_GROUP_"),
    "source": (common_pb2.MembershipSource, "MEMBERSHIP_SOURCE_"),
    "verification_status": (roster_pb2.VerificationStatus, "VERIFICATION_STATUS_"),
    "match_status": (roster_pb2.MatchStatus, "MATCH_STATUS_"),
    "mode": (roster_pb2.IssueMode, "ISSUE_MODE_"),
    "action": (roster_pb2.IssuedRowAction, "ISSUED_ROW_ACTION_"),
    "level": (common_pb2.HardshipLevel, "HARDSHIP_LEVEL_"),
    "suggested_level": (common_pb2.HardshipLevel, "HARDSHIP_LEVEL_"),
    "hardship_level": (common_pb2.HardshipLevel, "HARDSHIP_LEVEL_"),
    "term": (common_pb2.Term, "TERM_"),
    "kind": (roster_pb2.IssueChangeKind, "ISSUE_CHANGE_KIND_"),
}


def read(model: type[BaseModel], msg: Message, **enums: tuple[Any, str]) -> Any:
    """A response model from a proto message with the same field names (enums as names,
    timestamps as datetimes, nested models recursively)."""
    values: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if not hasattr(msg, name):
            continue
        value = getattr(msg, name)
        enum = enums.get(name) or _ENUMS.get(name)
        sub = _submodel(info.annotation)
        descriptor = msg.DESCRIPTOR.fields_by_name[name]
        if descriptor.message_type is not None and descriptor.message_type.full_name.endswith(
            "Timestamp"
        ):
            values[name] = ts(value, msg.HasField(name))
        elif descriptor.message_type is not None and descriptor.message_type.full_name.endswith(
            "OrgRef"
        ):
            values[name] = org_ref(value)
        elif sub is not None and descriptor.is_repeated:
            values[name] = [read(sub, v) for v in value]
        elif sub is not None:
            values[name] = read(sub, value) if msg.HasField(name) else None
        elif enum is not None and descriptor.is_repeated:
            values[name] = [enum_name(enum[0], v, enum[1]) for v in value]
        elif enum is not None:
            values[name] = enum_name(enum[0], value, enum[1])
        elif descriptor.message_type is not None and descriptor.message_type.GetOptions().map_entry:
            values[name] = dict(value)
        elif descriptor.is_repeated:
            values[name] = list(value)
        else:
            values[name] = value
    return model(**values)


def _submodel(annotation: Any) -> type[BaseModel] | None:
    args = getattr(annotation, "__args__", None)
    for candidate in (annotation, *(args or ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
        inner = getattr(candidate, "__args__", None)
        for c in inner or ():
            if isinstance(c, type) and issubclass(c, BaseModel):
                return c
    return None


def value(enum: Any, prefix: str, name: str | None) -> int:
    """A JSON enum name → its proto number (0 when absent)."""
    return enum_value(enum, name, prefix) if name else 0


def group_value(name: str) -> int:
    """`dibao` → SPECIAL_GROUP_DIBAO."""
    return value(common_pb2.SpecialGroup, "SPECIAL_GROUP_", name)


def level_value(name: str | None) -> int:
    """`special` → HARDSHIP_LEVEL_SPECIAL."""
    return value(common_pb2.HardshipLevel, "HARDSHIP_LEVEL_", name)


def term_value(name: str | None) -> int:
    """`autumn` → TERM_AUTUMN."""
    return value(common_pb2.Term, "TERM_", name)


def stage_number(name: str | None) -> int:
    """Stage name → number (0 when absent)."""
    return value(common_pb2.Stage, "STAGE_", name)


def status_value(name: str) -> int:
    """`in_school` → STUDENT_STATUS_IN_SCHOOL."""
    return value(roster_pb2.StudentStatus, "STUDENT_STATUS_", name)


class ImportRead(BaseModel):
    """The result of a file import (dry run or commit)."""

    import_id: str
    file_name: str
    total_rows: int
    valid_rows: int
    error_rows: int
    dry_run: bool
    committed: bool
    created_count: int
    updated_count: int
    errors: list[RowErrorRead]
    errors_truncated: bool
    expires_at: datetime | None


def import_read(summary: common_pb2.ImportSummary) -> ImportRead:
    """ImportSummary → schema."""
    return ImportRead(
        import_id=summary.import_id,
        file_name=summary.file_name,
        total_rows=summary.total_rows,
        valid_rows=summary.valid_rows,
        error_rows=summary.error_rows,
        dry_run=summary.dry_run,
        committed=summary.committed,
        created_count=summary.created_count,
        updated_count=summary.updated_count,
        errors=[row_error(e) for e in summary.errors],
        errors_truncated=summary.errors_truncated,
        expires_at=ts(summary.expires_at, summary.HasField("expires_at")),
    )


__all__ = ["org_ref"]

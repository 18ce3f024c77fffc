"""Roster (学生信息、特殊群体、困难认定): request and response schemas, and the proto ↔ JSON mapping.

Enums travel as lower-case names without their prefix (`in_school`, `dibao`, `special`); personal
identifiers only masked, except in the audited identity read."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from google.protobuf.message import Message
from pydantic import BaseModel, ConfigDict, Field
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.roster.v1 import roster_pb2

from gateway.schemas.common import (
    IdTypeName,
    OrgCode,
    OrgRef,
    RowErrorRead,
    Schema,
    StageName,
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
_BATCH_STATUS = (roster_pb2.IssueBatchStatus, "ISSUE_BATCH_STATUS_")
_MEMBERSHIP_STATUS = (roster_pb2.MembershipStatus, "MEMBERSHIP_STATUS_")


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


# --- students ------------------------------------------------------------------------------------


class EnrollmentRead(BaseModel):
    """One enrolment (学籍) of a student."""

    school_org_code: str
    school_name: str
    school_org_path: str
    stage: str
    student_number: str
    grade: str
    class_name: str
    major_name: str
    status: str
    status_date: str
    enrolled_on: str
    left_on: str
    boarder: bool


class GroupMembershipRead(BaseModel):
    """A student's membership in short form."""

    group: str
    source: str
    membership_id: str
    verification_status: str


class RecognitionRead(BaseModel):
    """One hardship recognition entry (认定记录)."""

    recognition_id: str
    student_id: str
    student_name: str
    id_number_masked: str
    school_org_code: str
    school_org_path: str
    school_year: str
    term: str
    level: str
    basis_groups: list[str]
    basis_note: str
    recognized_on: str
    change_reason: str
    current: bool
    recorded_by: str
    recorded_at: datetime | None
    version: int


class StudentRead(BaseModel):
    """A student (ID and phone masked)."""

    student_id: str
    name: str
    gender: str
    birth_date: str
    id_type: str
    id_number_masked: str
    phone_masked: str
    ethnicity: str
    household_type: str
    household_region_code: str
    enrollment: EnrollmentRead | None
    groups: list[GroupMembershipRead]
    current_recognition: RecognitionRead | None
    synced_at: datetime | None
    updated_at: datetime | None
    version: int


class StudentChangeRead(BaseModel):
    """One change of a student's record (学籍变动)."""

    change_id: str
    kind: str
    changed_fields: list[str]
    before: dict[str, str]
    after: dict[str, str]
    school_org_code: str
    source_system: str
    batch_id: str
    actor_account_id: str
    occurred_at: datetime | None


class StudentDetailRead(BaseModel):
    """A student with every enrolment visible to the caller and the record's history."""

    student: StudentRead
    enrollments: list[EnrollmentRead]
    changes: list[StudentChangeRead]


class StudentIdentityRead(BaseModel):
    """The full ID and phone numbers (audited read)."""

    student_id: str
    name: str
    id_type: str
    id_number: str
    phone: str


class StudentPage(BaseModel):
    """A page of students."""

    items: list[StudentRead]
    next_page_token: str
    total: int


class StudentSyncRowCreate(Schema):
    """One 学籍 row: person facts plus one enrolment."""

    id_type: IdTypeName = "resident_id"
    id_number: IdText = ""
    name: Annotated[str, Field(min_length=1, max_length=50)]
    gender: GenderName | None = None
    birth_date: DateText = ""
    ethnicity: Annotated[str, Field(max_length=20)] = ""
    household_type: HouseholdName | None = None
    household_region_code: Annotated[str, Field(max_length=6)] = ""
    phone: Annotated[str, Field(max_length=20)] = ""
    school_org_code: OrgCode
    stage: StageName
    student_number: Annotated[str, Field(max_length=40)] = ""
    grade: Annotated[str, Field(min_length=1, max_length=20)]
    class_name: Annotated[str, Field(max_length=60)] = ""
    major_name: Annotated[str, Field(max_length=100)] = ""
    status: StatusName = "in_school"
    status_date: DateText = ""
    enrolled_on: DateText = ""
    left_on: DateText = ""
    boarder: bool = False


class StudentSyncCreate(Schema):
    """A batch of 学籍 rows (at most 2000); replaying a batch_id answers the first result."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "source_system": "学籍系统",
                    "batch_id": "xj-20240901-0001",
                    "rows": [
                        {
                            "id_number": "11010519491231002X",
                            "name": "张三",
                            "school_org_code": "2144010601",
                            "stage": "compulsory",
                            "student_number": "G11010519491231002X",
                            "grade": "六年级",
                        }
                    ],
                }
            ]
        },
    )

    source_system: Annotated[str, Field(max_length=40)] = "学籍系统"
    batch_id: Annotated[str, Field(max_length=100)] = ""
    rows: Annotated[list[StudentSyncRowCreate], Field(min_length=1, max_length=2000)]
    skip_invalid_rows: bool = False


class StudentSyncRead(BaseModel):
    """What a sync batch did."""

    created_count: int
    updated_count: int
    unchanged_count: int
    errors: list[RowErrorRead]
    student_ids: list[str]


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


# --- special groups ------------------------------------------------------------------------------


class BatchCreate(Schema):
    """Open an issue batch (中央/省级下发) of one or more groups."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"title": "2024年秋季低保学生名单", "source_system": "民政部", "groups": ["dibao"],
                 "mode": "full", "as_of_date": "2024-09-15"}
            ]
        },
    )  # fmt: skip

    issuing_org_code: OrgCode | None = None
    title: Annotated[str, Field(min_length=1, max_length=200)]
    source_system: Annotated[str, Field(max_length=100)] = ""
    groups: Annotated[list[GroupName], Field(min_length=1, max_length=13)]
    mode: ModeName
    as_of_date: DateText = ""
    school_year: Annotated[str, Field(pattern=r"^(\d{4}-\d{4})?$")] = ""


class IssuedRowCreate(Schema):
    """One issued row: ID number, name, group (and for delta batches, add or remove)."""

    id_type: IdTypeName = "resident_id"
    id_number: Annotated[str, Field(min_length=1, max_length=40)]
    name: Annotated[str, Field(min_length=1, max_length=50)]
    group: GroupName
    action: ActionName | None = None
    household_region_code: Annotated[str, Field(max_length=6)] = ""
    valid_from: DateText = ""
    valid_to: DateText = ""


class IssuedRowsCreate(Schema):
    """A chunk of rows (at most 5000); resending a chunk number replaces it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"chunk_number": 1, "rows": [{"id_number": "11010519491231002X", "name": "张三",
                                              "group": "dibao"}]}
            ]
        },
    )  # fmt: skip

    chunk_number: Annotated[int, Field(ge=1, le=100_000)]
    rows: Annotated[list[IssuedRowCreate], Field(min_length=1, max_length=5000)]


class IssuedRowsRead(BaseModel):
    """Rows refused at once, and the batch's row count so far."""

    errors: list[RowErrorRead]
    row_count: int


class BatchCommitCreate(Schema):
    """Close a batch: the number of chunks sent."""

    chunk_count: Annotated[int, Field(ge=1, le=100_000)]


class BatchCancelCreate(Schema):
    """Abandon a batch."""

    reason: Annotated[str, Field(max_length=500)] = ""


class BatchRead(BaseModel):
    """An issue batch with its matching counts."""

    batch_id: str
    issuing_org_code: str
    issuing_org_path: str
    title: str
    source_system: str
    groups: list[str]
    mode: str
    school_year: str
    as_of_date: str
    status: str
    row_count: int
    matched_count: int
    not_found_count: int
    not_enrolled_count: int
    ambiguous_count: int
    invalid_count: int
    memberships_added: int
    memberships_ended: int
    previous_batch_id: str
    added_count: int
    removed_count: int
    changed_count: int
    chunk_count: int
    error_message: str
    created_by: str
    created_at: datetime | None
    committed_at: datetime | None


def batch_read(msg: roster_pb2.IssueBatch) -> BatchRead:
    """IssueBatch → schema."""
    return read(BatchRead, msg, status=_BATCH_STATUS)  # type: ignore[no-any-return]


class BatchPage(BaseModel):
    """A page of batches."""

    items: list[BatchRead]
    next_page_token: str
    total: int


class IssuedRowRead(BaseModel):
    """One issued row with its match and verification."""

    issued_row_id: str
    batch_id: str
    row_number: int
    group: str
    action: str
    name: str
    id_number_masked: str
    household_region_code: str
    match_status: str
    match_note: str
    student_id: str
    school_org_code: str
    school_name: str
    school_org_path: str
    stage: str
    membership_id: str
    verification_status: str


class IssuedRowPage(BaseModel):
    """A page of issued rows."""

    items: list[IssuedRowRead]
    next_page_token: str
    total: int


class IssueChangeRead(BaseModel):
    """A student added, removed or changed against the previous batch."""

    kind: str
    group: str
    name: str
    id_number_masked: str
    issued_row_id: str
    previous_issued_row_id: str
    changed_fields: list[str]
    student_id: str
    school_org_code: str


class IssueChangePage(BaseModel):
    """A page of changes."""

    items: list[IssueChangeRead]
    previous_batch_id: str
    next_page_token: str
    total: int


class MembershipRead(BaseModel):
    """A special-group membership."""

    membership_id: str
    student_id: str
    student_name: str
    id_number_masked: str
    school_org_code: str
    school_name: str
    school_org_path: str
    stage: str
    group: str
    source: str
    school_year: str
    batch_id: str
    issued_row_id: str
    valid_from: str
    valid_to: str
    status: str
    verification_status: str
    verification_note: str
    verified_by: str
    verified_at: datetime | None
    evidence_note: str
    end_reason: str
    ended_at: datetime | None
    created_by: str
    created_at: datetime | None
    version: int


def membership_read(msg: roster_pb2.Membership) -> MembershipRead:
    """Membership → schema."""
    return read(MembershipRead, msg, status=_MEMBERSHIP_STATUS)  # type: ignore[no-any-return]


class MembershipPage(BaseModel):
    """A page of memberships."""

    items: list[MembershipRead]
    next_page_token: str
    total: int


class MembershipBatchRead(BaseModel):
    """Memberships changed by one request."""

    items: list[MembershipRead]


class VerifyCreate(Schema):
    """Confirm or dispute issued memberships of the caller's school (a note when disputing)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"membership_ids": ["1"], "result": "confirmed"}]},
    )

    membership_ids: Annotated[list[IdText], Field(min_length=1, max_length=1000)]
    result: Literal["confirmed", "rejected"]
    note: Annotated[str, Field(max_length=500)] = ""


class SelfCollectedCreate(Schema):
    """A member the lists missed, collected by the school with its evidence (自采集)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"student_id": "S0", "group": "orphan", "evidence_note": "民政部门孤儿证明"}
            ]
        },
    )

    student_id: IdText = ""
    id_type: IdTypeName = "resident_id"
    id_number: IdText = ""
    group: GroupName
    school_year: Annotated[str, Field(pattern=r"^(\d{4}-\d{4})?$")] = ""
    valid_from: DateText = ""
    valid_to: DateText = ""
    evidence_note: Annotated[str, Field(min_length=1, max_length=1000)]


class MembershipEndCreate(Schema):
    """End a membership (the student left the group)."""

    reason: Annotated[str, Field(min_length=1, max_length=500, examples=["家庭收入已超过低保线"])]
    ended_on: DateText = ""


class ProgressRowRead(BaseModel):
    """Verification progress of one org (合计, a child region, or a school)."""

    kind: str
    org: OrgRef | None
    issued_count: int
    pending_count: int
    confirmed_count: int
    rejected_count: int
    self_collected_count: int
    ended_count: int


def progress_read(msg: roster_pb2.VerificationProgressRow) -> ProgressRowRead:
    """VerificationProgressRow → schema."""
    return read(  # type: ignore[no-any-return]
        ProgressRowRead, msg, kind=(common_pb2.StatsRowKind, "STATS_ROW_KIND_")
    )


class ProgressRead(BaseModel):
    """The total first, then one row per child region or school."""

    items: list[ProgressRowRead]


class DefaultLevelItem(Schema):
    """One group's default level."""

    group: GroupName
    level: LevelName


class DefaultLevelsUpdate(Schema):
    """Replace the default-level table of a province (or the national one)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"defaults": [{"group": "dibao", "level": "difficult"}]}]},
    )

    org_code: OrgCode | None = None
    defaults: Annotated[list[DefaultLevelItem], Field(max_length=13)]


class DefaultLevelRead(BaseModel):
    """One group's default level."""

    group: str
    level: str


class DefaultLevelsRead(BaseModel):
    """The table that applies and where it comes from."""

    source_org_code: str
    defaults: list[DefaultLevelRead]
    updated_by: str = ""
    updated_at: datetime | None = None


# --- recognition --------------------------------------------------------------------------------


class RecognitionCreate(Schema):
    """Record a student's level for a school year from a term on."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"student_id": "S0", "school_year": "2024-2025", "term": "autumn",
                 "level": "difficult", "basis_groups": ["dibao"]}
            ]
        },
    )  # fmt: skip

    student_id: Annotated[str, Field(min_length=1, max_length=40)]
    school_year: SchoolYear
    term: TermName
    level: LevelName
    basis_groups: Annotated[list[GroupName], Field(max_length=13)] = []
    basis_note: Annotated[str, Field(max_length=500)] = ""
    recognized_on: DateText = ""
    change_reason: Annotated[str, Field(max_length=500)] = ""
    expected_version: Annotated[int, Field(ge=0)] = 0


class RecognitionPage(BaseModel):
    """A page of recognitions."""

    items: list[RecognitionRead]
    next_page_token: str
    total: int


class RecognitionHistoryRead(BaseModel):
    """The entry in force and the school year's history."""

    current: RecognitionRead | None
    history: list[RecognitionRead]


class PendingRecognitionRead(BaseModel):
    """A special-group student still to recognise, with the suggested level."""

    student_id: str
    name: str
    id_number_masked: str
    school_org_code: str
    school_name: str
    stage: str
    grade: str
    class_name: str
    groups: list[GroupMembershipRead]
    suggested_level: str


class PendingRecognitionPage(BaseModel):
    """A page of students still to recognise."""

    items: list[PendingRecognitionRead]
    next_page_token: str
    total: int


def ids(values: list[str] | None) -> list[str]:
    """Repeated query values, without blanks."""
    return [v for v in values or () if v]


__all__ = ["org_ref"]

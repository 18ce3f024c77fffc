"""Roster schemas for students from 学籍: search results, the detail and audited identity reads, and
sync."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from gateway.schemas.common import (
    IdTypeName,
    OrgCode,
    RowErrorRead,
    Schema,
    StageName,
)
from gateway.schemas.roster import (
    DateText,
    GenderName,
    HouseholdName,
    IdText,
    StatusName,
)


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

"""Roster schemas for hardship recognition (困难认定): recognising, history and the pending list."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from gateway.schemas.common import (
    Schema,
)
from gateway.schemas.roster import (
    DateText,
    GroupName,
    LevelName,
    SchoolYear,
    TermName,
)
from gateway.schemas.roster.students import (
    GroupMembershipRead,
    RecognitionRead,
)


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

"""What the use cases answer: plain dataclasses whose field names follow the contract, so the
gRPC layer maps them without rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from roster_service.domain.common import RowError


@dataclass(slots=True)
class EnrollmentView:
    """One enrolment as shown."""

    school_org_code: str
    school_name: str
    school_org_path: str
    stage: int
    student_number: str
    grade: str
    class_name: str
    major_name: str
    status: int
    enrolled_on: str
    left_on: str
    boarder: bool
    status_date: str


@dataclass(slots=True)
class GroupMembershipView:
    """A student's membership in short form."""

    group: int
    source: int
    membership_id: str
    verification_status: int


@dataclass(slots=True)
class RecognitionView:
    """One recognition entry."""

    recognition_id: str
    student_id: str
    student_name: str
    id_number_masked: str
    school_org_code: str
    school_org_path: str
    school_year: str
    term: int
    level: int
    basis_groups: list[int]
    basis_note: str
    recognized_on: str
    change_reason: str
    current: bool
    recorded_by: str
    recorded_at: datetime | None
    version: int


@dataclass(slots=True)
class StudentView:
    """A student as shown (masked unless revealed)."""

    student_id: str
    name: str
    gender: int
    birth_date: str
    id_type: int
    id_number_masked: str
    id_number: str
    id_number_blind_index: str
    ethnicity: str
    household_type: int
    household_region_code: str
    enrollment: EnrollmentView | None
    groups: list[GroupMembershipView]
    current_recognition: RecognitionView | None
    synced_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None
    version: int
    phone_masked: str
    phone: str


@dataclass(slots=True)
class ChangeView:
    """One history record of a student."""

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


@dataclass(slots=True)
class StudentDetail:
    """GetStudent's answer."""

    student: StudentView
    enrollments: list[EnrollmentView] = field(default_factory=list)
    changes: list[ChangeView] = field(default_factory=list)


@dataclass(slots=True)
class SyncResult:
    """SyncStudents' answer."""

    created_count: int
    updated_count: int
    unchanged_count: int
    errors: list[RowError]
    student_ids: list[str]


@dataclass(slots=True)
class ImportSummaryView:
    """Result of a dry run or commit of a file import."""

    import_id: str
    file_name: str
    total_rows: int
    valid_rows: int
    error_rows: int
    dry_run: bool
    committed: bool
    created_count: int
    updated_count: int
    errors: list[RowError]
    errors_truncated: bool
    expires_at: datetime | None
    unchanged_count: int = 0


@dataclass(slots=True)
class FileView:
    """A downloadable file."""

    file_name: str
    content_type: str
    content: bytes


@dataclass(slots=True)
class Page:
    """Paging of a list answer."""

    next_page_token: str
    total: int


@dataclass(slots=True)
class CheckResult:
    """One enrolment check."""

    index: int
    outcome: int
    student_id: str = ""
    id_number_blind_index: str = ""
    name: str = ""
    id_number_masked: str = ""
    enrollment: EnrollmentView | None = None
    hardship_level: int = 0

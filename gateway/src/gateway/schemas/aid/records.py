"""Aid schemas for records (资助名单): entry, update, filters, submission, the multi-level audit,
revocation and history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from zizhu_contracts.aid.v1 import aid_pb2
from zizhu_contracts.common.v1 import common_pb2

from gateway.schemas.aid import (
    AmountFen,
    CategoryName,
    DecisionName,
    IdTypeName,
    PeriodRef,
    ProjectCode,
    Reason,
    RecordId,
    SchoolYear,
    TermName,
    _name,
    period_ref,
)
from gateway.schemas.aid.windows import (
    EffectiveWindowRead,
)
from gateway.schemas.common import (
    OrgCode,
    Schema,
    StageName,
    level_name,
    ts,
)


class RecordCreate(Schema):
    """A single entry (资助名单录入) at the caller's school: the student by id or ID number (+
    name, checked against 学籍), a tier or an amount."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "project_code": "GJ-PG-ZXJ",
                    "school_year": "2026-2027",
                    "term": "autumn",
                    "id_number": "11010519491231002X",
                    "student_name": "张三",
                    "tier_code": "2",
                }
            ]
        },
    )
    project_code: ProjectCode
    school_year: SchoolYear
    term: TermName
    student_id: Annotated[str, Field(max_length=64)] = ""
    id_type: IdTypeName = "resident_id"
    id_number: Annotated[str, Field(max_length=40)] = ""
    student_name: Annotated[str, Field(max_length=50)] = ""
    tier_code: Annotated[str, Field(max_length=20)] = ""
    amount_fen: AmountFen = 0
    bank_name: Annotated[str, Field(max_length=50)] = ""
    bank_card_number: Annotated[str, Field(max_length=30)] = ""
    remark: Annotated[str, Field(max_length=200)] = ""


class RecordUpdate(Schema):
    """Edit a draft or returned record (absent = unchanged)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"remark": "已核实"}]}
    )
    tier_code: Annotated[str, Field(max_length=20)] | None = None
    amount_fen: AmountFen | None = None
    bank_name: Annotated[str, Field(max_length=50)] | None = None
    bank_card_number: Annotated[str, Field(max_length=30)] | None = None
    remark: Annotated[str, Field(max_length=200)] | None = None
    expected_version: int = 0


class RecordFilter(Schema):
    """The filters of a list (used by bulk audit decisions over a filtered set)."""

    org_code: OrgCode | None = None
    project_code: ProjectCode | None = None
    school_year: SchoolYear | None = None
    term: TermName | None = None
    stage: StageName | None = None
    categories: list[CategoryName] = []
    student_name: Annotated[str, Field(max_length=50)] = ""
    grade: Annotated[str, Field(max_length=40)] = ""
    class_name: Annotated[str, Field(max_length=60)] = ""


class RecordIds(Schema):
    """Records to submit (上报) to the school audit, all or none."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"record_ids": ["R01a2000000000000000000001"]}]},
    )
    record_ids: Annotated[list[RecordId], Field(min_length=1, max_length=10_000)]


class AuditCreate(Schema):
    """Approve or return (审核通过/退回) the listed records, or every record of a filter that
    awaits the caller's org; all or none. A return needs the reason (opinion)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "record_ids": ["R01a2000000000000000000001"],
                    "decision": "approve",
                    "opinion": "同意",
                }
            ]
        },
    )
    record_ids: Annotated[list[RecordId], Field(max_length=10_000)] = []
    filter: RecordFilter | None = None
    expected_count: Annotated[int, Field(ge=0)] = 0
    decision: DecisionName
    opinion: Annotated[str, Field(max_length=500)] = ""


class RevokeCreate(Schema):
    """Revoke an approved record (撤销) with a reason."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "重复发放，予以撤销"}]}
    )
    reason: Reason
    expected_version: int = 0


class RecordRead(BaseModel):
    """An aid record (资助名单), personal data masked."""

    record_id: str
    project_code: str
    project_name: str
    project_category: str
    owner_type: str
    stage: str
    period: PeriodRef
    student_id: str
    student_name: str
    id_number_masked: str
    student_number: str
    school_org_code: str
    school_name: str
    school_org_path: str
    grade: str
    class_name: str
    amount_fen: int
    tier_code: str
    hardship_level: str
    bank_name: str
    bank_card_masked: str
    remark: str
    status: str
    pending_level: str
    pending_org_code: str
    audit_chain: list[str]
    last_opinion: str
    entered_by: str
    entered_at: datetime | None
    submitted_at: datetime | None
    approved_at: datetime | None
    updated_at: datetime | None
    version: int


class RecordDetailRead(BaseModel):
    """One record with the windows that govern its school (shown in red)."""

    record: RecordRead
    windows: list[EffectiveWindowRead]


class RecordIdentityRead(BaseModel):
    """The full ID number of a record's student (an audited read)."""

    record_id: str
    student_id: str
    id_number: str


class RecordPage(BaseModel):
    """A page of records with the windows that apply (for display)."""

    items: list[RecordRead]
    next_page_token: str
    total: int
    windows: list[EffectiveWindowRead]


class TransitionResultRead(BaseModel):
    """A record's new state after a bulk transition."""

    record_id: str
    status: str
    pending_level: str
    version: int


class SubmitRead(BaseModel):
    """Records sent to the school audit."""

    results: list[TransitionResultRead]


class AuditRead(BaseModel):
    """Outcome of an audit decision."""

    results: list[TransitionResultRead]
    forwarded_count: int
    approved_count: int
    returned_count: int


class TransitionRead(BaseModel):
    """One step of a record's history (account, level, time, decision, opinion)."""

    seq: int
    action: str
    from_status: str
    to_status: str
    level: str
    org_code: str
    org_name: str
    actor_account_id: str
    opinion: str
    amount_fen: int
    at: datetime | None


class HistoryRead(BaseModel):
    """Every transition of a record, oldest first."""

    record_id: str
    transitions: list[TransitionRead]


def _status(value: int) -> str:
    return _name(aid_pb2.RecordStatus, "RECORD_STATUS_", value)


def record_read(r: aid_pb2.AidRecord) -> RecordRead:
    """Proto record → schema."""
    return RecordRead(
        record_id=r.record_id,
        project_code=r.project_code,
        project_name=r.project_name,
        project_category=_name(common_pb2.AidCategory, "AID_CATEGORY_", r.project_category),
        owner_type=_name(aid_pb2.ProjectOwnerType, "PROJECT_OWNER_TYPE_", r.owner_type),
        stage=_name(common_pb2.Stage, "STAGE_", r.stage),
        period=period_ref(r.period),
        student_id=r.student_id,
        student_name=r.student_name,
        id_number_masked=r.id_number_masked,
        student_number=r.student_number,
        school_org_code=r.school_org_code,
        school_name=r.school_name,
        school_org_path=r.school_org_path,
        grade=r.grade,
        class_name=r.class_name,
        amount_fen=r.amount_fen,
        tier_code=r.tier_code,
        hardship_level=_name(common_pb2.HardshipLevel, "HARDSHIP_LEVEL_", r.hardship_level),
        bank_name=r.bank_name,
        bank_card_masked=r.bank_card_masked,
        remark=r.remark,
        status=_status(r.status),
        pending_level=level_name(r.pending_level),
        pending_org_code=r.pending_org_code,
        audit_chain=[level_name(x) for x in r.audit_chain],
        last_opinion=r.last_opinion,
        entered_by=r.entered_by,
        entered_at=ts(r.entered_at),
        submitted_at=ts(r.submitted_at),
        approved_at=ts(r.approved_at),
        updated_at=ts(r.updated_at),
        version=r.version,
    )


def result_read(r: aid_pb2.RecordTransitionResult) -> TransitionResultRead:
    """Proto transition result → schema."""
    return TransitionResultRead(
        record_id=r.record_id,
        status=_status(r.status),
        pending_level=level_name(r.pending_level),
        version=r.version,
    )


def transition_read(t: aid_pb2.RecordTransition) -> TransitionRead:
    """Proto transition → schema."""
    return TransitionRead(
        seq=t.seq,
        action=_name(aid_pb2.RecordAction, "RECORD_ACTION_", t.action),
        from_status=_status(t.from_status),
        to_status=_status(t.to_status),
        level=level_name(t.level),
        org_code=t.org_code,
        org_name=t.org_name,
        actor_account_id=t.actor_account_id,
        opinion=t.opinion,
        amount_fen=t.amount_fen,
        at=ts(t.at),
    )

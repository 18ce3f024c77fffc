"""Aid (资助): projects, periods, time windows, records and their audit, template import, stats."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from zizhu_contracts.aid.v1 import aid_pb2
from zizhu_contracts.common.v1 import common_pb2

from gateway.schemas.common import (
    OrgCode,
    OrgRef,
    RowErrorRead,
    Schema,
    StageName,
    enum_name,
    enum_value,
    level_name,
    level_value,
    org_ref,
    row_error,
    stage_value,
    ts,
)

OwnerTypeName = Literal["national", "local_government", "school", "social"]
CategoryName = Literal["need_based", "merit", "fee_waiver", "loan", "work_study", "other"]
TermName = Literal["autumn", "spring"]
PhaseName = Literal["entry", "school_audit", "authority_audit"]
RecordStatusName = Literal[
    "draft", "pending_school_audit", "pending_authority_audit", "returned", "approved", "revoked"
]
DecisionName = Literal["approve", "return"]
HardshipName = Literal["special", "difficult", "general", "not_difficult"]
ExclusionScopeName = Literal["school_year", "term"]
ProjectStatusName = Literal["active", "disabled"]
PeriodStatusName = Literal["open", "closed"]
DimensionName = Literal["org", "project", "stage", "category"]
AuthorityLevelName = Literal["national", "province", "city", "county"]
IdTypeName = Literal[
    "resident_id",
    "hk_macao_residence_permit",
    "taiwan_residence_permit",
    "foreigner_permanent_residence",
    "passport",
    "other",
]

ProjectCode = Annotated[
    str,
    Field(min_length=2, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]+$",
          examples=["GJ-PG-ZXJ"], description="项目代码"),
]  # fmt: skip
SchoolYear = Annotated[
    str, Field(pattern=r"^\d{4}-\d{4}$", examples=["2026-2027"], description="学年 YYYY-YYYY")
]
AmountFen = Annotated[int, Field(ge=0, le=10**9, description="金额（分）")]
Reason = Annotated[str, Field(min_length=1, max_length=500)]
RecordId = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z_-]+$")]


def _name(enum: Any, prefix: str, value: int) -> str:
    return enum_name(enum, value, prefix)


def owner_type_value(name: str) -> int:
    """`national` … → ProjectOwnerType value."""
    return enum_value(aid_pb2.ProjectOwnerType, name, "PROJECT_OWNER_TYPE_")


def category_value(name: str) -> int:
    """`need_based` … → AidCategory value."""
    return enum_value(common_pb2.AidCategory, name, "AID_CATEGORY_")


def term_value(name: str) -> int:
    """`autumn` / `spring` → Term value."""
    return enum_value(common_pb2.Term, name, "TERM_")


def phase_value(name: str) -> int:
    """`entry` … → WindowPhase value."""
    return enum_value(aid_pb2.WindowPhase, name, "WINDOW_PHASE_")


def status_value(name: str) -> int:
    """`draft` … → RecordStatus value."""
    return enum_value(aid_pb2.RecordStatus, name, "RECORD_STATUS_")


def decision_value(name: str) -> int:
    """`approve` / `return` → AuditDecision value."""
    return enum_value(aid_pb2.AuditDecision, name, "AUDIT_DECISION_")


def hardship_value(name: str) -> int:
    """`special` … → HardshipLevel value."""
    return enum_value(common_pb2.HardshipLevel, name, "HARDSHIP_LEVEL_")


def period_msg(school_year: str, term: str) -> common_pb2.AidPeriod:
    """The proto period."""
    return common_pb2.AidPeriod(school_year=school_year, term=term_value(term))  # type: ignore[arg-type]


class PeriodRef(BaseModel):
    """An aid period: school year + term (资助周期)."""

    school_year: str
    term: str


def period_ref(p: common_pb2.AidPeriod) -> PeriodRef:
    """Proto period → schema."""
    return PeriodRef(school_year=p.school_year, term=_name(common_pb2.Term, "TERM_", p.term))


# --- projects ------------------------------------------------------------------------------------


class AmountTierSchema(Schema):
    """An allowed amount per record (资助标准档次)."""

    tier_code: Annotated[str, Field(max_length=20)] = ""
    name: Annotated[str, Field(max_length=20)] = ""
    amount_fen: Annotated[int, Field(gt=0, le=10**9)]


class ExclusionSchema(Schema):
    """A project a student may not also hold in the same school year or term."""

    project_code: ProjectCode
    scope: ExclusionScopeName = "school_year"


class ProjectCreate(Schema):
    """A project set up by the caller's own org: national (the nation), local_government (a
    province, city or county), school or social (a school)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "project_code": "GD-PG-ZXBZ",
                    "name": "广东省普通高中助学补助",
                    "owner_type": "local_government",
                    "stage": "general_high_school",
                    "category": "need_based",
                    "tiers": [{"tier_code": "1", "name": "一档", "amount_fen": 50000}],
                }
            ]
        },
    )
    project_code: ProjectCode
    name: Annotated[str, Field(min_length=1, max_length=60)]
    owner_type: OwnerTypeName
    stage: StageName
    category: CategoryName
    tiers: list[AmountTierSchema] = []
    allow_custom_amount: bool = False
    min_amount_fen: AmountFen = 0
    max_amount_fen: AmountFen = 0
    requires_recognition: bool = False
    min_hardship_level: HardshipName | None = None
    exclusions: list[ExclusionSchema] = []
    audit_levels: list[AuthorityLevelName] = Field(
        default=[], description="复核层级（自下而上）；空 = 默认（县→市→省，以设立层级为限）"
    )
    annual: bool = False
    start_school_year: Annotated[str, Field(pattern=r"^(\d{4}-\d{4})?$")] = ""
    end_school_year: Annotated[str, Field(pattern=r"^(\d{4}-\d{4})?$")] = ""
    policy_basis: Annotated[str, Field(max_length=1000)] = ""
    description: Annotated[str, Field(max_length=1000)] = ""
    quota_per_school: Annotated[int, Field(ge=0, le=10**7)] = 0


class ProjectUpdate(Schema):
    """Fields to change (absent = unchanged); stage and category are frozen once used."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"description": "2025年起执行新标准"}]}
    )
    name: Annotated[str, Field(min_length=1, max_length=60)] | None = None
    stage: StageName | None = None
    category: CategoryName | None = None
    tiers: list[AmountTierSchema] | None = None
    allow_custom_amount: bool | None = None
    min_amount_fen: AmountFen | None = None
    max_amount_fen: AmountFen | None = None
    requires_recognition: bool | None = None
    min_hardship_level: HardshipName | None = None
    exclusions: list[ExclusionSchema] | None = None
    audit_levels: list[AuthorityLevelName] | None = None
    annual: bool | None = None
    start_school_year: Annotated[str, Field(pattern=r"^(\d{4}-\d{4})?$")] | None = None
    end_school_year: Annotated[str, Field(pattern=r"^(\d{4}-\d{4})?$")] | None = None
    status: ProjectStatusName | None = None
    policy_basis: Annotated[str, Field(max_length=1000)] | None = None
    description: Annotated[str, Field(max_length=1000)] | None = None
    quota_per_school: Annotated[int, Field(ge=0, le=10**7)] | None = None
    expected_version: int = 0


class ProjectRead(BaseModel):
    """An aid project and its rules."""

    project_code: str
    name: str
    owner_type: str
    owner_org_code: str
    owner_org_path: str
    owner_level: str
    stage: str
    category: str
    tiers: list[AmountTierSchema]
    allow_custom_amount: bool
    min_amount_fen: int
    max_amount_fen: int
    requires_recognition: bool
    min_hardship_level: str
    exclusions: list[ExclusionSchema]
    audit_levels: list[str]
    annual: bool
    start_school_year: str
    end_school_year: str
    status: str
    policy_basis: str
    description: str
    quota_per_school: int
    created_by: str
    created_at: datetime | None
    updated_at: datetime | None
    version: int


class ProjectPage(BaseModel):
    """A page of projects."""

    items: list[ProjectRead]
    next_page_token: str
    total: int


def project_read(p: aid_pb2.Project) -> ProjectRead:
    """Proto project → schema."""
    return ProjectRead(
        project_code=p.project_code,
        name=p.name,
        owner_type=_name(aid_pb2.ProjectOwnerType, "PROJECT_OWNER_TYPE_", p.owner_type),
        owner_org_code=p.owner_org_code,
        owner_org_path=p.owner_org_path,
        owner_level=level_name(p.owner_level),
        stage=_name(common_pb2.Stage, "STAGE_", p.stage),
        category=_name(common_pb2.AidCategory, "AID_CATEGORY_", p.category),
        tiers=[
            AmountTierSchema(tier_code=t.tier_code, name=t.name, amount_fen=t.amount_fen)
            for t in p.tiers
        ],  # fmt: skip
        allow_custom_amount=p.allow_custom_amount,
        min_amount_fen=p.min_amount_fen,
        max_amount_fen=p.max_amount_fen,
        requires_recognition=p.requires_recognition,
        min_hardship_level=_name(common_pb2.HardshipLevel, "HARDSHIP_LEVEL_", p.min_hardship_level),
        exclusions=[
            ExclusionSchema(
                project_code=e.project_code,
                scope=_name(aid_pb2.ExclusionScope, "EXCLUSION_SCOPE_", e.scope),
            )  # type: ignore[arg-type]
            for e in p.exclusions
        ],  # fmt: skip
        audit_levels=[level_name(x) for x in p.audit_levels],
        annual=p.annual,
        start_school_year=p.start_school_year,
        end_school_year=p.end_school_year,
        status=_name(aid_pb2.ProjectStatus, "PROJECT_STATUS_", p.status),
        policy_basis=p.policy_basis,
        description=p.description,
        quota_per_school=p.quota_per_school,
        created_by=p.created_by,
        created_at=ts(p.created_at),
        updated_at=ts(p.updated_at),
        version=p.version,
    )


def tiers_msg(tiers: list[AmountTierSchema]) -> list[aid_pb2.AmountTier]:
    """Schema tiers → proto."""
    return [aid_pb2.AmountTier(tier_code=t.tier_code, name=t.name, amount_fen=t.amount_fen)
            for t in tiers]  # fmt: skip


def exclusions_msg(items: list[ExclusionSchema]) -> list[aid_pb2.Exclusion]:
    """Schema exclusions → proto."""
    return [
        aid_pb2.Exclusion(
            project_code=e.project_code,
            scope=enum_value(aid_pb2.ExclusionScope, e.scope, "EXCLUSION_SCOPE_"),  # type: ignore[arg-type]
        )
        for e in items
    ]


def levels_msg(names: list[str]) -> list[int]:
    """Level names → OrgLevel values."""
    return [level_value(n) for n in names]


def stage_number(name: str | None) -> int:
    """Stage name → value (0 for none)."""
    return stage_value(name) if name else 0


# --- periods -------------------------------------------------------------------------------------


class PeriodCreate(Schema):
    """Open an aid period (the nation); dates default to the term's (第十七条 deadlines)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"school_year": "2026-2027", "term": "spring"}]},
    )
    school_year: SchoolYear
    term: TermName
    starts_on: Annotated[str, Field(pattern=r"^(\d{4}-\d{2}-\d{2})?$")] = ""
    ends_on: Annotated[str, Field(pattern=r"^(\d{4}-\d{2}-\d{2})?$")] = ""
    deadline_on: Annotated[str, Field(pattern=r"^(\d{4}-\d{2}-\d{2})?$")] = ""


class PeriodClose(Schema):
    """Close an aid period (the nation): no more entry or audit."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"school_year": "2025-2026", "term": "spring"}]},
    )
    school_year: SchoolYear
    term: TermName


class PeriodRead(BaseModel):
    """An aid period with its dates."""

    period: PeriodRef
    status: str
    starts_on: str
    ends_on: str
    deadline_on: str
    opened_at: datetime | None
    closed_at: datetime | None


class PeriodPage(BaseModel):
    """Periods, newest first."""

    items: list[PeriodRead]
    next_page_token: str
    total: int


def period_read(p: aid_pb2.Period) -> PeriodRead:
    """Proto period → schema."""
    return PeriodRead(
        period=period_ref(p.period),
        status=_name(aid_pb2.PeriodStatus, "PERIOD_STATUS_", p.status),
        starts_on=p.starts_on,
        ends_on=p.ends_on,
        deadline_on=p.deadline_on,
        opened_at=ts(p.opened_at),
        closed_at=ts(p.closed_at),
    )


# --- windows -------------------------------------------------------------------------------------


class WindowSet(Schema):
    """Create or replace the window of project × period × phase, for the project's scope or a
    region in it (an authority above the region narrows within its own window)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "project_code": "GJ-PG-ZXJ",
                    "school_year": "2026-2027",
                    "term": "autumn",
                    "phase": "entry",
                    "org_code": "440106",
                    "starts_at": "2026-09-01T00:00:00+08:00",
                    "ends_at": "2027-01-26T00:00:00+08:00",
                }
            ]
        },
    )
    project_code: ProjectCode
    school_year: SchoolYear
    term: TermName
    phase: PhaseName
    org_code: OrgCode | None = None
    starts_at: datetime
    ends_at: datetime


class ExtensionCreate(Schema):
    """Reopen a phase for a school or region until a date (延期、补录), from an authority above."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "project_code": "GJ-PG-ZXJ",
                    "school_year": "2026-2027",
                    "term": "autumn",
                    "phase": "entry",
                    "org_code": "3444010601",
                    "ends_at": "2027-02-11T00:00:00+08:00",
                    "reason": "学籍转入后补录",
                }
            ]
        },
    )
    project_code: ProjectCode
    school_year: SchoolYear
    term: TermName
    phase: PhaseName
    org_code: OrgCode
    ends_at: datetime
    reason: Reason


class WindowRead(BaseModel):
    """A time window (填报时间); is_default when none was set (第十七条)."""

    window_id: str
    project_code: str
    period: PeriodRef
    phase: str
    org_code: str
    org_path: str
    starts_at: datetime | None
    ends_at: datetime | None
    extension: bool
    reason: str
    set_by: str
    set_at: datetime | None
    open_now: bool
    is_default: bool


class WindowPage(BaseModel):
    """A page of windows."""

    items: list[WindowRead]
    next_page_token: str
    total: int


class EffectiveWindowRead(BaseModel):
    """The window governing one phase (pages show its start and end in red)."""

    phase: str
    project_code: str
    open_now: bool
    window: WindowRead | None


def window_read(w: aid_pb2.Window) -> WindowRead:
    """Proto window → schema."""
    return WindowRead(
        window_id=w.window_id,
        project_code=w.project_code,
        period=period_ref(w.period),
        phase=_name(aid_pb2.WindowPhase, "WINDOW_PHASE_", w.phase),
        org_code=w.org_code,
        org_path=w.org_path,
        starts_at=ts(w.starts_at),
        ends_at=ts(w.ends_at),
        extension=w.extension,
        reason=w.reason,
        set_by=w.set_by,
        set_at=ts(w.set_at),
        open_now=w.open_now,
        is_default=w.is_default,
    )


def effective_read(e: aid_pb2.EffectiveWindow) -> EffectiveWindowRead:
    """Proto effective window → schema."""
    return EffectiveWindowRead(
        phase=_name(aid_pb2.WindowPhase, "WINDOW_PHASE_", e.phase),
        project_code=e.window.project_code,
        open_now=e.open_now,
        window=window_read(e.window) if e.HasField("window") else None,
    )


# --- records -------------------------------------------------------------------------------------


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


# --- imports -------------------------------------------------------------------------------------


class ImportCommit(Schema):
    """Commit a staged (dry-run) import by its id; all rows or none."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"project_code": "GJ-YW-FJSSBZ-XX", "school_year": "2026-2027", "term": "autumn"}
            ]
        },
    )
    project_code: ProjectCode
    school_year: SchoolYear
    term: TermName
    submit: bool = False


class ImportRead(BaseModel):
    """An import's outcome: counts, the first 1000 row errors (row, column, value, reason)."""

    import_id: str
    file_name: str
    total_rows: int
    valid_rows: int
    error_rows: int
    dry_run: bool
    committed: bool
    created_count: int
    errors: list[RowErrorRead]
    errors_truncated: bool
    expires_at: datetime | None


def import_read(s: common_pb2.ImportSummary) -> ImportRead:
    """Proto import summary → schema."""
    return ImportRead(
        import_id=s.import_id,
        file_name=s.file_name,
        total_rows=s.total_rows,
        valid_rows=s.valid_rows,
        error_rows=s.error_rows,
        dry_run=s.dry_run,
        committed=s.committed,
        created_count=s.created_count,
        errors=[row_error(e) for e in s.errors],
        errors_truncated=s.errors_truncated,
        expires_at=ts(s.expires_at),
    )


# --- statistics ----------------------------------------------------------------------------------


class StatsRowRead(BaseModel):
    """Counts and amounts (分) by status for one row: total, direct schools, a region or school."""

    kind: str
    org: OrgRef
    project_code: str
    project_name: str
    stage: str
    category: str
    record_count: int
    approved_student_count: int
    draft_count: int
    pending_count: int
    returned_count: int
    approved_count: int
    revoked_count: int
    approved_amount_fen: int
    unapproved_amount_fen: int


class StatsRead(BaseModel):
    """Statistics rows and when they were computed."""

    rows: list[StatsRowRead]
    as_of: datetime | None


def stats_read(resp: aid_pb2.StatsResponse) -> StatsRead:
    """Proto stats → schema."""
    return StatsRead(
        rows=[
            StatsRowRead(
                kind=_name(common_pb2.StatsRowKind, "STATS_ROW_KIND_", r.kind),
                org=org_ref(r.org),
                project_code=r.project_code,
                project_name=r.project_name,
                stage=_name(common_pb2.Stage, "STAGE_", r.stage),
                category=_name(common_pb2.AidCategory, "AID_CATEGORY_", r.category),
                record_count=r.record_count,
                approved_student_count=r.approved_student_count,
                draft_count=r.draft_count,
                pending_count=r.pending_count,
                returned_count=r.returned_count,
                approved_count=r.approved_count,
                revoked_count=r.revoked_count,
                approved_amount_fen=r.approved_amount_fen,
                unapproved_amount_fen=r.unapproved_amount_fen,
            )
            for r in resp.rows
        ],
        as_of=ts(resp.as_of),
    )

"""The unfunded special-group list (特殊群体学生未资助名单), reasons at every level, statistics
by region × 13 groups, the retired 建档立卡 history, comparison runs, data-verification findings
and quotas."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.reconcile.v1 import reconcile_pb2 as pb

from gateway.schemas.common import (
    OrgCode,
    OrgRef,
    RowErrorRead,
    Schema,
    enum_name,
    enum_value,
    level_name,
    org_ref,
    row_error,
    ts,
)

TermName = Literal["autumn", "spring"]
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
SourceName = Literal["issued", "self_collected"]
EntryStatusName = Literal["open", "funded", "not_eligible"]
ReasonStateName = Literal["reported", "pending"]
RunStatusName = Literal["running", "succeeded", "failed"]
TriggerName = Literal["scheduled", "manual"]
SeverityName = Literal["error", "warning"]
FindingStatusName = Literal["open", "confirmed", "fixed", "dismissed", "cleared"]
ResolutionName = Literal["confirmed", "fixed", "dismissed"]
RowKindName = Literal["total", "direct_schools", "child_region", "school"]

GROUP_LABELS = {
    1: "脱贫家庭学生",
    2: "脱贫不稳定家庭学生",
    3: "边缘易致贫家庭学生",
    4: "突发严重困难家庭学生",
    5: "低保学生",
    6: "特困救助学生",
    7: "孤儿学生",
    8: "残疾学生",
    9: "残疾人子女",
    10: "事实无人抚养儿童",
    11: "低保边缘学生",
    12: "支出型困难家庭学生",
    13: "其他低收入家庭学生",
}

SchoolYear = Annotated[
    str, Field(pattern=r"^\d{4}-\d{4}$", examples=["2024-2025"], description="学年，YYYY-YYYY")
]
ReasonCodeText = Annotated[
    str, Field(pattern=r"^\d{2}$", examples=["02"], description="未资助原因代码（字典）")
]
Note = Annotated[str, Field(max_length=500, description="说明；选择“99 其他”时必填")]
EntryId = Annotated[str, Field(pattern=r"^\d{1,18}$", examples=["1"])]
FindingId = Annotated[str, Field(pattern=r"^\d{1,18}$", examples=["1"])]


def _name(enum: object, value: int, prefix: str) -> str:
    return enum_name(enum, value, prefix)


def term_value(name: str) -> int:
    """`autumn` / `spring` → Term value."""
    return enum_value(common_pb2.Term, name, "TERM_")


def group_value(name: str) -> int:
    """`dibao` → SpecialGroup value."""
    return enum_value(common_pb2.SpecialGroup, name, "SPECIAL_GROUP_")


def group_name(value: int) -> str:
    """SpecialGroup value → `dibao`; 0 → "" (all groups)."""
    return _name(common_pb2.SpecialGroup, value, "SPECIAL_GROUP_")


def source_value(name: str) -> int:
    """`issued` / `self_collected` → MembershipSource value."""
    return enum_value(common_pb2.MembershipSource, name, "MEMBERSHIP_SOURCE_")


def status_value(name: str) -> int:
    """`open` … → UnfundedStatus value."""
    return enum_value(pb.UnfundedStatus, name, "UNFUNDED_STATUS_")


def run_status_value(name: str) -> int:
    """`running` … → RunStatus value."""
    return enum_value(pb.RunStatus, name, "RUN_STATUS_")


def trigger_value(name: str) -> int:
    """`scheduled` / `manual` → RunTrigger value."""
    return enum_value(pb.RunTrigger, name, "RUN_TRIGGER_")


def severity_value(name: str) -> int:
    """`error` / `warning` → FindingSeverity value."""
    return enum_value(pb.FindingSeverity, name, "FINDING_SEVERITY_")


def finding_status_value(name: str) -> int:
    """`open` … → FindingStatus value."""
    return enum_value(pb.FindingStatus, name, "FINDING_STATUS_")


def period_pb(school_year: str | None, term: str | None) -> common_pb2.AidPeriod | None:
    """A period from query parameters (None when both are absent)."""
    if not school_year and not term:
        return None
    return common_pb2.AidPeriod(
        school_year=school_year or "",
        term=term_value(term) if term else 0,  # type: ignore[arg-type]
    )


class PeriodIn(Schema):
    """A period (资助周期): school year and term."""

    school_year: SchoolYear
    term: TermName


class PeriodRead(BaseModel):
    """A period."""

    school_year: str
    term: str


def period_read(p: common_pb2.AidPeriod) -> PeriodRead:
    """Proto AidPeriod → schema."""
    return PeriodRead(school_year=p.school_year, term=_name(common_pb2.Term, p.term, "TERM_"))


# --- runs -----------------------------------------------------------------------------------------


class RunCreate(Schema):
    """Start a comparison now over the caller's area (or a region inside it)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"periods": [], "include_verification": True}]},
    )

    periods: Annotated[
        list[PeriodIn], Field(max_length=10, description="空 = 所有进行中的资助周期")
    ] = []
    org_code: Annotated[OrgCode | None, Field(description="比对范围；默认本机构")] = None
    include_verification: Annotated[bool, Field(description="同时运行数据核查规则")] = False


class RunPeriodRead(BaseModel):
    """Counts of one period of a run."""

    period: PeriodRead
    students_checked: int
    students_funded: int
    unfunded_opened: int
    unfunded_closed: int
    unfunded_reopened: int
    unfunded_open: int
    findings_raised: int
    findings_cleared: int
    duration_ms: int


class RunRead(BaseModel):
    """A comparison run (数据比对): periods, scope, status, times and counts."""

    run_id: str
    trigger: str
    status: str
    periods: list[PeriodRead]
    org_code: str
    include_verification: bool
    triggered_by: str
    schedule_slot: str
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int
    students_checked: int
    students_funded: int
    unfunded_opened: int
    unfunded_closed: int
    unfunded_reopened: int
    unfunded_open: int
    findings_raised: int
    findings_cleared: int
    error_message: str
    period_counts: list[RunPeriodRead]
    already_running: bool = False


class RunPage(BaseModel):
    """Runs, newest first."""

    items: list[RunRead]
    next_page_token: str
    total: int


def run_read(r: pb.Run, *, already_running: bool = False) -> RunRead:
    """Proto Run → schema."""
    return RunRead(
        run_id=r.run_id,
        trigger=_name(pb.RunTrigger, r.trigger, "RUN_TRIGGER_"),
        status=_name(pb.RunStatus, r.status, "RUN_STATUS_"),
        periods=[period_read(p) for p in r.periods],
        org_code=r.org_code,
        include_verification=r.include_verification,
        triggered_by=r.triggered_by,
        schedule_slot=r.schedule_slot,
        started_at=ts(r.started_at, r.HasField("started_at")),
        finished_at=ts(r.finished_at, r.HasField("finished_at")),
        duration_ms=r.duration_ms,
        students_checked=r.students_checked,
        students_funded=r.students_funded,
        unfunded_opened=r.unfunded_opened,
        unfunded_closed=r.unfunded_closed,
        unfunded_reopened=r.unfunded_reopened,
        unfunded_open=r.unfunded_open,
        findings_raised=r.findings_raised,
        findings_cleared=r.findings_cleared,
        error_message=r.error_message,
        period_counts=[
            RunPeriodRead(
                period=period_read(c.period),
                students_checked=c.students_checked,
                students_funded=c.students_funded,
                unfunded_opened=c.unfunded_opened,
                unfunded_closed=c.unfunded_closed,
                unfunded_reopened=c.unfunded_reopened,
                unfunded_open=c.unfunded_open,
                findings_raised=c.findings_raised,
                findings_cleared=c.findings_cleared,
                duration_ms=c.duration_ms,
            )
            for c in r.period_counts
        ],
        already_running=already_running,
    )


# --- unfunded entries and reasons ------------------------------------------------------------------


class GroupRead(BaseModel):
    """A special group the student is in, and where the listing came from."""

    group: str
    label: str
    source: str


class ReasonRead(BaseModel):
    """A reason reported at one level."""

    level: str
    org_code: str
    org_name: str
    reason_code: str
    reason_label: str
    note: str
    reported_by: str
    reported_at: datetime | None
    carried_over: bool


def reason_read(r: pb.ReasonReport) -> ReasonRead:
    """Proto ReasonReport → schema."""
    return ReasonRead(
        level=level_name(r.level),
        org_code=r.org_code,
        org_name=r.org_name,
        reason_code=r.reason_code,
        reason_label=r.reason_label,
        note=r.note,
        reported_by=r.reported_by,
        reported_at=ts(r.reported_at, r.HasField("reported_at")),
        carried_over=r.carried_over,
    )


class UnfundedRead(BaseModel):
    """One student on the unfunded list with the 13 group flags and every level's reason."""

    entry_id: str
    period: PeriodRead | None
    student_id: str
    student_name: str
    id_number_masked: str
    school_org_code: str
    school_name: str
    school_org_path: str
    stage: str
    grade: str
    class_name: str
    groups: list[GroupRead]
    status: str
    first_found_at: datetime | None
    reopened_at: datetime | None
    closed_at: datetime | None
    last_run_id: str
    reason_deadline_on: str
    school_reason: ReasonRead | None
    authority_reasons: list[ReasonRead]


class UnfundedPage(BaseModel):
    """A page of the unfunded list, and when the last comparison ran."""

    items: list[UnfundedRead]
    next_page_token: str
    total: int
    as_of: datetime | None


def unfunded_read(e: pb.UnfundedEntry) -> UnfundedRead:
    """Proto UnfundedEntry → schema."""
    return UnfundedRead(
        entry_id=e.entry_id,
        period=period_read(e.period) if e.HasField("period") else None,
        student_id=e.student_id,
        student_name=e.student_name,
        id_number_masked=e.id_number_masked,
        school_org_code=e.school_org_code,
        school_name=e.school_name,
        school_org_path=e.school_org_path,
        stage=_name(common_pb2.Stage, e.stage, "STAGE_"),
        grade=e.grade,
        class_name=e.class_name,
        groups=[
            GroupRead(
                group=group_name(g.group),
                label=GROUP_LABELS.get(g.group, ""),
                source=_name(common_pb2.MembershipSource, g.source, "MEMBERSHIP_SOURCE_"),
            )
            for g in e.groups
        ],
        status=_name(pb.UnfundedStatus, e.status, "UNFUNDED_STATUS_"),
        first_found_at=ts(e.first_found_at, e.HasField("first_found_at")),
        reopened_at=ts(e.reopened_at, e.HasField("reopened_at")),
        closed_at=ts(e.closed_at, e.HasField("closed_at")),
        last_run_id=e.last_run_id,
        reason_deadline_on=e.reason_deadline_on,
        school_reason=reason_read(e.school_reason) if e.HasField("school_reason") else None,
        authority_reasons=[reason_read(r) for r in e.authority_reasons],
    )


class ReasonReportCreate(Schema):
    """One reason for several entries (学校填报未资助原因, or an authority's own level)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"entry_ids": ["1"], "reason_code": "02", "note": ""}]},
    )

    entry_ids: Annotated[list[EntryId], Field(min_length=1, max_length=1000)]
    reason_code: ReasonCodeText
    note: Note = ""


class UnfundedBatchRead(BaseModel):
    """Entries after a report."""

    items: list[UnfundedRead]


# --- statistics and statements ----------------------------------------------------------------------


class GroupCountRead(BaseModel):
    """Counts of one group (or all groups when group is empty)."""

    group: str
    label: str
    students: int
    issued_students: int
    self_collected_students: int
    funded: int
    unfunded: int
    reason_reported: int
    reason_pending: int


class ReasonCountRead(BaseModel):
    """How many entries carry a reason."""

    reason_code: str
    reason_label: str
    count: int


class StatementRead(BaseModel):
    """An authority's own statement (本级未资助原因情况) for a period."""

    org: OrgRef
    period: PeriodRead | None
    group: str
    reason_code: str
    reason_label: str
    note: str
    reported_by: str
    reported_at: datetime | None


def statement_read(s: pb.AuthorityStatement) -> StatementRead:
    """Proto AuthorityStatement → schema."""
    return StatementRead(
        org=org_ref(s.org),
        period=period_read(s.period) if s.HasField("period") else None,
        group=group_name(s.group),
        reason_code=s.reason_code,
        reason_label=s.reason_label,
        note=s.note,
        reported_by=s.reported_by,
        reported_at=ts(s.reported_at, s.HasField("reported_at")),
    )


class StatsRowRead(BaseModel):
    """One row: total, directly-run schools, a child region, or a school."""

    kind: str
    org: OrgRef
    all_groups: GroupCountRead
    groups: list[GroupCountRead]
    reasons: list[ReasonCountRead]
    authority_reasons: list[ReasonCountRead]
    statements: list[StatementRead]


class StatsRead(BaseModel):
    """The authority view by child region × 13 groups."""

    rows: list[StatsRowRead]
    run_id: str
    as_of: datetime | None


def _count(c: pb.GroupCount) -> GroupCountRead:
    return GroupCountRead(
        group=group_name(c.group),
        label=GROUP_LABELS.get(c.group, "合计"),
        students=c.students,
        issued_students=c.issued_students,
        self_collected_students=c.self_collected_students,
        funded=c.funded,
        unfunded=c.unfunded,
        reason_reported=c.reason_reported,
        reason_pending=c.reason_pending,
    )


def stats_read(resp: pb.UnfundedStatsResponse) -> StatsRead:
    """Proto UnfundedStatsResponse → schema."""
    return StatsRead(
        rows=[
            StatsRowRead(
                kind=_name(common_pb2.StatsRowKind, r.kind, "STATS_ROW_KIND_"),
                org=org_ref(r.org),
                all_groups=_count(r.all_groups),
                groups=[_count(g) for g in r.groups],
                reasons=[
                    ReasonCountRead(
                        reason_code=x.reason_code, reason_label=x.reason_label, count=x.count
                    )
                    for x in r.reasons
                ],
                authority_reasons=[
                    ReasonCountRead(
                        reason_code=x.reason_code, reason_label=x.reason_label, count=x.count
                    )
                    for x in r.authority_reasons
                ],
                statements=[statement_read(s) for s in r.statements],
            )  # fmt: skip
            for r in resp.rows
        ],
        run_id=resp.run_id,
        as_of=ts(resp.as_of, resp.HasField("as_of")),
    )


class StatementCreate(Schema):
    """The caller's own level's reason statement for a period, all groups or one group."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "period": {"school_year": "2024-2025", "term": "autumn"},
                    "reason_code": "99",
                    "note": "本级已统筹地方资金另行资助",
                }
            ]
        },
    )

    period: PeriodIn
    group: GroupName | None = None
    reason_code: ReasonCodeText
    note: Note = ""


class StatementList(BaseModel):
    """Statements of an area."""

    items: list[StatementRead]


# --- reason dictionary --------------------------------------------------------------------------------


class ReasonCodeRead(BaseModel):
    """A code of the reason dictionary (未资助原因)."""

    code: str
    label: str
    description: str
    requires_note: bool
    enabled: bool
    sort_order: int


class ReasonCodeUpdate(Schema):
    """A code to add or replace (codes are disabled, never deleted)."""

    code: ReasonCodeText
    label: Annotated[str, Field(min_length=1, max_length=60)]
    description: Annotated[str, Field(max_length=200)] = ""
    requires_note: bool = False
    enabled: bool = True
    sort_order: int = 0


class ReasonDictionaryUpdate(Schema):
    """Edits of the dictionary (national level)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"reasons": [{"code": "12", "label": "已享受国家助学贷款", "sort_order": 12}]}
            ]
        },
    )

    reasons: Annotated[list[ReasonCodeUpdate], Field(min_length=1, max_length=100)]
    expected_version: Annotated[int, Field(ge=0, description="0 = 不校验版本")] = 0


class ReasonDictionaryRead(BaseModel):
    """The dictionary and its version."""

    items: list[ReasonCodeRead]
    version: int


def dictionary_read(reasons: list[pb.ReasonCode], version: int) -> ReasonDictionaryRead:
    """Proto reason codes → schema."""
    return ReasonDictionaryRead(
        items=[
            ReasonCodeRead(
                code=r.code,
                label=r.label,
                description=r.description,
                requires_note=r.requires_note,
                enabled=r.enabled,
                sort_order=r.sort_order,
            )
            for r in reasons
        ],  # fmt: skip
        version=version,
    )


# --- retired 建档立卡 report ---------------------------------------------------------------------------


class LegacyReportRead(BaseModel):
    """A report of the retired 脱贫家庭学生（原建档立卡）未资助情况 (read-only history)."""

    legacy_id: str
    period: PeriodRead | None
    project_code: str
    project_name: str
    student_id: str
    student_name: str
    id_number_masked: str
    school_org_code: str
    school_name: str
    legacy_reason: str
    reason_code: str
    note: str
    reported_by: str
    reported_at: datetime | None
    carried_over: bool


class LegacyReportPage(BaseModel):
    """A page of the history."""

    items: list[LegacyReportRead]
    next_page_token: str
    total: int


def legacy_read(r: pb.LegacyReport) -> LegacyReportRead:
    """Proto LegacyReport → schema."""
    return LegacyReportRead(
        legacy_id=r.legacy_id,
        period=period_read(r.period) if r.HasField("period") else None,
        project_code=r.project_code,
        project_name=r.project_name,
        student_id=r.student_id,
        student_name=r.student_name,
        id_number_masked=r.id_number_masked,
        school_org_code=r.school_org_code,
        school_name=r.school_name,
        legacy_reason=r.legacy_reason,
        reason_code=r.reason_code,
        note=r.note,
        reported_by=r.reported_by,
        reported_at=ts(r.reported_at, r.HasField("reported_at")),
        carried_over=r.carried_over,
    )


class LegacyRowCreate(Schema):
    """One row of the old report to load."""

    period: PeriodIn
    project_code: Annotated[str, Field(min_length=1, max_length=40)]
    project_name: Annotated[str, Field(max_length=100)] = ""
    id_type: Literal["resident_id", "hk_macao_residence_permit", "taiwan_residence_permit",
                     "foreigner_permanent_residence", "passport", "other"] = "resident_id"  # fmt: skip
    id_number: Annotated[str, Field(min_length=1, max_length=40)]
    student_name: Annotated[str, Field(min_length=1, max_length=50)]
    school_org_code: OrgCode
    legacy_reason: Annotated[str, Field(max_length=500)] = ""
    reason_code: Annotated[str, Field(max_length=2)] = ""
    note: Note = ""
    reported_by: Annotated[str, Field(max_length=50)] = ""
    reported_at: datetime | None = None


class LegacyImportCreate(Schema):
    """Rows of the old report (at most 5000 per call; all or nothing)."""

    rows: Annotated[list[LegacyRowCreate], Field(min_length=1, max_length=5000)]
    dry_run: bool = False


class LegacyImportRead(BaseModel):
    """Outcome: rows loaded, or every refused row (then nothing was written)."""

    imported_count: int
    dry_run: bool
    errors: list[RowErrorRead]


def legacy_import_read(resp: pb.ImportLegacyReportsResponse) -> LegacyImportRead:
    """Proto ImportLegacyReportsResponse → schema."""
    return LegacyImportRead(
        imported_count=resp.imported_count,
        dry_run=resp.dry_run,
        errors=[row_error(e) for e in resp.errors],
    )


# --- findings and quotas -------------------------------------------------------------------------------


class FindingRead(BaseModel):
    """A data-verification finding (数据核查疑似问题)."""

    finding_id: str
    rule_code: str
    rule_name: str
    severity: str
    status: str
    period: PeriodRead | None
    org_code: str
    org_name: str
    org_path: str
    student_id: str
    student_name: str
    id_number_masked: str
    project_code: str
    record_ids: list[str]
    summary: str
    facts: dict[str, str]
    run_id: str
    found_at: datetime | None
    last_seen_at: datetime | None
    resolution_note: str
    resolved_by: str
    resolved_at: datetime | None


def finding_read(f: pb.Finding) -> FindingRead:
    """Proto Finding → schema."""
    return FindingRead(
        finding_id=f.finding_id,
        rule_code=f.rule_code,
        rule_name=f.rule_name,
        severity=_name(pb.FindingSeverity, f.severity, "FINDING_SEVERITY_"),
        status=_name(pb.FindingStatus, f.status, "FINDING_STATUS_"),
        period=period_read(f.period) if f.HasField("period") else None,
        org_code=f.org_code,
        org_name=f.org_name,
        org_path=f.org_path,
        student_id=f.student_id,
        student_name=f.student_name,
        id_number_masked=f.id_number_masked,
        project_code=f.project_code,
        record_ids=list(f.record_ids),
        summary=f.summary,
        facts=dict(f.facts),
        run_id=f.run_id,
        found_at=ts(f.found_at, f.HasField("found_at")),
        last_seen_at=ts(f.last_seen_at, f.HasField("last_seen_at")),
        resolution_note=f.resolution_note,
        resolved_by=f.resolved_by,
        resolved_at=ts(f.resolved_at, f.HasField("resolved_at")),
    )


class FindingActionRead(BaseModel):
    """One audited step of a finding."""

    from_status: str
    to_status: str
    note: str
    actor: str
    actor_org_code: str
    at: datetime | None
    run_id: str


class FindingDetailRead(BaseModel):
    """A finding with its history."""

    finding: FindingRead
    actions: list[FindingActionRead]


def finding_detail_read(resp: pb.GetFindingResponse) -> FindingDetailRead:
    """Proto GetFindingResponse → schema."""
    return FindingDetailRead(
        finding=finding_read(resp.finding),
        actions=[
            FindingActionRead(
                from_status=_name(pb.FindingStatus, a.from_status, "FINDING_STATUS_"),
                to_status=_name(pb.FindingStatus, a.to_status, "FINDING_STATUS_"),
                note=a.note,
                actor=a.actor,
                actor_org_code=a.actor_org_code,
                at=ts(a.at, a.HasField("at")),
                run_id=a.run_id,
            )  # fmt: skip
            for a in resp.actions
        ],
    )


class FindingPage(BaseModel):
    """A page of findings."""

    items: list[FindingRead]
    next_page_token: str
    total: int


class FindingResolveCreate(Schema):
    """Confirm, mark fixed or dismiss findings with an audited note."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"finding_ids": ["1"], "resolution": "confirmed", "note": "已核实"}]
        },
    )

    finding_ids: Annotated[list[FindingId], Field(min_length=1, max_length=1000)]
    resolution: ResolutionName
    note: Annotated[str, Field(min_length=1, max_length=500)]


class FindingBatchRead(BaseModel):
    """Findings after a resolution."""

    items: list[FindingRead]


class RuleCountRead(BaseModel):
    """Findings of one rule by status."""

    rule_code: str
    rule_name: str
    severity: str
    open: int
    confirmed: int
    fixed: int
    dismissed: int


class FindingStatsRowRead(BaseModel):
    """One row of the findings view."""

    kind: str
    org: OrgRef
    rules: list[RuleCountRead]


class FindingStatsRead(BaseModel):
    """Findings by child region × rule."""

    rows: list[FindingStatsRowRead]


def finding_stats_read(resp: pb.FindingStatsResponse) -> FindingStatsRead:
    """Proto FindingStatsResponse → schema."""
    return FindingStatsRead(
        rows=[
            FindingStatsRowRead(
                kind=_name(common_pb2.StatsRowKind, r.kind, "STATS_ROW_KIND_"),
                org=org_ref(r.org),
                rules=[
                    RuleCountRead(
                        rule_code=c.rule_code,
                        rule_name=c.rule_name,
                        severity=_name(pb.FindingSeverity, c.severity, "FINDING_SEVERITY_"),
                        open=c.open,
                        confirmed=c.confirmed,
                        fixed=c.fixed,
                        dismissed=c.dismissed,
                    )  # fmt: skip
                    for c in r.rules
                ],
            )
            for r in resp.rows
        ]
    )


class QuotaCreate(Schema):
    """Places (名额) of a project in a school year for an org of the caller's area (0 removes)."""

    project_code: Annotated[str, Field(min_length=1, max_length=40, examples=["GJ-PG-ZXJ"])]
    school_year: SchoolYear
    org_code: OrgCode
    places: Annotated[int, Field(ge=0, le=10**8)]


class QuotaSet(Schema):
    """Quotas to set (all or nothing)."""

    quotas: Annotated[list[QuotaCreate], Field(min_length=1, max_length=1000)]


class QuotaRead(BaseModel):
    """A quota."""

    project_code: str
    school_year: str
    org: OrgRef
    places: int
    set_by: str
    set_at: datetime | None


class QuotaList(BaseModel):
    """Quotas of an area."""

    items: list[QuotaRead]


def quota_read(q: pb.Quota) -> QuotaRead:
    """Proto Quota → schema."""
    return QuotaRead(
        project_code=q.project_code,
        school_year=q.school_year,
        org=org_ref(q.org),
        places=q.places,
        set_by=q.set_by,
        set_at=ts(q.set_at, q.HasField("set_at")),
    )

"""The unfunded special-group list (特殊群体学生未资助名单), reasons at every level, statistics by region × 13
groups, the retired 建档立卡 history, comparison runs, data-verification findings and quotas.

This module holds the shared enum names and mapping helpers, the period models, and the statistics
and statements models (the statistics embed the statement): their OpenAPI component names
(`gateway__schemas__reconcile__PeriodRead`, `…__StatsRead`, `…__StatsRowRead`) are derived from this
module's name. The other models are in `runs`, `unfunded`, `legacy` and `findings`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.reconcile.v1 import reconcile_pb2 as pb

from gateway.schemas.common import (
    OrgRef,
    Schema,
    enum_name,
    enum_value,
    org_ref,
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

"""Aid schemas for projects (资助项目): amount tiers, exclusions, create/update/read and the proto
mapping."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from zizhu_contracts.aid.v1 import aid_pb2
from zizhu_contracts.common.v1 import common_pb2

from gateway.schemas.aid import (
    AmountFen,
    AuthorityLevelName,
    CategoryName,
    ExclusionScopeName,
    HardshipName,
    OwnerTypeName,
    ProjectCode,
    ProjectStatusName,
    _name,
)
from gateway.schemas.common import (
    Schema,
    StageName,
    enum_value,
    level_name,
    level_value,
    stage_value,
    ts,
)


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

"""Aid projects (资助项目): who may set them up, their amount tiers, recognition rule,
exclusions, quota and the authority levels that re-audit their records (seed 000 art. 13–14)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from zizhu_common.errors import InvalidArgument, PermissionDenied

from aid_service.domain.enums import (
    Category,
    ExclusionScope,
    HardshipLevel,
    Level,
    OwnerType,
    ProjectStatus,
    Stage,
)
from aid_service.domain.periods import parse_school_year

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,39}$")
_TIER_CODE = re.compile(r"^[A-Za-z0-9_-]{1,20}$")
MAX_NAME = 60
MAX_TEXT = 1000
MAX_TIERS = 20
MAX_EXCLUSIONS = 20
# Ten million yuan per record: anything above is a typing error, not an aid amount.
MAX_AMOUNT_FEN = 1_000_000_000
AUTHORITY_LEVELS = (Level.NATIONAL, Level.PROVINCE, Level.CITY, Level.COUNTY)


@dataclass(frozen=True)
class AmountTier:
    """An allowed amount per record (资助标准档次)."""

    tier_code: str
    name: str
    amount_fen: int


@dataclass(frozen=True)
class Exclusion:
    """A project a student may not also hold, within a school year or a term."""

    project_code: str
    scope: ExclusionScope


@dataclass
class Project:
    """An aid project and its rules."""

    project_code: str
    name: str
    owner_type: OwnerType
    owner_org_code: str
    owner_org_path: str
    owner_level: Level
    stage: Stage
    category: Category
    tiers: tuple[AmountTier, ...] = ()
    allow_custom_amount: bool = False
    min_amount_fen: int = 0
    max_amount_fen: int = 0
    requires_recognition: bool = False
    min_hardship_level: HardshipLevel | None = None
    exclusions: tuple[Exclusion, ...] = ()
    audit_levels: tuple[Level, ...] = ()
    annual: bool = False
    start_school_year: str = ""
    end_school_year: str = ""
    status: ProjectStatus = ProjectStatus.ACTIVE
    policy_basis: str = ""
    description: str = ""
    quota_per_school: int = 0
    created_by: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 1
    changed_fields: list[str] = field(default_factory=list, compare=False)

    def applies_to(self, org_path: str) -> bool:
        """True when an org at org_path lies in the project's scope (the owner's subtree)."""
        return org_path.startswith(self.owner_org_path)

    def runs_in(self, school_year: str) -> bool:
        """True when the project runs in that school year."""
        if self.start_school_year and school_year < self.start_school_year:
            return False
        return not (self.end_school_year and school_year > self.end_school_year)

    def tier(self, tier_code: str) -> AmountTier | None:
        """The tier with that code (or name), if any."""
        for t in self.tiers:
            if t.tier_code == tier_code or t.name == tier_code:
                return t
        return None

    def allowed_amounts_text(self) -> str:
        """The allowed amounts, in yuan, for error messages."""
        parts = [f"{t.name or t.tier_code}{yuan(t.amount_fen)}元" for t in self.tiers]
        if self.allow_custom_amount:
            parts.append(f"{yuan(self.min_amount_fen)}至{yuan(self.max_amount_fen)}元之间")
        return "、".join(parts) or "（未设置）"


def yuan(fen: int) -> str:
    """Fen as a yuan amount for display: 115000 → "1150", 62550 → "625.5"."""
    text = f"{fen // 100}.{fen % 100:02d}" if fen >= 0 else f"-{yuan(-fen)}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def default_audit_levels(owner_type: OwnerType, owner_level: Level) -> tuple[Level, ...]:
    """County → city → province (bounded by the owner's level); none for school/social."""
    if owner_type in (OwnerType.SCHOOL, OwnerType.SOCIAL):
        return ()
    return tuple(lvl for lvl in (Level.COUNTY, Level.CITY, Level.PROVINCE) if lvl >= owner_level)


def owner_level_for(owner_type: OwnerType, caller_level: Level) -> None:
    """Refuse a caller whose level may not own a project of that type (seed 000 art. 13)."""
    allowed = {
        OwnerType.NATIONAL: (Level.NATIONAL,),
        OwnerType.LOCAL_GOVERNMENT: (Level.PROVINCE, Level.CITY, Level.COUNTY),
        OwnerType.SCHOOL: (Level.SCHOOL,),
        OwnerType.SOCIAL: (Level.SCHOOL,),
    }[owner_type]
    if caller_level not in allowed:
        raise PermissionDenied(
            f"{owner_type.label}项目只能由{'、'.join(lvl.label for lvl in allowed)}设置",
            code="PROJECT_OWNER_LEVEL",
            field="owner_type",
        )


def check_code(code: str) -> str:
    """A project code: 2–40 letters, digits, '-' or '_'."""
    value = (code or "").strip()
    if not _CODE.match(value):
        raise InvalidArgument(
            "项目代码应为2至40位字母、数字、“-”或“_”",
            code="PROJECT_CODE_INVALID",
            field="project_code",
        )
    return value


def check_name(name: str) -> str:
    """A project name of 1–60 characters."""
    value = (name or "").strip()
    if not value or len(value) > MAX_NAME:
        raise InvalidArgument(
            f"项目名称不能为空且不超过{MAX_NAME}个字", code="PROJECT_NAME_INVALID", field="name"
        )
    return value


def check_text(value: str, *, field: str, label: str) -> str:
    """A free text of at most 1000 characters."""
    text = (value or "").strip()
    if len(text) > MAX_TEXT:
        raise InvalidArgument(f"{label}不超过{MAX_TEXT}个字", code="TEXT_TOO_LONG", field=field)
    return text


def check_tiers(tiers: Sequence[AmountTier]) -> tuple[AmountTier, ...]:
    """Tiers with unique codes and names and positive amounts; names default to "N档"."""
    if len(tiers) > MAX_TIERS:
        raise InvalidArgument(f"档次不超过{MAX_TIERS}个", code="TIERS_INVALID", field="tiers")
    out: list[AmountTier] = []
    seen: set[str] = set()
    for i, t in enumerate(tiers):
        code = (t.tier_code or "").strip() or str(i + 1)
        name = (t.name or "").strip() or f"{_CN_ORDINALS[i] if i < 10 else i + 1}档"
        if not _TIER_CODE.match(code) or code in seen or name in seen:
            raise InvalidArgument(
                f"第{i + 1}个档次的代码“{code}”无效或重复", code="TIER_CODE_INVALID", field="tiers"
            )
        if not 0 < t.amount_fen <= MAX_AMOUNT_FEN:
            raise InvalidArgument(
                f"档次“{name}”的金额须大于0且不超过1000万元",
                code="TIER_AMOUNT_INVALID",
                field="tiers",
            )
        seen.update((code, name))
        out.append(AmountTier(code, name, t.amount_fen))
    return tuple(out)


_CN_ORDINALS = "一二三四五六七八九十"


def check_amount_rules(project: Project) -> None:
    """Tiers or a custom range must exist, and the range must be ordered."""
    if project.allow_custom_amount:
        if not 0 < project.min_amount_fen <= project.max_amount_fen <= MAX_AMOUNT_FEN:
            raise InvalidArgument(
                "自定义金额范围须满足 0 < 最低金额 ≤ 最高金额 ≤ 1000万元",
                code="AMOUNT_RANGE_INVALID",
                field="min_amount_fen",
            )
    elif not project.tiers:
        raise InvalidArgument(
            "请至少设置一个资助标准档次，或允许自定义金额", code="TIERS_REQUIRED", field="tiers"
        )


def check_recognition_rule(project: Project) -> None:
    """A recognition requirement names a level of hardship (default 一般困难)."""
    if not project.requires_recognition:
        project.min_hardship_level = None
        return
    if project.min_hardship_level is None:
        project.min_hardship_level = HardshipLevel.GENERAL
    if project.min_hardship_level is HardshipLevel.NOT_DIFFICULT:
        raise InvalidArgument(
            "认定要求不能是“不困难”", code="HARDSHIP_LEVEL_INVALID", field="min_hardship_level"
        )


def check_audit_levels(project: Project, levels: Sequence[Level]) -> tuple[Level, ...]:
    """Authority levels, bottom-up, at or below the owner's level; none for school/social."""
    if project.owner_type in (OwnerType.SCHOOL, OwnerType.SOCIAL):
        if levels:
            raise InvalidArgument(
                "学校和社会资助项目在学校审核后即审核通过，不能设置复核层级",
                code="AUDIT_LEVELS_INVALID",
                field="audit_levels",
            )
        return ()
    if not levels:
        return default_audit_levels(project.owner_type, project.owner_level)
    out: list[Level] = []
    for lvl in levels:
        if lvl not in AUTHORITY_LEVELS or lvl < project.owner_level or lvl in out:
            raise InvalidArgument(
                "复核层级须为项目设立层级及其以下的主管部门层级，且不重复",
                code="AUDIT_LEVELS_INVALID",
                field="audit_levels",
            )
        out.append(lvl)
    # Bottom-up: county (4) first, whatever order they came in.
    return tuple(sorted(out, reverse=True))


def check_school_years(project: Project) -> None:
    """First and last school year are valid and ordered."""
    if project.start_school_year:
        parse_school_year(project.start_school_year, field="start_school_year")
    if project.end_school_year:
        parse_school_year(project.end_school_year, field="end_school_year")
    if (
        project.start_school_year
        and project.end_school_year
        and project.end_school_year < project.start_school_year
    ):
        raise InvalidArgument(
            "结束学年不能早于开始学年", code="SCHOOL_YEAR_RANGE_INVALID", field="end_school_year"
        )


def check_exclusions(project: Project, exclusions: Sequence[Exclusion]) -> tuple[Exclusion, ...]:
    """Distinct other projects, scope defaulting to the school year."""
    if len(exclusions) > MAX_EXCLUSIONS:
        raise InvalidArgument(
            f"互斥项目不超过{MAX_EXCLUSIONS}个", code="EXCLUSIONS_INVALID", field="exclusions"
        )
    out: dict[str, Exclusion] = {}
    for e in exclusions:
        code = (e.project_code or "").strip()
        if not code or code == project.project_code:
            raise InvalidArgument(
                "互斥项目代码无效（不能为空或为本项目）",
                code="EXCLUSIONS_INVALID",
                field="exclusions",
            )
        out[code] = Exclusion(code, e.scope or ExclusionScope.SCHOOL_YEAR)
    return tuple(out.values())


def validate_project(project: Project, *, audit_levels: Sequence[Level]) -> Project:
    """Normalise and check every rule of a project (create or update)."""
    project.name = check_name(project.name)
    project.tiers = check_tiers(project.tiers)
    check_amount_rules(project)
    if project.quota_per_school < 0:
        raise InvalidArgument("名额不能为负数", code="QUOTA_INVALID", field="quota_per_school")
    check_recognition_rule(project)
    project.exclusions = check_exclusions(project, project.exclusions)
    project.audit_levels = check_audit_levels(project, audit_levels)
    check_school_years(project)
    project.policy_basis = check_text(project.policy_basis, field="policy_basis", label="政策依据")
    project.description = check_text(project.description, field="description", label="项目说明")
    return project


@dataclass(frozen=True)
class AmountChoice:
    """The amount a record gets and the tier it matches ("" for a custom amount)."""

    amount_fen: int
    tier_code: str


class AmountProblem(ValueError):
    """An amount the project does not allow, with a stable code and a Chinese reason."""

    def __init__(self, code: str, message: str, field: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def choose_amount(project: Project, *, tier_code: str, amount_fen: int) -> AmountChoice:
    """Resolve a tier and/or an amount against the project's standard (资助标准)."""
    tier_code = (tier_code or "").strip()
    if tier_code:
        tier = project.tier(tier_code)
        if tier is None:
            raise AmountProblem(
                "TIER_UNKNOWN",
                f"资助档次“{tier_code}”不存在，可选：{project.allowed_amounts_text()}",
                "tier_code",
            )
        if amount_fen and amount_fen != tier.amount_fen:
            raise AmountProblem(
                "AMOUNT_TIER_MISMATCH",
                f"资助金额{yuan(amount_fen)}元与档次“{tier.name}”的标准{yuan(tier.amount_fen)}元不一致",
                "amount_fen",
            )
        return AmountChoice(tier.amount_fen, tier.tier_code)
    if amount_fen:
        if amount_fen < 0:
            raise AmountProblem("AMOUNT_INVALID", "资助金额不能为负数", "amount_fen")
        for t in project.tiers:
            if t.amount_fen == amount_fen:
                return AmountChoice(amount_fen, t.tier_code)
        if (
            project.allow_custom_amount
            and project.min_amount_fen <= amount_fen <= project.max_amount_fen
        ):
            return AmountChoice(amount_fen, "")
        raise AmountProblem(
            "AMOUNT_NOT_IN_TIERS",
            f"资助金额{yuan(amount_fen)}元不在项目标准内，可选：{project.allowed_amounts_text()}",
            "amount_fen",
        )
    if len(project.tiers) == 1 and not project.allow_custom_amount:
        only = project.tiers[0]
        return AmountChoice(only.amount_fen, only.tier_code)
    raise AmountProblem(
        "AMOUNT_REQUIRED",
        f"请填写资助档次或资助金额，可选：{project.allowed_amounts_text()}",
        "tier_code",
    )


def recognition_problem(project: Project, level: HardshipLevel | None) -> str | None:
    """Why a student's recognition does not meet the project's requirement (None if it does)."""
    if not project.requires_recognition:
        return None
    need = project.min_hardship_level or HardshipLevel.GENERAL
    if level is None:
        return f"该项目要求家庭经济困难认定（{need.label}及以上），该学生本学年尚未认定"
    if level is HardshipLevel.NOT_DIFFICULT or level > need:
        return f"该项目要求认定为{need.label}及以上，该学生本学年认定为{level.label}"
    return None

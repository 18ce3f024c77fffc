"""Projects (资助项目) and periods (资助周期): set up by the level that owns them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from zizhu_common.errors import AlreadyExists, Conflict, FailedPrecondition, InvalidArgument
from zizhu_common.rpc import CallerContext

from aid_service import events
from aid_service.domain.catalogue import NATIONAL_ORG, NATIONAL_PROJECTS
from aid_service.domain.enums import (
    Category,
    HardshipLevel,
    Level,
    OwnerType,
    PeriodStatus,
    ProjectStatus,
    Stage,
)
from aid_service.domain.periods import AidPeriod, Period, plan_period
from aid_service.domain.projects import (
    AmountTier,
    Exclusion,
    Project,
    check_code,
    owner_level_for,
    validate_project,
)
from aid_service.service.context import (
    Deps,
    Page,
    is_system,
    level_of,
    next_token,
    out_of_scope,
    page_of,
    require_levels,
    require_roles,
    scope_path,
)

# Fields a project's owner may change; stage and category only while it has no records.
MUTABLE = (
    "name",
    "stage",
    "category",
    "tiers",
    "allow_custom_amount",
    "min_amount_fen",
    "max_amount_fen",
    "requires_recognition",
    "min_hardship_level",
    "exclusions",
    "audit_levels",
    "annual",
    "start_school_year",
    "end_school_year",
    "status",
    "policy_basis",
    "description",
    "quota_per_school",
)
FROZEN_ONCE_USED = ("stage", "category", "annual")


@dataclass
class ProjectCreate:
    """What a caller gives to set up a project."""

    project_code: str
    name: str
    owner_type: int
    stage: int
    category: int
    owner_org_code: str = ""
    tiers: tuple[AmountTier, ...] = ()
    allow_custom_amount: bool = False
    min_amount_fen: int = 0
    max_amount_fen: int = 0
    requires_recognition: bool = False
    min_hardship_level: int = 0
    exclusions: tuple[Exclusion, ...] = ()
    audit_levels: tuple[Level, ...] = ()
    annual: bool = False
    start_school_year: str = ""
    end_school_year: str = ""
    policy_basis: str = ""
    description: str = ""
    quota_per_school: int = 0


@dataclass
class ProjectChanges:
    """Fields to change (None = unchanged)."""

    values: dict[str, Any] = field(default_factory=dict)
    expected_version: int = 0


def _enum(kind: type, value: int, *, field: str, label: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise InvalidArgument(
            f"请选择{label}", code=f"{field.upper()}_INVALID", field=field
        ) from None


def visible(caller: CallerContext, p: Project) -> bool:
    """A project is visible inside its owner's subtree and to the owner's ancestors."""
    return (
        is_system(caller)
        or caller.in_scope(p.owner_org_path)
        or caller.org_path.startswith(p.owner_org_path)
    )


class ProjectService:
    """Create, change, read and list projects; open and close periods."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def create(self, caller: CallerContext, req: ProjectCreate) -> Project:
        """Set up a project owned by the caller's org (national, local-government, school, social)."""
        require_roles(caller, "operator", "admin", what="设置资助项目")
        owner_type = _enum(OwnerType, req.owner_type, field="owner_type", label="项目来源")
        code = check_code(req.project_code)
        async with self.deps.db.write() as session:
            if is_system(caller):
                owner = await self.deps.orgs.get(session, req.owner_org_code)
                root = self.deps.settings.root_org_code
                if owner is not None:
                    owner_code, owner_path, owner_level = (
                        owner.org_code,
                        owner.org_path,
                        owner.level,
                    )
                elif req.owner_org_code == root:
                    # The deployment's root is known before identity's events arrive.
                    owner_code, owner_path = root, f"/{root}/"
                    owner_level = Level.NATIONAL if root == NATIONAL_ORG else Level.PROVINCE
                else:
                    raise out_of_scope(field="owner_org_code")
            else:
                if req.owner_org_code and req.owner_org_code != caller.org_code:
                    raise InvalidArgument(
                        "项目只能由设立它的单位本身创建",
                        code="OWNER_NOT_CALLER",
                        field="owner_org_code",
                    )
                owner_code, owner_path, owner_level = (
                    caller.org_code,
                    caller.org_path,
                    level_of(caller),
                )
            owner_level_for(owner_type, owner_level)
            project = Project(
                project_code=code,
                name=req.name,
                owner_type=owner_type,
                owner_org_code=owner_code,
                owner_org_path=owner_path,
                owner_level=owner_level,
                stage=_enum(Stage, req.stage, field="stage", label="学段"),
                category=_enum(Category, req.category, field="category", label="项目类别"),
                tiers=tuple(req.tiers),
                allow_custom_amount=req.allow_custom_amount,
                min_amount_fen=req.min_amount_fen,
                max_amount_fen=req.max_amount_fen,
                requires_recognition=req.requires_recognition,
                min_hardship_level=HardshipLevel(req.min_hardship_level)
                if req.min_hardship_level
                else None,
                exclusions=tuple(req.exclusions),
                annual=req.annual,
                start_school_year=req.start_school_year.strip(),
                end_school_year=req.end_school_year.strip(),
                status=ProjectStatus.ACTIVE,
                policy_basis=req.policy_basis,
                description=req.description,
                quota_per_school=req.quota_per_school,
                created_by=caller.account_id,
                created_at=self.deps.now(),
                updated_at=self.deps.now(),
            )
            validate_project(project, audit_levels=req.audit_levels)
            if await self.deps.projects.get(session, code) is not None:
                raise AlreadyExists(
                    f"项目代码“{code}”已存在", code="PROJECT_EXISTS", field="project_code"
                )
            await self._check_exclusions_exist(session, project)
            await self.deps.projects.insert(session, project)
            await self.deps.outbox.add(
                session, events.PROJECT_CREATED, events.project_created(caller, project)
            )
        return project

    async def _check_exclusions_exist(self, session: Any, project: Project) -> None:
        codes = [e.project_code for e in project.exclusions]
        found = await self.deps.projects.get_many(session, codes)
        missing = [c for c in codes if c not in found]
        if missing:
            raise InvalidArgument(
                f"互斥项目不存在：{'、'.join(missing)}",
                code="EXCLUSION_UNKNOWN",
                field="exclusions",
            )

    async def update(self, caller: CallerContext, code: str, changes: ProjectChanges) -> Project:
        """Change a project (its owner only); stage and category are frozen once it has records."""
        require_roles(caller, "operator", "admin", what="修改资助项目")
        async with self.deps.db.write() as session:
            current = await self.deps.projects.get(session, code)
            if current is None or not visible(caller, current):
                raise out_of_scope("项目", field="project_code")
            if not is_system(caller) and current.owner_org_code != caller.org_code:
                raise FailedPrecondition(
                    "只有设立该项目的单位可以修改项目",
                    code="NOT_PROJECT_OWNER",
                    field="project_code",
                )
            if changes.expected_version and changes.expected_version != current.version:
                raise Conflict("项目已被他人修改，请刷新后重试", code="VERSION_CONFLICT")
            updated = replace(current, changed_fields=[])
            audit_levels: Sequence[Level] = current.audit_levels
            changed: list[str] = []
            for name, value in changes.values.items():
                if name not in MUTABLE or value is None:
                    continue
                if name == "audit_levels":
                    if tuple(value) != current.audit_levels:
                        audit_levels = tuple(value)
                        changed.append(name)
                    continue
                if name == "stage":
                    value = _enum(Stage, value, field="stage", label="学段")
                elif name == "category":
                    value = _enum(Category, value, field="category", label="项目类别")
                elif name == "status":
                    value = _enum(ProjectStatus, value, field="status", label="项目状态")
                elif name == "min_hardship_level":
                    value = HardshipLevel(value) if value else None
                elif name in ("tiers", "exclusions"):
                    value = tuple(value)
                if getattr(current, name) != value:
                    setattr(updated, name, value)
                    changed.append(name)
            if not changed:
                return current
            frozen = [f for f in FROZEN_ONCE_USED if f in changed]
            if frozen and await self.deps.records.has_records(session, code):
                raise FailedPrecondition(
                    "项目已有资助名单，不能再修改学段、类别或按学年设置",
                    code="PROJECT_IN_USE",
                    field=frozen[0],
                )
            validate_project(updated, audit_levels=audit_levels)
            if "exclusions" in changed:
                await self._check_exclusions_exist(session, updated)
            updated.version = current.version + 1
            updated.updated_at = self.deps.now()
            if not await self.deps.projects.update(session, updated, current.version):
                raise Conflict("项目已被他人修改，请刷新后重试", code="VERSION_CONFLICT")
            await self.deps.outbox.add(
                session, events.PROJECT_UPDATED, events.project_updated(caller, updated, changed)
            )
        return updated

    async def get(self, caller: CallerContext, code: str) -> Project:
        """One project visible to the caller."""
        async with self.deps.db.read() as session:
            project = await self.deps.projects.get(session, code)
        if project is None or not visible(caller, project):
            raise out_of_scope("项目", field="project_code")
        return project

    async def list_projects(
        self,
        caller: CallerContext,
        *,
        owner_org_code: str = "",
        applicable_to_org_code: str = "",
        owner_types: Sequence[int] = (),
        stage: int = 0,
        categories: Sequence[int] = (),
        school_year: str = "",
        include_disabled: bool = False,
        query: str = "",
        page_size: int = 0,
        page_token: str = "",
    ) -> tuple[list[Project], int, str]:
        """Projects owned in a subtree, or those a school may enter records for."""
        filters = (owner_org_code, applicable_to_org_code, tuple(owner_types), stage,
                   tuple(categories), school_year, include_disabled, query)  # fmt: skip
        page: Page = page_of(page_size, page_token, filters)
        async with self.deps.db.read() as session:
            kwargs: dict[str, Any] = {}
            if applicable_to_org_code:
                org = await self.deps.orgs.get(session, applicable_to_org_code)
                if applicable_to_org_code == caller.org_code:
                    path = caller.org_path
                elif org is None or not (is_system(caller) or caller.in_scope(org.org_path)):
                    raise out_of_scope(field="applicable_to_org_code")
                else:
                    path = org.org_path
                kwargs["applicable_to"] = path
                if org is not None and org.level is Level.SCHOOL and org.stages and not stage:
                    kwargs["stages"] = org.stages
            else:
                kwargs["owner_subtree"] = await scope_path(
                    self.deps, session, caller, owner_org_code, field="owner_org_code"
                )
            projects, total = await self.deps.projects.search(
                session,
                owner_types=[OwnerType(x) for x in owner_types if x],
                categories=[Category(x) for x in categories if x],
                school_year=school_year,
                include_disabled=include_disabled,
                query=query.strip(),
                offset=page.offset,
                limit=page.limit,
                **({"stages": [Stage(stage)]} if stage else {}),
                **kwargs,
            )
        return projects, total, next_token(page, total, filters)

    async def ensure_catalogue(self, caller: CallerContext) -> int:
        """Create the national projects that do not exist yet (existing ones are left alone)."""
        created = 0
        root = self.deps.settings.root_org_code
        for entry in NATIONAL_PROJECTS:
            async with self.deps.db.read() as session:
                exists = await self.deps.projects.get(session, entry["project_code"]) is not None
            if exists:
                continue
            values = {k: v for k, v in entry.items() if k != "exclusions"}
            try:
                await self.create(
                    caller,
                    ProjectCreate(
                        owner_type=int(OwnerType.NATIONAL), owner_org_code=root, **values
                    ),
                )
            except AlreadyExists:
                continue
            created += 1
        for entry in NATIONAL_PROJECTS:
            if entry.get("exclusions"):
                async with self.deps.db.read() as session:
                    current = await self.deps.projects.get(session, entry["project_code"])
                if current is not None and not current.exclusions:
                    await self.update(
                        caller,
                        entry["project_code"],
                        ProjectChanges({"exclusions": entry["exclusions"]}),
                    )
        return created

    # --- periods ---------------------------------------------------------------------------

    async def open_period(
        self,
        caller: CallerContext,
        period: AidPeriod,
        *,
        starts_on: str = "",
        ends_on: str = "",
        deadline_on: str = "",
    ) -> Period:
        """Open an aid period for entry (the nation); a closed period may be reopened."""
        require_roles(caller, "operator", "admin", what="开启资助周期")
        require_levels(caller, Level.NATIONAL, what="开启资助周期")
        start, end, deadline = plan_period(
            period, starts_on=starts_on, ends_on=ends_on, deadline_on=deadline_on
        )
        now = self.deps.now()
        async with self.deps.db.write() as session:
            existing = await self.deps.periods.get(session, period)
            if existing is not None and existing.is_open:
                raise AlreadyExists(
                    f"{period.label}已开启", code="PERIOD_ALREADY_OPEN", field="period"
                )
            opened = Period(
                period=period,
                status=PeriodStatus.OPEN,
                starts_on=start,
                ends_on=end,
                deadline_on=deadline,
                opened_at=now,
                closed_at=None,
                opened_by=caller.account_id,
            )
            await self.deps.periods.save(session, opened, new=existing is None)
            await self.deps.outbox.add(
                session, events.PERIOD_OPENED, events.period_opened(caller, opened)
            )
        return opened

    async def close_period(self, caller: CallerContext, period: AidPeriod) -> Period:
        """Close a period: no more entry or audit."""
        require_roles(caller, "operator", "admin", what="关闭资助周期")
        require_levels(caller, Level.NATIONAL, what="关闭资助周期")
        async with self.deps.db.write() as session:
            existing = await self.deps.periods.get(session, period)
            if existing is None:
                raise out_of_scope("资助周期", field="period")
            if not existing.is_open:
                raise FailedPrecondition(
                    f"{period.label}已关闭", code="PERIOD_CLOSED", field="period"
                )
            existing.status = PeriodStatus.CLOSED
            existing.closed_at = self.deps.now()
            await self.deps.periods.save(session, existing, new=False)
            await self.deps.outbox.add(
                session, events.PERIOD_CLOSED, events.period_closed(caller, existing)
            )
        return existing

    async def list_periods(
        self, caller: CallerContext, statuses: Sequence[int], page_size: int, page_token: str
    ) -> tuple[list[Period], int, str]:
        """Periods, newest first (every caller may see them)."""
        del caller
        filters = tuple(statuses)
        page = page_of(page_size, page_token, filters)
        async with self.deps.db.read() as session:
            periods, total = await self.deps.periods.list(
                session, [PeriodStatus(s) for s in statuses if s], page.offset, page.limit
            )
        return periods, total, next_token(page, total, filters)

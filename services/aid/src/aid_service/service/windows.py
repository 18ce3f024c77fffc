"""Time windows (填报时间): set by a project's owner (or an authority above a region, within the
window it is itself given), closed early, extended for a school or region by an upper level."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from zizhu_common.rpc import CallerContext

from aid_service import events
from aid_service.domain.enums import Level, Phase
from aid_service.domain.periods import AidPeriod, Period
from aid_service.domain.projects import Project
from aid_service.domain.records import new_id
from aid_service.domain.windows import (
    Governing,
    Window,
    default_window,
    govern,
    governing_window,
    window_closed,
)
from aid_service.service.context import (
    Deps,
    is_system,
    level_of,
    next_token,
    out_of_scope,
    page_of,
    require_roles,
    scope_path,
)
from aid_service.service.projects import visible

MAX_REASON = 500
MAX_PROJECTS = 200


def parse_phase(value: int, *, field: str = "phase") -> Phase:
    """A phase from its contract number."""
    try:
        return Phase(value)
    except ValueError:
        raise InvalidArgument(
            "请选择阶段：名单录入、学校审核或主管部门审核", code="PHASE_INVALID", field=field
        ) from None


async def open_period(deps: Deps, session: AsyncSession, period: AidPeriod) -> Period:
    """The period, refused unless it is open."""
    p = await deps.periods.get(session, period)
    if p is None:
        raise FailedPrecondition(f"{period.label}尚未开启", code="PERIOD_NOT_OPEN", field="period")
    if not p.is_open:
        raise FailedPrecondition(f"{period.label}已关闭", code="PERIOD_CLOSED", field="period")
    return p


class WindowGate:
    """Which window governs an org for a phase, cached for one request (bulk writes)."""

    def __init__(self, deps: Deps, session: AsyncSession, now: datetime) -> None:
        self.deps = deps
        self.session = session
        self.now = now
        self._windows: dict[tuple[str, AidPeriod], list[Window]] = {}
        self._periods: dict[AidPeriod, Period | None] = {}

    async def period(self, period: AidPeriod) -> Period | None:
        """The period (cached)."""
        if period not in self._periods:
            self._periods[period] = await self.deps.periods.get(self.session, period)
        return self._periods[period]

    async def governing(
        self, project_code: str, period: AidPeriod, org_path: str, phase: Phase
    ) -> Window | None:
        """The window governing org_path (None when the period is not open)."""
        p = await self.period(period)
        if p is None or not p.is_open:
            return None
        key = (project_code, period)
        if key not in self._windows:
            self._windows[key] = await self.deps.windows.for_project(
                self.session, project_code, period
            )
        root = "/" + self.deps.settings.root_org_code + "/"
        return governing_window(
            self._windows[key],
            org_path=org_path,
            phase=phase,
            now=self.now,
            default=default_window(project_code, p, phase, root),
        )

    async def require_open(
        self, project_code: str, period: AidPeriod, org_path: str, phase: Phase
    ) -> Window:
        """The governing window, refused (WINDOW_CLOSED naming it) unless open now."""
        p = await self.period(period)
        if p is None:
            raise FailedPrecondition(
                f"{period.label}尚未开启", code="PERIOD_NOT_OPEN", field="period"
            )
        if not p.is_open:
            raise FailedPrecondition(f"{period.label}已关闭", code="PERIOD_CLOSED", field="period")
        w = await self.governing(project_code, period, org_path, phase)
        if w is None or not w.open_at(self.now):
            raise window_closed(phase, w, now=self.now)
        return w

    async def all_phases(
        self, project_code: str, period: AidPeriod, org_path: str
    ) -> list[Governing]:
        """The governing window of every phase, for display."""
        p = await self.period(period)
        key = (project_code, period)
        if key not in self._windows:
            self._windows[key] = await self.deps.windows.for_project(
                self.session, project_code, period
            )
        return govern(
            self._windows[key],
            org_path=org_path,
            now=self.now,
            period=p,
            project_code=project_code,
            root_path="/" + self.deps.settings.root_org_code + "/",
        )


class WindowService:
    """Set, close, extend, list and resolve windows."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def _project(self, session: AsyncSession, caller: CallerContext, code: str) -> Project:
        project = await self.deps.projects.get(session, code)
        if project is None or not visible(caller, project):
            raise out_of_scope("项目", field="project_code")
        return project

    async def _target(
        self, session: AsyncSession, caller: CallerContext, project: Project, org_code: str
    ) -> tuple[str, str]:
        """(org code, path) a window applies to: the project's whole scope, or a region in it."""
        if not org_code or org_code == project.owner_org_code:
            return project.owner_org_code, project.owner_org_path
        org = await self.deps.orgs.get(session, org_code)
        if org is None or not (is_system(caller) or caller.in_scope(org.org_path)):
            raise out_of_scope(field="org_code")
        if not project.applies_to(org.org_path):
            raise InvalidArgument(
                "该机构不在项目适用范围内", code="ORG_OUTSIDE_PROJECT", field="org_code"
            )
        return org.org_code, org.org_path

    async def set_window(
        self,
        caller: CallerContext,
        *,
        project_code: str,
        period: AidPeriod,
        phase: Phase,
        org_code: str,
        starts_at: datetime | None,
        ends_at: datetime | None,
    ) -> Window:
        """Create or replace the window of project × period × phase for its scope or a region."""
        require_roles(caller, "operator", "admin", what="设置填报时间")
        if starts_at is None or ends_at is None or ends_at <= starts_at:
            raise InvalidArgument(
                "请设置开始和结束时间，且结束时间晚于开始时间",
                code="WINDOW_RANGE_INVALID",
                field="ends_at",
            )
        now = self.deps.now()
        starts_at, ends_at = starts_at.astimezone(UTC), ends_at.astimezone(UTC)
        async with self.deps.db.write() as session:
            project = await self._project(session, caller, project_code)
            code, path = await self._target(session, caller, project, org_code)
            await open_period(self.deps, session, period)
            owner = is_system(caller) or caller.org_code == project.owner_org_code
            if not owner:
                # An authority inside the project's scope narrows the window for its region.
                if level_of(caller) is Level.SCHOOL or not path.startswith(caller.org_path):
                    raise PermissionDenied(
                        "只有项目设立单位或该地区的上级主管部门可以设置填报时间",
                        code="WINDOW_NOT_ALLOWED",
                        field="org_code",
                    )
                gate = WindowGate(self.deps, session, now)
                outer = await gate.governing(project_code, period, caller.org_path, phase)
                if outer is not None and (starts_at < outer.starts_at or ends_at > outer.ends_at):
                    raise InvalidArgument(
                        f"本地区的填报时间须在上级设定的时间内（{outer.text()}）",
                        code="WINDOW_OUTSIDE_PARENT",
                        field="ends_at",
                        details={"parent_window_id": outer.window_id},
                    )
            w = Window(
                window_id=new_id("W"),
                project_code=project.project_code,
                period=period,
                phase=phase,
                org_code=code,
                org_path=path,
                starts_at=starts_at,
                ends_at=ends_at,
                set_by=caller.account_id,
                set_at=now,
            )
            existing = await self.deps.windows.find_slot(session, w)
            if existing is not None:
                w.window_id = existing.window_id
            await self.deps.windows.replace(session, w)
            await self.deps.windows.log(
                session, w, action="set", actor=caller.account_id, actor_org=caller.org_code
            )
        return w

    async def close_window(self, caller: CallerContext, window_id: str) -> Window:
        """End a window now."""
        require_roles(caller, "operator", "admin", what="关闭填报时间")
        now = self.deps.now()
        async with self.deps.db.write() as session:
            w = await self.deps.windows.get(session, window_id)
            if w is None or not (is_system(caller) or caller.in_scope(w.org_path)):
                raise out_of_scope("填报时间", field="window_id")
            project = await self._project(session, caller, w.project_code)
            if not (
                is_system(caller)
                or caller.org_code in (project.owner_org_code, w.org_code)
                or (w.org_path.startswith(caller.org_path) and level_of(caller) is not Level.SCHOOL)
            ):
                raise PermissionDenied("无权关闭该填报时间", code="WINDOW_NOT_ALLOWED")
            if w.ends_at > now:
                w.ends_at = max(now, w.starts_at)
                w.set_by = caller.account_id
                w.set_at = now
                await self.deps.windows.replace(session, w)
                await self.deps.windows.log(
                    session, w, action="close", actor=caller.account_id, actor_org=caller.org_code
                )
        return w

    async def grant_extension(
        self,
        caller: CallerContext,
        *,
        project_code: str,
        period: AidPeriod,
        phase: Phase,
        org_code: str,
        ends_at: datetime | None,
        reason: str,
    ) -> Window:
        """Reopen a phase for a school or region until a date (延期/补录), from an authority above."""
        require_roles(caller, "operator", "admin", what="延期")
        reason = (reason or "").strip()
        if not reason or len(reason) > MAX_REASON:
            raise InvalidArgument(
                "请填写延期原因（不超过500字）", code="REASON_REQUIRED", field="reason"
            )
        now = self.deps.now()
        if ends_at is None or ends_at <= now:
            raise InvalidArgument(
                "延期截止时间须晚于当前时间", code="WINDOW_RANGE_INVALID", field="ends_at"
            )
        if not org_code:
            raise InvalidArgument("请选择延期的学校或地区", code="ORG_REQUIRED", field="org_code")
        async with self.deps.db.write() as session:
            project = await self._project(session, caller, project_code)
            code, path = await self._target(session, caller, project, org_code)
            await open_period(self.deps, session, period)
            if not is_system(caller) and (
                level_of(caller) is Level.SCHOOL or path == caller.org_path
            ):
                raise PermissionDenied(
                    "延期须由上级主管部门批准", code="EXTENSION_NOT_ALLOWED", field="org_code"
                )
            w = Window(
                window_id=new_id("W"),
                project_code=project.project_code,
                period=period,
                phase=phase,
                org_code=code,
                org_path=path,
                starts_at=now,
                ends_at=ends_at,
                extension=True,
                reason=reason,
                set_by=caller.account_id,
                set_at=now,
            )
            existing = await self.deps.windows.find_slot(session, w)
            if existing is not None:
                w.window_id = existing.window_id
            await self.deps.windows.replace(session, w)
            await self.deps.windows.log(
                session, w, action="extend", actor=caller.account_id, actor_org=caller.org_code
            )
            await self.deps.outbox.add(
                session,
                events.AUDIT_RECORDED,
                events.action_audited(
                    caller,
                    action="aid.GrantExtension",
                    object_type="aid_window",
                    object_id=w.window_id,
                    detail=f"{project.name} {period.label} {phase.label}延期至{w.text().split(' 至 ')[1]}（{code}）",
                    org_path=path,
                ),
            )
        return w

    async def list_windows(
        self,
        caller: CallerContext,
        *,
        project_code: str,
        period: AidPeriod | None,
        phase: Phase | None,
        org_code: str,
        include_extensions: bool,
        page_size: int,
        page_token: str,
    ) -> tuple[list[Window], int, str]:
        """Windows of a subtree and of its ancestors."""
        filters = (project_code, period, phase, org_code, include_extensions)
        page = page_of(page_size, page_token, filters)
        async with self.deps.db.read() as session:
            path = await scope_path(self.deps, session, caller, org_code, field="org_code")
            items, total = await self.deps.windows.search(
                session,
                project_code=project_code,
                period=period,
                phase=phase,
                org_path=path,
                include_extensions=include_extensions,
                offset=page.offset,
                limit=page.limit,
            )
        return items, total, next_token(page, total, filters)

    async def effective(
        self, caller: CallerContext, *, project_code: str, period: AidPeriod, org_code: str
    ) -> list[Governing]:
        """The window governing each phase for an org (default: the caller's), for one project or
        (project_code empty) every active project the org works on."""
        now = self.deps.now()
        async with self.deps.db.read() as session:
            path = await scope_path(self.deps, session, caller, org_code, field="org_code")
            if project_code:
                codes = [(await self._project(session, caller, project_code)).project_code]
            else:
                org = await self.deps.orgs.get(session, org_code or caller.org_code)
                projects, _ = await self.deps.projects.search(
                    session,
                    applicable_to=path,
                    stages=list(org.stages) if org and org.level is Level.SCHOOL else [],
                    school_year=period.school_year,
                    limit=MAX_PROJECTS,
                )
                codes = [p.project_code for p in projects]
            gate = WindowGate(self.deps, session, now)
            out: list[Governing] = []
            for code in codes:
                out.extend(await gate.all_phases(code, period, path))
            return out

"""Aid routes for periods (资助周期) and their time windows (填报时间窗口): open, close, set, extend."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from zizhu_contracts.aid.v1 import aid_pb2 as pb

from gateway.deps import Aid, CurrentUser
from gateway.policy import governs, guard
from gateway.routes.aid.base import (
    ORG_IN_BODY,
    ORG_IN_QUERY,
    PERIODS,
    WINDOW_IN_PATH,
    Id,
    RootOrg,
    TermQuery,
    YearQuery,
    _period,
    router,
)
from gateway.schemas.aid import (
    PeriodClose,
    PeriodCreate,
    PeriodPage,
    PeriodRead,
    PeriodStatusName,
    PhaseName,
    ProjectCode,
    SchoolYear,
    TermName,
    period_msg,
    period_read,
    phase_value,
)
from gateway.schemas.aid.windows import (
    EffectiveWindowRead,
    ExtensionCreate,
    WindowPage,
    WindowRead,
    WindowSet,
    effective_read,
    window_read,
)
from gateway.schemas.common import (
    PageSize,
    PageToken,
    page_request,
    to_timestamp,
)


@router.get(
    "/aid/periods",
    response_model=PeriodPage,
    summary="资助周期列表",
    **guard("period.read", PERIODS),
)
async def list_periods(
    caller: CurrentUser,
    aid: Aid,
    statuses: Annotated[list[PeriodStatusName] | None, Query()] = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> PeriodPage:
    """Known periods, newest first."""
    values = {"open": pb.PERIOD_STATUS_OPEN, "closed": pb.PERIOD_STATUS_CLOSED}
    resp = await aid.ListPeriods(
        pb.ListPeriodsRequest(
            statuses=[values[s] for s in statuses or ()],
            page=page_request(page_size, page_token),
        ),
        caller=caller,
    )
    return PeriodPage(
        items=[period_read(p) for p in resp.periods],
        next_page_token=resp.page.next_page_token,
        total=resp.page.total,
    )


@router.post(
    "/aid/periods",
    response_model=PeriodRead,
    status_code=201,
    summary="开启资助周期（国家）",
    **guard("period.manage", PERIODS),
)
async def open_period(caller: CurrentUser, aid: Aid, body: PeriodCreate) -> PeriodRead:
    """Open a period for entry; dates default to the term's and 第十七条's deadline."""
    resp = await aid.OpenPeriod(
        pb.OpenPeriodRequest(
            period=period_msg(body.school_year, body.term),
            starts_on=body.starts_on,
            ends_on=body.ends_on,
            deadline_on=body.deadline_on,
        ),
        caller=caller,
    )
    return period_read(resp.period)


@router.post(
    "/aid/periods:close",
    response_model=PeriodRead,
    summary="关闭资助周期（国家）",
    **guard("period.manage", PERIODS),
)
async def close_period(caller: CurrentUser, aid: Aid, body: PeriodClose) -> PeriodRead:
    """No more entry or audit in the period."""
    resp = await aid.ClosePeriod(
        pb.ClosePeriodRequest(period=period_msg(body.school_year, body.term)), caller=caller
    )
    return period_read(resp.period)


# --- windows -------------------------------------------------------------------------------------


@router.get(
    "/aid/windows",
    response_model=WindowPage,
    summary="填报时间列表（含上级设定与延期）",
    **guard("project.read", ORG_IN_QUERY),
)
async def list_windows(
    caller: CurrentUser,
    aid: Aid,
    project_code: Annotated[ProjectCode | None, Query()] = None,
    school_year: YearQuery = None,
    term: TermQuery = None,
    phase: Annotated[PhaseName | None, Query()] = None,
    org_code: RootOrg = None,
    include_extensions: bool = True,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> WindowPage:
    """Windows of a subtree and of its ancestors."""
    req = pb.ListWindowsRequest(
        project_code=project_code or "",
        phase=phase_value(phase) if phase else 0,  # type: ignore[arg-type]
        org_code=org_code or "",
        include_extensions=include_extensions,
        page=page_request(page_size, page_token),
    )
    period = _period(school_year, term)
    if period is not None:
        req.period.CopyFrom(period)
    resp = await aid.ListWindows(req, caller=caller)
    return WindowPage(
        items=[window_read(w) for w in resp.windows if governs(caller, w.org_path, "填报时间")],
        next_page_token=resp.page.next_page_token,
        total=resp.page.total,
    )


@router.get(
    "/aid/windows/effective",
    response_model=list[EffectiveWindowRead],
    summary="某机构当前适用的填报时间（录入、学校审核、主管部门审核）",
    **guard("project.read", ORG_IN_QUERY),
)
async def effective_windows(
    caller: CurrentUser,
    aid: Aid,
    org_code: RootOrg = None,
    project_code: Annotated[
        ProjectCode | None, Query(description="默认：该机构可录入的全部项目")
    ] = None,
    school_year: Annotated[SchoolYear | None, Query(description="默认：当前学期")] = None,
    term: Annotated[TermName | None, Query()] = None,
) -> list[EffectiveWindowRead]:
    """The window governing each phase for an org (default: the caller's)."""
    req = pb.GetEffectiveWindowsRequest(project_code=project_code or "", org_code=org_code or "")
    if school_year and term:
        req.period.CopyFrom(period_msg(school_year, term))
    resp = await aid.GetEffectiveWindows(req, caller=caller)
    return [effective_read(w) for w in resp.windows]


@router.put(
    "/aid/windows",
    response_model=WindowRead,
    summary="设置填报时间（项目设立单位；上级主管部门可为本地区收窄）",
    **guard("window.manage", ORG_IN_BODY),
)
async def set_window(caller: CurrentUser, aid: Aid, body: WindowSet) -> WindowRead:
    """Create or replace the window of project × period × phase for its scope or a region."""
    resp = await aid.SetWindow(
        pb.SetWindowRequest(
            project_code=body.project_code,
            period=period_msg(body.school_year, body.term),
            phase=phase_value(body.phase),  # type: ignore[arg-type]
            org_code=body.org_code or "",
            starts_at=to_timestamp(body.starts_at),
            ends_at=to_timestamp(body.ends_at),
        ),
        caller=caller,
    )
    return window_read(resp.window)


@router.post(
    "/aid/windows/{window_id}:close",
    response_model=WindowRead,
    summary="立即结束填报时间",
    **guard("window.manage", WINDOW_IN_PATH),
)
async def close_window(caller: CurrentUser, aid: Aid, window_id: Id) -> WindowRead:
    """End a window now."""
    resp = await aid.CloseWindow(pb.CloseWindowRequest(window_id=window_id), caller=caller)
    return window_read(resp.window)


@router.post(
    "/aid/windows/extensions",
    response_model=WindowRead,
    status_code=201,
    summary="为学校或地区延期（补录），需上级主管部门",
    **guard("window.manage", ORG_IN_BODY),
)
async def grant_extension(caller: CurrentUser, aid: Aid, body: ExtensionCreate) -> WindowRead:
    """Reopen a phase for a school or region until a date, with a reason (logged)."""
    resp = await aid.GrantExtension(
        pb.GrantExtensionRequest(
            project_code=body.project_code,
            period=period_msg(body.school_year, body.term),
            phase=phase_value(body.phase),  # type: ignore[arg-type]
            org_code=body.org_code,
            ends_at=to_timestamp(body.ends_at),
            reason=body.reason,
        ),
        caller=caller,
    )
    return window_read(resp.window)

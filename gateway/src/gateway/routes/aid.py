"""Aid (资助): projects, periods, time windows, records (entry, template import, submission, the
multi-level audit, revocation), exports and statistics. Thin: parse, policy, one aid call with the
caller and a deadline, map."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Path, Query, UploadFile
from fastapi.responses import Response
from zizhu_common.errors import NotFound, ResourceExhausted
from zizhu_contracts.aid.v1 import aid_pb2 as pb
from zizhu_contracts.common.v1 import common_pb2

from gateway.deps import Aid, CurrentUser
from gateway.policy import governs, guard
from gateway.schemas.aid import (
    AuditCreate,
    AuditRead,
    CategoryName,
    DimensionName,
    EffectiveWindowRead,
    ExtensionCreate,
    HistoryRead,
    ImportCommit,
    ImportRead,
    OwnerTypeName,
    PeriodClose,
    PeriodCreate,
    PeriodPage,
    PeriodRead,
    PeriodStatusName,
    PhaseName,
    ProjectCode,
    ProjectCreate,
    ProjectPage,
    ProjectRead,
    ProjectUpdate,
    RecordCreate,
    RecordDetailRead,
    RecordFilter,
    RecordIdentityRead,
    RecordIds,
    RecordPage,
    RecordStatusName,
    RecordUpdate,
    RevokeCreate,
    SchoolYear,
    StatsRead,
    SubmitRead,
    TermName,
    WindowPage,
    WindowRead,
    WindowSet,
    category_value,
    decision_value,
    effective_read,
    exclusions_msg,
    hardship_value,
    import_read,
    levels_msg,
    owner_type_value,
    period_msg,
    period_read,
    phase_value,
    project_read,
    record_read,
    result_read,
    stage_number,
    stats_read,
    status_value,
    tiers_msg,
    transition_read,
    window_read,
)
from gateway.schemas.common import (
    OrgCode,
    PageSize,
    PageToken,
    StageName,
    page_request,
    to_timestamp,
)

router = APIRouter(tags=["资助 aid"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FILE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {XLSX: {}}, "description": ".xlsx 文件"}
}
MAX_UPLOAD = 20 * 1024 * 1024
# Bulk decisions and large imports take longer than a plain call.
BULK_DEADLINE_S = 120.0

ORG_IN_QUERY = {"kind": "org", "in": "query", "name": "org_code"}
ORG_IN_BODY = {"kind": "org", "in": "body", "name": "org_code"}
PROJECT_IN_PATH = {"kind": "aid_project", "in": "path", "name": "project_code"}
RECORD_IN_PATH = {"kind": "aid_record", "in": "path", "name": "record_id"}
RECORDS_IN_BODY = {"kind": "aid_record", "in": "body", "name": "record_ids"}
WINDOW_IN_PATH = {"kind": "aid_window", "in": "path", "name": "window_id"}
IMPORT_IN_PATH = {"kind": "aid_import", "in": "path", "name": "import_id"}
# Writes at the caller's own org (a project it sets up, a record at its own school).
OWN = {"kind": "self"}
PERIODS = {"kind": "global", "reason": "资助周期为全国统一设置，不含辖区数据"}

Id = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z_-]+$")]
Code = Annotated[str, Path(min_length=2, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]+$")]
RootOrg = Annotated[OrgCode | None, Query(description="范围根机构；默认本机构")]
YearQuery = Annotated[SchoolYear | None, Query(description="学年 YYYY-YYYY")]
TermQuery = Annotated[TermName | None, Query(description="学期")]


def file_response(file: common_pb2.FileContent) -> Response:
    """A downloadable .xlsx file."""
    name = quote(file.file_name or "file.xlsx")
    return Response(
        content=file.content,
        media_type=file.content_type or XLSX,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"},
    )


def _period(school_year: str | None, term: str | None) -> common_pb2.AidPeriod | None:
    if not school_year and not term:
        return None
    return (
        period_msg(school_year or "", term or "autumn")
        if term
        else common_pb2.AidPeriod(school_year=school_year or "")
    )


def _list_request(
    *,
    org_code: str | None = None,
    project_code: str | None = None,
    school_year: str | None = None,
    term: str | None = None,
    statuses: list[str] | None = None,
    pending_org_code: str | None = None,
    stage: str | None = None,
    categories: list[str] | None = None,
    student_name: str | None = None,
    id_number: str | None = None,
    student_number: str | None = None,
    grade: str | None = None,
    class_name: str | None = None,
    page_size: int = 0,
    page_token: str = "",
) -> pb.ListRecordsRequest:
    req = pb.ListRecordsRequest(
        org_code=org_code or "",
        project_code=project_code or "",
        statuses=[status_value(s) for s in statuses or ()],  # type: ignore[misc]
        pending_org_code=pending_org_code or "",
        stage=stage_number(stage),  # type: ignore[arg-type]
        categories=[category_value(c) for c in categories or ()],  # type: ignore[misc]
        student_name=student_name or "",
        id_number=id_number or "",
        student_number=student_number or "",
        grade=grade or "",
        class_name=class_name or "",
        page=page_request(page_size, page_token),
    )
    period = _period(school_year, term)
    if period is not None:
        req.period.CopyFrom(period)
    return req


# --- projects ------------------------------------------------------------------------------------


@router.get(
    "/aid/projects",
    response_model=ProjectPage,
    summary="资助项目列表（本辖区设立的，或某校可录入的）",
    **guard("project.read", ORG_IN_QUERY),
)
async def list_projects(
    caller: CurrentUser,
    aid: Aid,
    org_code: Annotated[
        OrgCode | None, Query(description="设立单位所在辖区的根机构；默认本机构")
    ] = None,
    applicable_to: Annotated[
        OrgCode | None, Query(description="改为列出该学校可录入的项目")
    ] = None,
    owner_types: Annotated[list[OwnerTypeName] | None, Query()] = None,
    stage: Annotated[StageName | None, Query()] = None,
    categories: Annotated[list[CategoryName] | None, Query()] = None,
    school_year: YearQuery = None,
    include_disabled: bool = False,
    q: Annotated[str | None, Query(max_length=60, description="名称或代码包含")] = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> ProjectPage:
    """Projects owned in a subtree, or those a school may enter records for."""
    resp = await aid.ListProjects(
        pb.ListProjectsRequest(
            owner_org_code=org_code or "",
            applicable_to_org_code=applicable_to or "",
            owner_types=[owner_type_value(t) for t in owner_types or ()],  # type: ignore[misc]
            stage=stage_number(stage),  # type: ignore[arg-type]
            categories=[category_value(c) for c in categories or ()],  # type: ignore[misc]
            school_year=school_year or "",
            include_disabled=include_disabled,
            query=q or "",
            page=page_request(page_size, page_token),
        ),
        caller=caller,
    )
    return ProjectPage(
        items=[project_read(p) for p in resp.projects if governs(caller, p.owner_org_path, "项目")],
        next_page_token=resp.page.next_page_token,
        total=resp.page.total,
    )


@router.post(
    "/aid/projects",
    response_model=ProjectRead,
    status_code=201,
    summary="设立资助项目（国家/地方政府/学校/社会）",
    **guard("project.manage", OWN),
)
async def create_project(caller: CurrentUser, aid: Aid, body: ProjectCreate) -> ProjectRead:
    """A project owned by the caller's org; its level decides which kinds it may set up."""
    resp = await aid.CreateProject(
        pb.CreateProjectRequest(
            project_code=body.project_code,
            name=body.name,
            owner_type=owner_type_value(body.owner_type),  # type: ignore[arg-type]
            stage=stage_number(body.stage),  # type: ignore[arg-type]
            category=category_value(body.category),  # type: ignore[arg-type]
            tiers=tiers_msg(body.tiers),
            allow_custom_amount=body.allow_custom_amount,
            min_amount_fen=body.min_amount_fen,
            max_amount_fen=body.max_amount_fen,
            requires_recognition=body.requires_recognition,
            min_hardship_level=hardship_value(body.min_hardship_level)
            if body.min_hardship_level
            else 0,  # type: ignore[arg-type]
            exclusions=exclusions_msg(body.exclusions),
            audit_levels=levels_msg(list(body.audit_levels)),  # type: ignore[arg-type]
            annual=body.annual,
            start_school_year=body.start_school_year,
            end_school_year=body.end_school_year,
            policy_basis=body.policy_basis,
            description=body.description,
            quota_per_school=body.quota_per_school,
        ),
        caller=caller,
    )
    return project_read(resp.project)


@router.get(
    "/aid/projects/{project_code}",
    response_model=ProjectRead,
    summary="查看资助项目",
    **guard("project.read", PROJECT_IN_PATH),
)
async def get_project(caller: CurrentUser, aid: Aid, project_code: Code) -> ProjectRead:
    """One project visible to the caller (its owner's subtree and ancestors)."""
    resp = await aid.GetProject(pb.GetProjectRequest(project_code=project_code), caller=caller)
    if not governs(caller, resp.project.owner_org_path, "项目"):
        raise NotFound("资助项目不存在或不在本辖区内", code="NOT_FOUND", field="project_code")
    return project_read(resp.project)


@router.patch(
    "/aid/projects/{project_code}",
    response_model=ProjectRead,
    summary="修改资助项目（设立单位）",
    **guard("project.manage", PROJECT_IN_PATH),
)
async def update_project(
    caller: CurrentUser, aid: Aid, project_code: Code, body: ProjectUpdate
) -> ProjectRead:
    """Change a project; stage and category are frozen once it has records."""
    req = pb.UpdateProjectRequest(project_code=project_code, expected_version=body.expected_version)
    for name in ("name", "allow_custom_amount", "min_amount_fen", "max_amount_fen",
                 "requires_recognition", "annual", "start_school_year", "end_school_year",
                 "policy_basis", "description", "quota_per_school"):  # fmt: skip
        value = getattr(body, name)
        if value is not None:
            setattr(req, name, value)
    if body.stage is not None:
        req.stage = stage_number(body.stage)  # type: ignore[assignment]
    if body.category is not None:
        req.category = category_value(body.category)  # type: ignore[assignment]
    if body.min_hardship_level is not None:
        req.min_hardship_level = hardship_value(body.min_hardship_level)  # type: ignore[assignment]
    if body.status is not None:
        req.status = {"active": pb.PROJECT_STATUS_ACTIVE, "disabled": pb.PROJECT_STATUS_DISABLED}[
            body.status
        ]
    if body.tiers is not None:
        req.tiers.tiers.extend(tiers_msg(body.tiers))
        req.tiers.SetInParent()
    if body.exclusions is not None:
        req.exclusions.exclusions.extend(exclusions_msg(body.exclusions))
        req.exclusions.SetInParent()
    if body.audit_levels is not None:
        req.audit_levels.levels.extend(levels_msg(list(body.audit_levels)))  # type: ignore[arg-type]
        req.audit_levels.SetInParent()
    resp = await aid.UpdateProject(req, caller=caller)
    return project_read(resp.project)


@router.get(
    "/aid/projects/{project_code}/template",
    summary="下载资助名单导入模板",
    response_class=Response,
    responses=FILE_RESPONSE,
    **guard("project.read", PROJECT_IN_PATH),
)
async def import_template(caller: CurrentUser, aid: Aid, project_code: Code) -> Response:
    """The .xlsx template of a project (columns, tiers, filling instructions)."""
    resp = await aid.GetImportTemplate(
        pb.GetImportTemplateRequest(project_code=project_code), caller=caller
    )
    return file_response(resp.file)


# --- periods -------------------------------------------------------------------------------------


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


# --- records -------------------------------------------------------------------------------------


@router.get(
    "/aid/records",
    response_model=RecordPage,
    summary="资助名单查询（本辖区）",
    **guard("record.read", ORG_IN_QUERY),
)
async def list_records(
    caller: CurrentUser,
    aid: Aid,
    org_code: RootOrg = None,
    project_code: Annotated[ProjectCode | None, Query()] = None,
    school_year: YearQuery = None,
    term: TermQuery = None,
    statuses: Annotated[list[RecordStatusName] | None, Query()] = None,
    pending_org_code: Annotated[OrgCode | None, Query(description="待该单位审核的记录")] = None,
    stage: Annotated[StageName | None, Query()] = None,
    categories: Annotated[list[CategoryName] | None, Query()] = None,
    student_name: Annotated[str | None, Query(max_length=50, description="姓名前缀")] = None,
    id_number: Annotated[str | None, Query(max_length=40, description="证件号码（精确）")] = None,
    student_number: Annotated[str | None, Query(max_length=40)] = None,
    grade: Annotated[str | None, Query(max_length=40)] = None,
    class_name: Annotated[str | None, Query(max_length=60)] = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> RecordPage:
    """Records of schools in a subtree, with the windows that apply (shown in red)."""
    resp = await aid.ListRecords(
        _list_request(
            org_code=org_code, project_code=project_code, school_year=school_year, term=term,
            statuses=list(statuses or ()), pending_org_code=pending_org_code, stage=stage,
            categories=list(categories or ()), student_name=student_name, id_number=id_number,
            student_number=student_number, grade=grade, class_name=class_name,
            page_size=page_size, page_token=page_token,
        ),
        caller=caller,
    )  # fmt: skip
    return RecordPage(
        items=[record_read(r) for r in resp.records if caller.keeps(r.school_org_path, "资助记录")],
        next_page_token=resp.page.next_page_token,
        total=resp.page.total,
        windows=[effective_read(w) for w in resp.windows],
    )


@router.get(
    "/aid/records/export",
    summary="导出资助名单（.xlsx，审计留痕）",
    response_class=Response,
    responses=FILE_RESPONSE,
    **guard("record.export", ORG_IN_QUERY),
)
async def export_records(
    caller: CurrentUser,
    aid: Aid,
    org_code: RootOrg = None,
    project_code: Annotated[ProjectCode | None, Query()] = None,
    school_year: YearQuery = None,
    term: TermQuery = None,
    statuses: Annotated[list[RecordStatusName] | None, Query()] = None,
    stage: Annotated[StageName | None, Query()] = None,
    categories: Annotated[list[CategoryName] | None, Query()] = None,
    grade: Annotated[str | None, Query(max_length=40)] = None,
    class_name: Annotated[str | None, Query(max_length=60)] = None,
) -> Response:
    """The records of a filter as .xlsx (personal data masked)."""
    resp = await aid.ExportRecords(
        pb.ExportRecordsRequest(
            filter=_list_request(
                org_code=org_code, project_code=project_code, school_year=school_year, term=term,
                statuses=list(statuses or ()), stage=stage, categories=list(categories or ()),
                grade=grade, class_name=class_name,
            )
        ),
        caller=caller,
        deadline_s=BULK_DEADLINE_S,
    )  # fmt: skip
    return file_response(resp.file)


@router.post(
    "/aid/records",
    response_model=RecordDetailRead,
    status_code=201,
    summary="录入资助名单（学校）",
    **guard("record.enter", OWN),
)
async def enter_record(caller: CurrentUser, aid: Aid, body: RecordCreate) -> RecordDetailRead:
    """Validate (学籍, standard, recognition, duplicates, exclusions, quota) and create a draft."""
    resp = await aid.EnterRecord(
        pb.EnterRecordRequest(
            project_code=body.project_code,
            period=period_msg(body.school_year, body.term),
            student_id=body.student_id,
            id_type=getattr(common_pb2, "ID_TYPE_" + body.id_type.upper()),
            id_number=body.id_number,
            student_name=body.student_name,
            tier_code=body.tier_code,
            amount_fen=body.amount_fen,
            bank_name=body.bank_name,
            bank_card_number=body.bank_card_number,
            remark=body.remark,
        ),
        caller=caller,
    )
    return RecordDetailRead(record=record_read(resp.record), windows=[])


@router.get(
    "/aid/records/{record_id}",
    response_model=RecordDetailRead,
    summary="查看资助记录",
    **guard("record.read", RECORD_IN_PATH),
)
async def get_record(caller: CurrentUser, aid: Aid, record_id: Id) -> RecordDetailRead:
    """One record with the windows governing its school."""
    resp = await aid.GetRecord(pb.GetRecordRequest(record_id=record_id), caller=caller)
    caller.ensure_in_scope(resp.record.school_org_path, what="资助记录")
    return RecordDetailRead(
        record=record_read(resp.record), windows=[effective_read(w) for w in resp.windows]
    )


@router.get(
    "/aid/records/{record_id}/identity",
    response_model=RecordIdentityRead,
    summary="查看完整证件号码（审计留痕）",
    **guard("record.reveal", RECORD_IN_PATH),
)
async def reveal_record_identity(
    caller: CurrentUser, aid: Aid, record_id: Id
) -> RecordIdentityRead:
    """The full ID number of the record's student (school staff; an audited read)."""
    resp = await aid.GetRecord(
        pb.GetRecordRequest(record_id=record_id, reveal_id_number=True), caller=caller
    )
    caller.ensure_in_scope(resp.record.school_org_path, what="资助记录")
    return RecordIdentityRead(
        record_id=resp.record.record_id,
        student_id=resp.record.student_id,
        id_number=resp.record.id_number,
    )


@router.patch(
    "/aid/records/{record_id}",
    response_model=RecordDetailRead,
    summary="修改资助记录（待上报或已退回）",
    **guard("record.enter", RECORD_IN_PATH),
)
async def update_record(
    caller: CurrentUser, aid: Aid, record_id: Id, body: RecordUpdate
) -> RecordDetailRead:
    """Edit a draft or returned record inside the entry window."""
    req = pb.UpdateRecordRequest(record_id=record_id, expected_version=body.expected_version)
    for name in ("tier_code", "amount_fen", "bank_name", "bank_card_number", "remark"):
        value = getattr(body, name)
        if value is not None:
            setattr(req, name, value)
    resp = await aid.UpdateRecord(req, caller=caller)
    return RecordDetailRead(record=record_read(resp.record), windows=[])


@router.delete(
    "/aid/records/{record_id}",
    status_code=204,
    response_class=Response,
    summary="删除资助记录（待上报或已退回，保留历史）",
    **guard("record.enter", RECORD_IN_PATH),
)
async def delete_record(
    caller: CurrentUser,
    aid: Aid,
    record_id: Id,
    expected_version: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """Delete a draft or returned record inside the entry window."""
    await aid.DeleteRecord(
        pb.DeleteRecordRequest(record_id=record_id, expected_version=expected_version),
        caller=caller,
    )
    return Response(status_code=204)


@router.get(
    "/aid/records/{record_id}/history",
    response_model=HistoryRead,
    summary="资助记录的审核历史",
    **guard("record.read", RECORD_IN_PATH),
)
async def record_history(caller: CurrentUser, aid: Aid, record_id: Id) -> HistoryRead:
    """Every transition: account, level, time, decision, opinion."""
    resp = await aid.GetRecordHistory(
        pb.GetRecordHistoryRequest(record_id=record_id), caller=caller
    )
    return HistoryRead(
        record_id=record_id, transitions=[transition_read(t) for t in resp.transitions]
    )


@router.post(
    "/aid/records:submit",
    response_model=SubmitRead,
    summary="上报资助名单（送学校审核）",
    **guard("record.enter", RECORDS_IN_BODY),
)
async def submit_records(caller: CurrentUser, aid: Aid, body: RecordIds) -> SubmitRead:
    """Send draft or returned records to the school audit; all or none."""
    resp = await aid.SubmitRecords(
        pb.SubmitRecordsRequest(record_ids=body.record_ids),
        caller=caller,
        deadline_s=BULK_DEADLINE_S,
    )
    return SubmitRead(results=[result_read(r) for r in resp.results])


@router.post(
    "/aid/records:audit",
    response_model=AuditRead,
    summary="审核资助名单（学校审核、逐级复核；批量）",
    **guard("record.audit", RECORDS_IN_BODY),
)
async def audit_records(caller: CurrentUser, aid: Aid, body: AuditCreate) -> AuditRead:
    """Approve or return records awaiting the caller's org, with one opinion; all or none."""
    req = pb.AuditRecordsRequest(
        record_ids=body.record_ids,
        decision=decision_value(body.decision),  # type: ignore[arg-type]
        opinion=body.opinion,
        expected_count=body.expected_count,
    )
    if body.filter is not None:
        f: RecordFilter = body.filter
        req.filter.CopyFrom(
            _list_request(
                org_code=f.org_code, project_code=f.project_code, school_year=f.school_year,
                term=f.term, stage=f.stage, categories=list(f.categories),
                student_name=f.student_name, grade=f.grade, class_name=f.class_name,
            )
        )  # fmt: skip
    resp = await aid.AuditRecords(req, caller=caller, deadline_s=BULK_DEADLINE_S)
    return AuditRead(
        results=[result_read(r) for r in resp.results],
        forwarded_count=resp.forwarded_count,
        approved_count=resp.approved_count,
        returned_count=resp.returned_count,
    )


@router.post(
    "/aid/records/{record_id}:revoke",
    response_model=RecordDetailRead,
    summary="撤销审核通过的资助记录（主管部门）",
    **guard("record.revoke", RECORD_IN_PATH),
)
async def revoke_record(
    caller: CurrentUser, aid: Aid, record_id: Id, body: RevokeCreate
) -> RecordDetailRead:
    """Revoke an approved record with a reason (publishes aid.record.revoked)."""
    resp = await aid.RevokeRecord(
        pb.RevokeRecordRequest(
            record_id=record_id, reason=body.reason, expected_version=body.expected_version
        ),
        caller=caller,
    )
    return RecordDetailRead(record=record_read(resp.record), windows=[])


# --- template import -----------------------------------------------------------------------------


@router.post(
    "/aid/imports",
    response_model=ImportRead,
    summary="上传资助名单导入文件（校验/提交，全部成功或全部不导入）",
    **guard("record.enter", OWN),
)
async def upload_import(
    caller: CurrentUser,
    aid: Aid,
    file: Annotated[UploadFile, File(description="填写好的 .xlsx 模板")],
    project_code: Annotated[str, Form(min_length=2, max_length=40)],
    school_year: Annotated[str, Form(pattern=r"^\d{4}-\d{4}$")],
    term: Annotated[TermName, Form()],
    dry_run: Annotated[
        bool, Form(description="true：只校验并暂存；false：校验通过即全部导入")
    ] = True,
    submit: Annotated[bool, Form(description="导入后直接上报学校审核")] = False,
) -> ImportRead:
    """Validate every row (dry run: stage and report), or import all rows or none."""
    content = await file.read(MAX_UPLOAD + 1)
    if len(content) > MAX_UPLOAD:
        raise ResourceExhausted(
            "文件超过20MB上限，请拆分后上传", code="FILE_TOO_LARGE", field="file"
        )
    resp = await aid.ImportRecords(
        pb.ImportRecordsRequest(
            project_code=project_code,
            period=period_msg(school_year, term),
            file=common_pb2.FileContent(
                file_name=file.filename or "upload.xlsx",
                content_type=file.content_type or "",
                content=content,
            ),
            dry_run=dry_run,
            submit=submit,
        ),
        caller=caller,
        deadline_s=BULK_DEADLINE_S,
    )
    return import_read(resp.summary)


@router.post(
    "/aid/imports/{import_id}:commit",
    response_model=ImportRead,
    summary="提交已校验的导入批次",
    **guard("record.enter", IMPORT_IN_PATH),
)
async def commit_import(
    caller: CurrentUser, aid: Aid, import_id: Id, body: ImportCommit
) -> ImportRead:
    """Re-validate a staged import and write all its rows, or none."""
    resp = await aid.ImportRecords(
        pb.ImportRecordsRequest(
            project_code=body.project_code,
            period=period_msg(body.school_year, body.term),
            import_id=import_id,
            dry_run=False,
            submit=body.submit,
        ),
        caller=caller,
        deadline_s=BULK_DEADLINE_S,
    )
    return import_read(resp.summary)


@router.get(
    "/aid/imports/{import_id}/report",
    summary="下载导入错误报告（.xlsx）",
    response_class=Response,
    responses=FILE_RESPONSE,
    **guard("record.read", IMPORT_IN_PATH),
)
async def import_report(caller: CurrentUser, aid: Aid, import_id: Id) -> Response:
    """Row-level errors (行号、列、填写内容、原因) as .xlsx."""
    resp = await aid.GetImportReport(pb.GetImportReportRequest(import_id=import_id), caller=caller)
    return file_response(resp.file)


# --- statistics ----------------------------------------------------------------------------------


@router.get(
    "/aid/stats",
    response_model=StatsRead,
    summary="资助统计（按地区、项目、学段、类别；记录数与金额按状态）",
    **guard("aid.stats", ORG_IN_QUERY),
)
async def aid_stats(
    caller: CurrentUser,
    aid: Aid,
    school_year: Annotated[SchoolYear | None, Query(description="默认：当前学期")] = None,
    term: Annotated[TermName | None, Query()] = None,
    org_code: RootOrg = None,
    project_code: Annotated[ProjectCode | None, Query()] = None,
    categories: Annotated[list[CategoryName] | None, Query()] = None,
    stage: Annotated[StageName | None, Query()] = None,
    group_by: Annotated[list[DimensionName] | None, Query()] = None,
    expand_direct_schools: bool = False,
) -> StatsRead:
    """Total, directly-run schools and each child region (with group_by=org)."""
    dims = {"org": pb.STATS_DIMENSION_ORG, "project": pb.STATS_DIMENSION_PROJECT,
            "stage": pb.STATS_DIMENSION_STAGE, "category": pb.STATS_DIMENSION_CATEGORY}  # fmt: skip
    resp = await aid.Stats(
        pb.StatsRequest(
            period=period_msg(school_year, term) if school_year and term else None,
            org_code=org_code or "",
            project_code=project_code or "",
            categories=[category_value(c) for c in categories or ()],  # type: ignore[misc]
            stage=stage_number(stage),  # type: ignore[arg-type]
            group_by=[dims[d] for d in group_by or ()],
            expand_direct_schools=expand_direct_schools,
        ),
        caller=caller,
        deadline_s=BULK_DEADLINE_S,
    )
    stats = stats_read(resp)
    stats.rows = [
        r for r in stats.rows if not r.org.org_path or caller.keeps(r.org.org_path, "row")
    ]
    return stats

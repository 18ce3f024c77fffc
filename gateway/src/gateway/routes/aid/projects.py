"""Aid routes for projects (资助项目): list, create, read, update and the import template."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from fastapi.responses import Response
from zizhu_common.errors import NotFound
from zizhu_contracts.aid.v1 import aid_pb2 as pb

from gateway.deps import Aid, CurrentUser
from gateway.policy import governs, guard
from gateway.routes.aid.base import (
    FILE_RESPONSE,
    ORG_IN_QUERY,
    OWN,
    PROJECT_IN_PATH,
    Code,
    YearQuery,
    file_response,
    router,
)
from gateway.schemas.aid import (
    CategoryName,
    OwnerTypeName,
    category_value,
    hardship_value,
    owner_type_value,
)
from gateway.schemas.aid.projects import (
    ProjectCreate,
    ProjectPage,
    ProjectRead,
    ProjectUpdate,
    exclusions_msg,
    levels_msg,
    project_read,
    stage_number,
    tiers_msg,
)
from gateway.schemas.common import (
    OrgCode,
    PageSize,
    PageToken,
    StageName,
    page_request,
)


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

"""Organisations: read, browse a subtree, import from CSV/XLSX, retire."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from zizhu_common.errors import InvalidArgument
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.identity.v1 import identity_pb2

from gateway.deps import CurrentUser, Identity, current_user, runtime_of
from gateway.policy import guard
from gateway.responses import ModelResponse
from gateway.schemas.common import (
    Level,
    PageSize,
    PageToken,
    StageName,
    level_value,
    page_request,
    row_error,
    stage_value,
)
from gateway.schemas.orgs import (
    OrgDetailRead,
    OrgImportRead,
    OrgPage,
    OrgRetireCreate,
    org_detail_read,
    org_read,
)

router = APIRouter(tags=["机构 orgs"])

ORG_IN_PATH = {"kind": "org", "in": "path", "name": "org_code"}
OrgCodePath = Annotated[str, Path(min_length=2, max_length=32, pattern=r"^[0-9A-Za-z_-]+$")]
IMPORT_DEADLINE_S = 300


@router.get(
    "/orgs/{org_code}",
    response_model=OrgDetailRead,
    summary="查看机构",
    **guard("org.read", ORG_IN_PATH),
)
async def get_org(org_code: OrgCodePath, request: Request) -> ModelResponse:
    """One organisation of the caller's subtree, with its ancestors."""
    # The most frequent request, so FastAPI solves no dependency of its own: the caller is the
    # one the policy check (guard) has just admitted, the client comes from the runtime, and the
    # answer is serialised once (ModelResponse; the OpenAPI document keeps OrgDetailRead).
    caller = await current_user(request)
    identity = runtime_of(request).clients.identity
    resp = await identity.GetOrg(identity_pb2.GetOrgRequest(org_code=org_code), caller=caller)
    caller.ensure_in_scope(resp.org.org_path, what="机构")
    return ModelResponse(org_detail_read(resp))


@router.get(
    "/orgs/{org_code}/subtree",
    response_model=OrgPage,
    summary="浏览下辖机构",
    **guard("org.list", ORG_IN_PATH),
)
async def list_subtree(
    org_code: OrgCodePath,
    caller: CurrentUser,
    identity: Identity,
    max_depth: Annotated[int, Query(ge=0, le=10, description="1 = 仅直接下级；0 = 不限")] = 1,
    include_root: bool = False,
    levels: Annotated[list[Level] | None, Query()] = None,
    stages: Annotated[list[StageName] | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=64, description="名称包含或代码前缀")] = None,
    include_retired: bool = False,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> OrgPage:
    """An organisation's subtree (parents before children), filtered and paged."""
    resp = await identity.ListSubtree(
        identity_pb2.ListSubtreeRequest(
            org_code=org_code,
            max_depth=max_depth,
            include_root=include_root,
            levels=[level_value(v) for v in levels or ()],  # type: ignore[misc]
            stages=[stage_value(s) for s in stages or ()],  # type: ignore[misc]
            query=q or "",
            include_retired=include_retired,
            page=page_request(page_size, page_token),
        ),
        caller=caller,
    )
    items = [org_read(o) for o in resp.orgs if caller.keeps(o.org_path, "org")]
    return OrgPage(items=items, next_page_token=resp.page.next_page_token, total=resp.page.total)


@router.post(
    "/orgs/import",
    response_model=OrgImportRead,
    summary="导入机构（CSV/XLSX）",
    responses={413: {"description": "文件超过上限"}, 422: {"description": "文件或数据行有误"}},
    **guard("org.import", {"kind": "org", "in": "file", "column": "上级代码"}),
)
async def import_orgs(
    caller: CurrentUser,
    identity: Identity,
    file: Annotated[UploadFile, File(description="CSV 或 XLSX：机构代码、名称、级别、上级代码…")],
    dry_run: Annotated[bool, Form(description="只校验，不写入")] = False,
) -> OrgImportRead:
    """Create or update organisations under the caller's subtree from a file; all or nothing.
    Identity reads the file, checks it row by row and applies it inside the caller's subtree (a
    parent outside it is answered as one that does not exist). A dry run answers the report; a
    commit with any row at fault answers 422 with the rows."""
    content = await file.read()
    file_name = file.filename or ""
    resp = await identity.ImportOrgFile(
        identity_pb2.ImportOrgFileRequest(
            file=common_pb2.FileContent(
                file_name=file_name, content_type=file.content_type or "", content=content
            ),
            dry_run=dry_run,
        ),
        caller=caller,
        deadline_s=IMPORT_DEADLINE_S,
    )
    result = resp.result
    # A fault of the file as a whole (unreadable, empty, a column missing) is on row 0 or 1.
    fatal = next((e for e in result.errors if e.row <= 1), None)
    if fatal is not None:
        raise InvalidArgument(
            fatal.message,
            code=fatal.code,
            field="file",
            details={"column": fatal.column} if fatal.column else None,
        )
    errors = sorted(result.errors, key=lambda e: e.row)
    report = OrgImportRead(
        file_name=file_name,
        total_rows=result.total_rows,
        dry_run=dry_run,
        committed=not dry_run and not errors,
        created_count=result.created_count,
        updated_count=result.updated_count,
        moved_count=result.moved_count,
        unchanged_count=result.unchanged_count,
        errors=[row_error(e) for e in errors[:1000]],
    )
    if errors and not dry_run:
        raise InvalidArgument(
            f"有 {len({e.row for e in errors})} 行数据有误，未导入任何数据",
            code="IMPORT_ROWS_INVALID",
            field="file",
            details=report.model_dump(mode="json"),
        )
    return report


@router.post(
    "/orgs/{org_code}/retire",
    response_model=OrgDetailRead,
    summary="撤销机构",
    **guard("org.manage", ORG_IN_PATH),
)
async def retire_org(
    org_code: OrgCodePath, body: OrgRetireCreate, caller: CurrentUser, identity: Identity
) -> OrgDetailRead:
    """Retire an organisation below the caller (closed, or code voided); codes are never reused."""
    current = await identity.GetOrg(identity_pb2.GetOrgRequest(org_code=org_code), caller=caller)
    caller.ensure_in_scope(current.org.org_path, what="机构")
    resp = await identity.RetireOrg(
        identity_pb2.RetireOrgRequest(org_code=org_code, reason=body.reason),
        caller=caller,
    )
    return org_detail_read(identity_pb2.GetOrgResponse(org=resp.org, ancestors=current.ancestors))

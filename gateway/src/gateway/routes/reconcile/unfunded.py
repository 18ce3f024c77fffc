"""Reconcile routes for the unfunded list (未资助名单): list, export, read and reason reports."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from fastapi.responses import Response
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.reconcile.v1 import reconcile_pb2 as pb

from gateway.deps import CurrentUser, Reconcile
from gateway.policy import guard
from gateway.routes.reconcile.base import (
    ENTRIES_IN_BODY,
    ENTRY_IN_PATH,
    ORG_IN_QUERY,
    XLSX_RESPONSE,
    NumericId,
    RootOrg,
    SchoolYearQuery,
    TermQuery,
    router,
    xlsx_response,
)
from gateway.schemas.common import (
    PageSize,
    PageToken,
    StageName,
    enum_value,
    page_request,
    stage_value,
    ts,
)
from gateway.schemas.reconcile import (
    EntryStatusName,
    GroupName,
    ReasonStateName,
    SourceName,
    group_value,
    period_pb,
    source_value,
    status_value,
)
from gateway.schemas.reconcile.unfunded import (
    ReasonReportCreate,
    UnfundedBatchRead,
    UnfundedPage,
    UnfundedRead,
    unfunded_read,
)


def _list_request(
    org_code: str | None,
    school_year: str | None,
    term: str | None,
    status: list[str] | None,
    group: list[str] | None,
    source: str | None,
    reason_state: str | None,
    reason_code: list[str] | None,
    stage: str | None,
    student_name: str | None,
    id_number: str | None,
    page: common_pb2.PageRequest | None = None,
) -> pb.ListUnfundedRequest:
    return pb.ListUnfundedRequest(
        period=period_pb(school_year, term),
        org_code=org_code or "",
        statuses=[status_value(s) for s in status or ()],  # type: ignore[misc]
        groups=[group_value(g) for g in group or ()],  # type: ignore[misc]
        source=source_value(source) if source else 0,  # type: ignore[arg-type]
        reason_state=(
            enum_value(pb.ReasonState, reason_state, "REASON_STATE_") if reason_state else 0  # type: ignore[arg-type]
        ),
        reason_codes=reason_code or [],
        stage=stage_value(stage) if stage else 0,  # type: ignore[arg-type]
        student_name=student_name or "",
        id_number=id_number or "",
        page=page,
    )


@router.get(
    "/unfunded",
    response_model=UnfundedPage,
    summary="特殊群体学生未资助名单",
    **guard("unfunded.read", ORG_IN_QUERY),
)
async def list_unfunded(
    caller: CurrentUser,
    reconcile: Reconcile,
    org_code: RootOrg = None,
    school_year: SchoolYearQuery = None,
    term: TermQuery = None,
    status: Annotated[
        list[EntryStatusName] | None, Query(description="open / funded / not_eligible；默认 open")
    ] = None,
    group: Annotated[list[GroupName] | None, Query(description="属于任一群体")] = None,
    source: SourceName | None = None,
    reason_state: ReasonStateName | None = None,
    reason_code: Annotated[list[Annotated[str, Query(pattern=r"^\d{2}$")]] | None, Query()] = None,
    stage: StageName | None = None,
    student_name: Annotated[str | None, Query(max_length=50, description="姓名前缀")] = None,
    id_number: Annotated[
        str | None, Query(max_length=18, description="身份证件号码（精确）")
    ] = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> UnfundedPage:
    """Students of schools in the area with all 13 group flags and every level's reason."""
    resp = await reconcile.ListUnfunded(
        _list_request(
            org_code,
            school_year,
            term,
            status,
            group,
            source,
            reason_state,
            reason_code,
            stage,
            student_name,
            id_number,
            page_request(page_size, page_token),
        ),  # fmt: skip
        caller=caller,
    )
    return UnfundedPage(
        items=[
            unfunded_read(e) for e in resp.entries if caller.keeps(e.school_org_path, "未资助名单")
        ],
        next_page_token=resp.page.next_page_token,
        total=resp.page.total,
        as_of=ts(resp.as_of, resp.HasField("as_of")),
    )


@router.get(
    "/unfunded/export",
    response_class=Response,
    responses=XLSX_RESPONSE,
    summary="导出未资助名单（.xlsx）",
    **guard("unfunded.export", ORG_IN_QUERY),
)
async def export_unfunded(
    caller: CurrentUser,
    reconcile: Reconcile,
    org_code: RootOrg = None,
    school_year: SchoolYearQuery = None,
    term: TermQuery = None,
    group: Annotated[list[GroupName] | None, Query()] = None,
    source: SourceName | None = None,
    reason_state: ReasonStateName | None = None,
    stage: StageName | None = None,
) -> Response:
    """The list as filtered, every page (at most 200,000 rows)."""
    resp = await reconcile.ExportUnfunded(
        pb.ExportUnfundedRequest(
            filter=_list_request(
                org_code,
                school_year,
                term,
                None,
                group,
                source,
                reason_state,
                None,
                stage,
                None,
                None,
            )  # fmt: skip
        ),
        caller=caller,
        deadline_s=120,
    )
    return xlsx_response(resp.file)


@router.get(
    "/unfunded/{entry_id}",
    response_model=UnfundedRead,
    summary="查看未资助学生",
    **guard("unfunded.read", ENTRY_IN_PATH),
)
async def get_unfunded(
    entry_id: NumericId, caller: CurrentUser, reconcile: Reconcile
) -> UnfundedRead:
    """One entry with the school's reason and each authority level's reason."""
    resp = await reconcile.GetUnfunded(pb.GetUnfundedRequest(entry_id=entry_id), caller=caller)
    caller.ensure_in_scope(resp.entry.school_org_path, what="未资助名单记录")
    return unfunded_read(resp.entry)


@router.post(
    "/unfunded/reasons",
    response_model=UnfundedBatchRead,
    summary="学校填报未资助原因",
    **guard("unfunded.reason.school", ENTRIES_IN_BODY),
)
async def report_reason(
    body: ReasonReportCreate, caller: CurrentUser, reconcile: Reconcile
) -> UnfundedBatchRead:
    """One reason for open entries of the school's own students, until the period's deadline;
    “99 其他” needs a note. All or nothing."""
    resp = await reconcile.ReportReason(
        pb.ReportReasonRequest(
            entry_ids=body.entry_ids, reason_code=body.reason_code, note=body.note
        ),  # fmt: skip
        caller=caller,
    )
    return UnfundedBatchRead(items=[unfunded_read(e) for e in resp.entries])


@router.post(
    "/unfunded/authority-reasons",
    response_model=UnfundedBatchRead,
    summary="主管部门填报本级未资助原因（逐人）",
    **guard("unfunded.reason.authority", ENTRIES_IN_BODY),
)
async def report_authority_reason(
    body: ReasonReportCreate, caller: CurrentUser, reconcile: Reconcile
) -> UnfundedBatchRead:
    """The caller's level's reason on open entries of its area (its parent sees it)."""
    resp = await reconcile.ReportAuthorityReason(
        pb.ReportAuthorityReasonRequest(
            entry_ids=body.entry_ids, reason_code=body.reason_code, note=body.note
        ),  # fmt: skip
        caller=caller,
    )
    return UnfundedBatchRead(items=[unfunded_read(e) for e in resp.entries])

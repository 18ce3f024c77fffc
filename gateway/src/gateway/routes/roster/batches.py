"""Roster routes for special-group issue batches (中央下发): issuing, rows, commit, cancel, lists and
changes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from zizhu_common.errors import NotFound
from zizhu_contracts.roster.v1 import roster_pb2 as pb

from gateway.deps import CurrentUser, Roster
from gateway.policy import governs, guard
from gateway.routes.roster.base import (
    BATCH_IN_PATH,
    ORG_IN_QUERY,
    Id,
    RootOrg,
    _id_type,
    router,
)
from gateway.schemas.common import (
    PageSize,
    PageToken,
    page_request,
    row_error,
)
from gateway.schemas.roster import (
    ChangeKindName,
    GroupName,
    MatchName,
    VerificationName,
    group_value,
    read,
    value,
)
from gateway.schemas.roster.groups import (
    BatchCancelCreate,
    BatchCommitCreate,
    BatchCreate,
    BatchPage,
    BatchRead,
    IssueChangePage,
    IssueChangeRead,
    IssuedRowPage,
    IssuedRowRead,
    IssuedRowsCreate,
    IssuedRowsRead,
    batch_read,
)


@router.post(
    "/roster/special-groups/batches",
    response_model=BatchRead,
    status_code=201,
    summary="新建特殊群体名单下发批次",
    **guard("special_group.issue", {"kind": "org", "in": "body", "name": "issuing_org_code"}),
)
async def issue_batch(body: BatchCreate, caller: CurrentUser, roster: Roster) -> BatchRead:
    """Open a batch; rows follow in chunks, then commit."""
    resp = await roster.IssueSpecialGroupBatch(
        pb.IssueSpecialGroupBatchRequest(
            issuing_org_code=body.issuing_org_code or "",
            title=body.title,
            source_system=body.source_system,
            groups=[group_value(g) for g in body.groups],
            mode=value(pb.IssueMode, "ISSUE_MODE_", body.mode),
            as_of_date=body.as_of_date,
            school_year=body.school_year,
        ),
        caller=caller,
    )
    return batch_read(resp.batch)


@router.post(
    "/roster/special-groups/batches/{batch_id}/rows",
    response_model=IssuedRowsRead,
    summary="上传下发名单数据块",
    **guard("special_group.issue", BATCH_IN_PATH),
)
async def add_issued_rows(
    batch_id: Id, body: IssuedRowsCreate, caller: CurrentUser, roster: Roster
) -> IssuedRowsRead:
    """Store a chunk of at most 5000 rows; bad rows are kept as invalid and reported."""
    resp = await roster.AddIssuedRows(
        pb.AddIssuedRowsRequest(
            batch_id=batch_id,
            chunk_number=body.chunk_number,
            rows=[
                pb.IssuedRowInput(
                    id_type=_id_type(r.id_type),
                    id_number=r.id_number,
                    name=r.name,
                    group=group_value(r.group),
                    action=value(pb.IssuedRowAction, "ISSUED_ROW_ACTION_", r.action),
                    household_region_code=r.household_region_code,
                    valid_from=r.valid_from,
                    valid_to=r.valid_to,
                )
                for r in body.rows
            ],
        ),
        caller=caller,
        deadline_s=120,
    )
    return IssuedRowsRead(errors=[row_error(e) for e in resp.errors], row_count=resp.row_count)


@router.post(
    "/roster/special-groups/batches/{batch_id}/commit",
    response_model=BatchRead,
    summary="提交下发批次（开始比对）",
    **guard("special_group.issue", BATCH_IN_PATH),
)
async def commit_batch(
    batch_id: Id, body: BatchCommitCreate, caller: CurrentUser, roster: Roster
) -> BatchRead:
    """Close the batch and start matching; poll the batch until it is committed."""
    resp = await roster.CommitSpecialGroupBatch(
        pb.CommitSpecialGroupBatchRequest(batch_id=batch_id, chunk_count=body.chunk_count),
        caller=caller,
    )
    return batch_read(resp.batch)


@router.post(
    "/roster/special-groups/batches/{batch_id}/cancel",
    response_model=BatchRead,
    summary="取消下发批次",
    **guard("special_group.issue", BATCH_IN_PATH),
)
async def cancel_batch(
    batch_id: Id, body: BatchCancelCreate, caller: CurrentUser, roster: Roster
) -> BatchRead:
    """Abandon a batch still receiving rows (or whose matching failed)."""
    resp = await roster.CancelSpecialGroupBatch(
        pb.CancelSpecialGroupBatchRequest(batch_id=batch_id, reason=body.reason), caller=caller
    )
    return batch_read(resp.batch)


@router.get(
    "/roster/special-groups/batches",
    response_model=BatchPage,
    summary="下发批次列表",
    **guard("special_group.read", ORG_IN_QUERY),
)
async def list_batches(
    caller: CurrentUser,
    roster: Roster,
    org_code: RootOrg = None,
    group: Annotated[GroupName | None, Query()] = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> BatchPage:
    """Batches issued in the subtree, or by its ancestors (the lists a school must verify)."""
    resp = await roster.ListSpecialGroupBatches(
        pb.ListSpecialGroupBatchesRequest(
            org_code=org_code or "",
            group=group_value(group) if group else 0,
            page=page_request(page_size, page_token),
        ),
        caller=caller,
    )
    return BatchPage(
        items=[
            batch_read(b) for b in resp.batches if governs(caller, b.issuing_org_path, "下发批次")
        ],
        next_page_token=resp.page.next_page_token,
        total=resp.page.total,
    )


@router.get(
    "/roster/special-groups/batches/{batch_id}",
    response_model=BatchRead,
    summary="下发批次详情与比对结果",
    **guard("special_group.read", BATCH_IN_PATH),
)
async def get_batch(batch_id: Id, caller: CurrentUser, roster: Roster) -> BatchRead:
    """One batch with its matching counts."""
    resp = await roster.GetSpecialGroupBatch(
        pb.GetSpecialGroupBatchRequest(batch_id=batch_id), caller=caller
    )
    if not governs(caller, resp.batch.issuing_org_path, "下发批次"):
        raise NotFound("下发批次不存在或不在本辖区内", code="NOT_FOUND", field="batch_id")
    return batch_read(resp.batch)


@router.get(
    "/roster/special-groups/batches/{batch_id}/rows",
    response_model=IssuedRowPage,
    summary="下发名单明细（学校看本校学生，下发单位看全部含未匹配）",
    **guard("special_group.read", BATCH_IN_PATH),
)
async def list_issued_rows(
    batch_id: Id,
    caller: CurrentUser,
    roster: Roster,
    org_code: RootOrg = None,
    match_statuses: Annotated[list[MatchName] | None, Query()] = None,
    verification_statuses: Annotated[list[VerificationName] | None, Query()] = None,
    group: Annotated[GroupName | None, Query()] = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> IssuedRowPage:
    """Rows of a batch: the issuer sees every row, a school the rows matched to it."""
    resp = await roster.ListIssuedRows(
        pb.ListIssuedRowsRequest(
            batch_id=batch_id,
            org_code=org_code or "",
            match_statuses=[
                value(pb.MatchStatus, "MATCH_STATUS_", m) for m in match_statuses or ()
            ],
            verification_statuses=[
                value(pb.VerificationStatus, "VERIFICATION_STATUS_", v)
                for v in verification_statuses or ()
            ],
            group=group_value(group) if group else 0,
            page=page_request(page_size, page_token),
        ),
        caller=caller,
    )
    # Rows matched to a school must lie in the caller's subtree; unmatched rows (no school) only
    # show to the issuer's subtree.
    issuer_in_scope = None
    items = []
    for r in resp.rows:
        if not r.school_org_path:
            if issuer_in_scope is None:
                batch = await roster.GetSpecialGroupBatch(
                    pb.GetSpecialGroupBatchRequest(batch_id=batch_id), caller=caller
                )
                issuer_in_scope = caller.in_scope(batch.batch.issuing_org_path)
            if issuer_in_scope:
                items.append(read(IssuedRowRead, r))
        elif caller.keeps(r.school_org_path, "下发名单明细"):
            items.append(read(IssuedRowRead, r))
    return IssuedRowPage(
        items=items,
        next_page_token=resp.page.next_page_token,
        total=resp.page.total,
    )


@router.get(
    "/roster/special-groups/batches/{batch_id}/changes",
    response_model=IssueChangePage,
    summary="与上一批次比较：新增、退出、信息变更",
    **guard("special_group.read", BATCH_IN_PATH),
)
async def list_issue_changes(
    batch_id: Id,
    caller: CurrentUser,
    roster: Roster,
    kinds: Annotated[list[ChangeKindName] | None, Query()] = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> IssueChangePage:
    """Students added, removed and changed against the previous batch of the same issuer."""
    resp = await roster.ListIssueChanges(
        pb.ListIssueChangesRequest(
            batch_id=batch_id,
            kinds=[value(pb.IssueChangeKind, "ISSUE_CHANGE_KIND_", k) for k in kinds or ()],
            page=page_request(page_size, page_token),
        ),
        caller=caller,
    )
    return IssueChangePage(
        items=[read(IssueChangeRead, c) for c in resp.changes],
        previous_batch_id=resp.previous_batch_id,
        next_page_token=resp.page.next_page_token,
        total=resp.page.total,
    )

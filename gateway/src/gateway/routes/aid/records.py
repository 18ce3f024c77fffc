"""Aid routes for records (资助名单): list, export, entry, read, identity reveal, update, delete,
history, submission, audit and revocation."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from fastapi.responses import Response
from zizhu_contracts.aid.v1 import aid_pb2 as pb
from zizhu_contracts.common.v1 import common_pb2

from gateway.deps import Aid, CurrentUser
from gateway.policy import guard
from gateway.routes.aid.base import (
    BULK_DEADLINE_S,
    FILE_RESPONSE,
    ORG_IN_QUERY,
    OWN,
    RECORD_IN_PATH,
    RECORDS_IN_BODY,
    Id,
    RootOrg,
    TermQuery,
    YearQuery,
    _list_request,
    file_response,
    router,
)
from gateway.schemas.aid import (
    CategoryName,
    ProjectCode,
    RecordStatusName,
    decision_value,
    period_msg,
)
from gateway.schemas.aid.records import (
    AuditCreate,
    AuditRead,
    HistoryRead,
    RecordCreate,
    RecordDetailRead,
    RecordFilter,
    RecordIdentityRead,
    RecordIds,
    RecordPage,
    RecordUpdate,
    RevokeCreate,
    SubmitRead,
    record_read,
    result_read,
    transition_read,
)
from gateway.schemas.aid.windows import (
    effective_read,
)
from gateway.schemas.common import (
    OrgCode,
    PageSize,
    PageToken,
    StageName,
)


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

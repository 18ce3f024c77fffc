"""Roster: students from 学籍 (sync, file import, search, the audited identity read), the 13
special groups (central issue, school verification, self-collection, progress, default levels)
and hardship recognition. Thin: parse, policy, one roster call with the caller, map."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Path, Query, UploadFile
from fastapi.responses import Response
from zizhu_common.errors import NotFound, ResourceExhausted
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.roster.v1 import roster_pb2 as pb

from gateway.deps import CurrentUser, Roster
from gateway.policy import governs, guard
from gateway.schemas.common import (
    OrgCode,
    PageSize,
    PageToken,
    StageName,
    enum_value,
    page_request,
    row_error,
)
from gateway.schemas.roster import (
    BatchCancelCreate,
    BatchCommitCreate,
    BatchCreate,
    BatchPage,
    BatchRead,
    ChangeKindName,
    DefaultLevelRead,
    DefaultLevelsRead,
    DefaultLevelsUpdate,
    GroupName,
    ImportRead,
    IssueChangePage,
    IssueChangeRead,
    IssuedRowPage,
    IssuedRowRead,
    IssuedRowsCreate,
    IssuedRowsRead,
    LevelName,
    MatchName,
    MembershipBatchRead,
    MembershipEndCreate,
    MembershipPage,
    MembershipRead,
    MembershipStatusName,
    PendingRecognitionPage,
    PendingRecognitionRead,
    ProgressRead,
    RecognitionCreate,
    RecognitionHistoryRead,
    RecognitionPage,
    RecognitionRead,
    SelfCollectedCreate,
    SourceName,
    StatusName,
    StudentDetailRead,
    StudentIdentityRead,
    StudentPage,
    StudentRead,
    StudentSyncCreate,
    StudentSyncRead,
    TermName,
    VerificationName,
    VerifyCreate,
    batch_read,
    group_value,
    import_read,
    level_value,
    membership_read,
    progress_read,
    read,
    stage_number,
    status_value,
    term_value,
    value,
)

router = APIRouter(tags=["学生与特殊群体 roster"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FILE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {XLSX: {}, "text/csv": {}}, "description": "模板或报告文件"}
}
MAX_UPLOAD = 60 * 1024 * 1024
ORG_IN_QUERY = {"kind": "org", "in": "query", "name": "org_code"}
ORG_IN_BODY = {"kind": "org", "in": "body", "name": "org_code"}
STUDENT_IN_PATH = {"kind": "student", "in": "path", "name": "student_id"}
STUDENT_IN_BODY = {"kind": "student", "in": "body", "name": "student_id"}
BATCH_IN_PATH = {"kind": "special_group_batch", "in": "path", "name": "batch_id"}
MEMBERSHIP_IN_PATH = {"kind": "membership", "in": "path", "name": "membership_id"}
MEMBERSHIPS_IN_BODY = {"kind": "membership", "in": "body", "name": "membership_ids"}
# Imports and batches of rows are checked row by row against the caller's subtree by roster.
OWN_ROWS = {"kind": "self"}
STUDENT_IMPORT_IN_PATH = {"kind": "student_import", "in": "path", "name": "import_id"}
RECOGNITION_IMPORT_IN_PATH = {"kind": "recognition_import", "in": "path", "name": "import_id"}
STUDENT_IMPORT_IN_PATH = {"kind": "student_import", "in": "path", "name": "import_id"}
RECOGNITION_IMPORT_IN_PATH = {"kind": "recognition_import", "in": "path", "name": "import_id"}
TEMPLATE = {"kind": "global", "reason": "导入模板为全国统一格式，不含业务数据"}

Id = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z_-]+$")]
RootOrg = Annotated[OrgCode | None, Query(description="范围根机构；默认本机构")]
YearQuery = Annotated[str | None, Query(pattern=r"^\d{4}-\d{4}$", description="学年，默认本学年")]


def file_response(file: common_pb2.FileContent) -> Response:
    """A downloadable file."""
    name = quote(file.file_name or "file.xlsx")
    return Response(
        content=file.content,
        media_type=file.content_type or XLSX,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"},
    )


async def _upload(file: UploadFile) -> common_pb2.FileContent:
    content = await file.read(MAX_UPLOAD + 1)
    if len(content) > MAX_UPLOAD:
        raise ResourceExhausted("文件超过60MB上限", code="FILE_TOO_LARGE", field="file")
    return common_pb2.FileContent(
        file_name=file.filename or "upload", content_type=file.content_type or "", content=content
    )


def _id_type(name: str) -> int:
    return enum_value(common_pb2.IdType, name, "ID_TYPE_")


# --- students ------------------------------------------------------------------------------------


@router.get(
    "/roster/students",
    response_model=StudentPage,
    summary="在校学生信息查询",
    **guard("student.read", ORG_IN_QUERY),
)
async def search_students(
    caller: CurrentUser,
    roster: Roster,
    org_code: RootOrg = None,
    stage: Annotated[StageName | None, Query()] = None,
    grade: Annotated[str | None, Query(max_length=20)] = None,
    class_name: Annotated[str | None, Query(max_length=60)] = None,
    statuses: Annotated[list[StatusName] | None, Query()] = None,
    name: Annotated[str | None, Query(max_length=50, description="姓名前缀")] = None,
    id_number: Annotated[str | None, Query(max_length=40, description="证件号码（精确）")] = None,
    student_number: Annotated[str | None, Query(max_length=40)] = None,
    groups: Annotated[list[GroupName] | None, Query()] = None,
    hardship_levels: Annotated[list[LevelName] | None, Query()] = None,
    hardship_school_year: YearQuery = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> StudentPage:
    """Enrolments of schools in a subtree (a transferred student shows at both schools)."""
    resp = await roster.SearchStudents(
        pb.SearchStudentsRequest(
            org_code=org_code or "",
            stage=stage_number(stage),
            grade=grade or "",
            class_name=class_name or "",
            statuses=[status_value(s) for s in statuses or ()],
            name=name or "",
            id_number=id_number or "",
            student_number=student_number or "",
            groups=[group_value(g) for g in groups or ()],
            hardship_levels=[level_value(lv) for lv in hardship_levels or ()],
            hardship_school_year=hardship_school_year or "",
            page=page_request(page_size, page_token),
        ),
        caller=caller,
    )
    return StudentPage(
        items=[
            read(StudentRead, s)
            for s in resp.students
            if caller.keeps(s.enrollment.school_org_path, "学生")
        ],
        next_page_token=resp.page.next_page_token,
        total=resp.page.total,
    )


@router.get(
    "/roster/students/template",
    summary="下载学籍学生信息导入模板",
    response_class=Response,
    responses=FILE_RESPONSE,
    **guard("student.read", TEMPLATE),
)
async def student_template(
    caller: CurrentUser,
    roster: Roster,
    format: Annotated[str, Query(pattern=r"^(xlsx|csv)$")] = "xlsx",
) -> Response:
    """The .xlsx (or .csv) template with its column headers and an example row."""
    resp = await roster.GetStudentTemplate(
        pb.GetStudentTemplateRequest(format=format), caller=caller
    )
    return file_response(resp.file)


@router.post(
    "/roster/students/sync",
    response_model=StudentSyncRead,
    summary="学籍数据同步（批量，系统对接）",
    **guard("student.sync", OWN_ROWS),
)
async def sync_students(
    body: StudentSyncCreate, caller: CurrentUser, roster: Roster
) -> StudentSyncRead:
    """Upsert up to 2000 rows; any invalid row rejects the batch unless skip_invalid_rows."""
    rows = [
        pb.StudentSyncRow(
            id_type=_id_type(r.id_type),
            id_number=r.id_number,
            name=r.name,
            gender=value(pb.Gender, "GENDER_", r.gender),
            birth_date=r.birth_date,
            ethnicity=r.ethnicity,
            household_type=value(pb.HouseholdType, "HOUSEHOLD_TYPE_", r.household_type),
            household_region_code=r.household_region_code,
            phone=r.phone,
            school_org_code=r.school_org_code,
            stage=stage_number(r.stage),
            student_number=r.student_number,
            grade=r.grade,
            class_name=r.class_name,
            major_name=r.major_name,
            status=status_value(r.status),
            status_date=r.status_date,
            enrolled_on=r.enrolled_on,
            left_on=r.left_on,
            boarder=r.boarder,
        )
        for r in body.rows
    ]
    resp = await roster.SyncStudents(
        pb.SyncStudentsRequest(
            source_system=body.source_system,
            batch_id=body.batch_id,
            rows=rows,
            skip_invalid_rows=body.skip_invalid_rows,
        ),
        caller=caller,
        deadline_s=120,
    )
    return StudentSyncRead(
        created_count=resp.created_count,
        updated_count=resp.updated_count,
        unchanged_count=resp.unchanged_count,
        errors=[row_error(e) for e in resp.errors],
        student_ids=list(resp.student_ids),
    )


@router.post(
    "/roster/students/import",
    response_model=ImportRead,
    summary="学籍文件导入（CSV/XLSX）",
    responses={413: {"description": "文件超过上限"}},
    **guard("student.sync", OWN_ROWS),
)
async def import_students(
    caller: CurrentUser,
    roster: Roster,
    file: Annotated[UploadFile, File(description="学籍导出文件（模板列）：CSV 或 XLSX")],
    dry_run: Annotated[bool, Form(description="只校验并暂存，不写入")] = False,
    skip_invalid_rows: Annotated[bool, Form(description="只导入正确的行")] = False,
    source_system: Annotated[str, Form(max_length=40)] = "学籍系统",
) -> ImportRead:
    """Validate every row; a dry run stages the file for a later commit by import id. A file with
    any invalid row imports nothing unless skip_invalid_rows."""
    resp = await roster.ImportStudents(
        pb.ImportStudentsRequest(
            source_system=source_system,
            file=await _upload(file),
            dry_run=dry_run,
            skip_invalid_rows=skip_invalid_rows,
        ),
        caller=caller,
        deadline_s=600,
    )
    return import_read(resp.summary)


@router.post(
    "/roster/students/import/{import_id}/commit",
    response_model=ImportRead,
    summary="提交已校验的学籍导入",
    **guard("student.sync", STUDENT_IMPORT_IN_PATH),
)
async def commit_student_import(import_id: Id, caller: CurrentUser, roster: Roster) -> ImportRead:
    """Write a staged import (validated again against the roster of now)."""
    resp = await roster.ImportStudents(
        pb.ImportStudentsRequest(import_id=import_id), caller=caller, deadline_s=600
    )
    return import_read(resp.summary)


@router.get(
    "/roster/imports/{import_id}/report",
    summary="下载导入错误报告",
    response_class=Response,
    responses=FILE_RESPONSE,
    **guard("student.read", STUDENT_IMPORT_IN_PATH),
)
async def import_report(import_id: Id, caller: CurrentUser, roster: Roster) -> Response:
    """Row-level errors of a student or recognition import, as .xlsx."""
    resp = await roster.GetImportReport(
        pb.GetImportReportRequest(import_id=import_id), caller=caller
    )
    return file_response(resp.file)


@router.get(
    "/roster/students/{student_id}",
    response_model=StudentDetailRead,
    summary="学生详情（含学籍变动历史）",
    **guard("student.read", STUDENT_IN_PATH),
)
async def get_student(student_id: Id, caller: CurrentUser, roster: Roster) -> StudentDetailRead:
    """A student in the caller's subtree, its enrolments there and its history."""
    resp = await roster.GetStudent(
        pb.GetStudentRequest(student_id=student_id, include_history=True), caller=caller
    )
    caller.ensure_in_scope(resp.student.enrollment.school_org_path, what="学生")
    return read(StudentDetailRead, resp)  # type: ignore[no-any-return]


@router.get(
    "/roster/students/{student_id}/identity",
    response_model=StudentIdentityRead,
    summary="查看完整证件号码与联系电话（审计）",
    **guard("student.reveal", STUDENT_IN_PATH),
)
async def reveal_student(
    student_id: Id, caller: CurrentUser, roster: Roster
) -> StudentIdentityRead:
    """The full ID and phone numbers; the read is recorded in the audit log."""
    resp = await roster.GetStudent(
        pb.GetStudentRequest(student_id=student_id, reveal_id_number=True), caller=caller
    )
    s = resp.student
    caller.ensure_in_scope(s.enrollment.school_org_path, what="学生")
    return StudentIdentityRead(
        student_id=s.student_id,
        name=s.name,
        id_type=read(StudentRead, s).id_type,
        id_number=s.id_number,
        phone=s.phone,
    )


# --- special groups ------------------------------------------------------------------------------


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


@router.get(
    "/roster/special-groups/memberships",
    response_model=MembershipPage,
    summary="特殊群体学生名单",
    **guard("special_group.read", ORG_IN_QUERY),
)
async def list_memberships(
    caller: CurrentUser,
    roster: Roster,
    org_code: RootOrg = None,
    school_year: YearQuery = None,
    student_id: Annotated[str | None, Query(max_length=40)] = None,
    groups: Annotated[list[GroupName] | None, Query()] = None,
    source: Annotated[SourceName | None, Query()] = None,
    statuses: Annotated[list[MembershipStatusName] | None, Query()] = None,
    verification_statuses: Annotated[list[VerificationName] | None, Query()] = None,
    batch_id: Annotated[str | None, Query(max_length=40)] = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> MembershipPage:
    """Memberships of students at schools in a subtree."""
    resp = await roster.ListMemberships(
        pb.ListMembershipsRequest(
            org_code=org_code or "",
            school_year=school_year or "",
            student_id=student_id or "",
            groups=[group_value(g) for g in groups or ()],
            source=value(common_pb2.MembershipSource, "MEMBERSHIP_SOURCE_", source),
            statuses=[value(pb.MembershipStatus, "MEMBERSHIP_STATUS_", s) for s in statuses or ()],
            verification_statuses=[
                value(pb.VerificationStatus, "VERIFICATION_STATUS_", v)
                for v in verification_statuses or ()
            ],
            batch_id=batch_id or "",
            page=page_request(page_size, page_token),
        ),
        caller=caller,
    )
    return MembershipPage(
        items=[
            membership_read(m)
            for m in resp.memberships
            if caller.keeps(m.school_org_path, "特殊群体名单")
        ],
        next_page_token=resp.page.next_page_token,
        total=resp.page.total,
    )


@router.post(
    "/roster/special-groups/memberships/verify",
    response_model=MembershipBatchRead,
    summary="核实下发名单（确认或核实不符）",
    **guard("special_group.verify", MEMBERSHIPS_IN_BODY),
)
async def verify_memberships(
    body: VerifyCreate, caller: CurrentUser, roster: Roster
) -> MembershipBatchRead:
    """Confirm or dispute (with a note) issued memberships of the caller's students; all or
    nothing."""
    resp = await roster.VerifyMembership(
        pb.VerifyMembershipRequest(
            membership_ids=body.membership_ids,
            result=value(pb.VerificationStatus, "VERIFICATION_STATUS_", body.result),
            note=body.note,
        ),
        caller=caller,
    )
    return MembershipBatchRead(items=[membership_read(m) for m in resp.memberships])


@router.post(
    "/roster/special-groups/memberships",
    response_model=MembershipRead,
    status_code=201,
    summary="自采集特殊群体学生",
    **guard("special_group.verify", STUDENT_IN_BODY),
)
async def add_self_collected(
    body: SelfCollectedCreate, caller: CurrentUser, roster: Roster
) -> MembershipRead:
    """Add a member the issued lists missed, with a description of the evidence."""
    resp = await roster.AddSelfCollectedMembership(
        pb.AddSelfCollectedMembershipRequest(
            student_id=body.student_id,
            id_type=_id_type(body.id_type) if body.id_number else 0,
            id_number=body.id_number,
            group=group_value(body.group),
            valid_from=body.valid_from,
            valid_to=body.valid_to,
            evidence_note=body.evidence_note,
            school_year=body.school_year,
        ),
        caller=caller,
    )
    return membership_read(resp.membership)


@router.post(
    "/roster/special-groups/memberships/{membership_id}/end",
    response_model=MembershipRead,
    summary="特殊群体退出",
    **guard("special_group.verify", MEMBERSHIP_IN_PATH),
)
async def end_membership(
    membership_id: Id, body: MembershipEndCreate, caller: CurrentUser, roster: Roster
) -> MembershipRead:
    """End a membership; it stays as history."""
    resp = await roster.EndMembership(
        pb.EndMembershipRequest(
            membership_id=membership_id, ended_on=body.ended_on, reason=body.reason
        ),
        caller=caller,
    )
    return membership_read(resp.membership)


@router.get(
    "/roster/special-groups/progress",
    response_model=ProgressRead,
    summary="核实进度（按下辖地区/学校）",
    **guard("special_group.read", ORG_IN_QUERY),
)
async def verification_progress(
    caller: CurrentUser,
    roster: Roster,
    org_code: RootOrg = None,
    school_year: YearQuery = None,
    batch_id: Annotated[str | None, Query(max_length=40)] = None,
    group: Annotated[GroupName | None, Query()] = None,
) -> ProgressRead:
    """The total, then one row per child region or school of the subtree."""
    resp = await roster.GetVerificationProgress(
        pb.GetVerificationProgressRequest(
            org_code=org_code or "",
            school_year=school_year or "",
            batch_id=batch_id or "",
            group=group_value(group) if group else 0,
        ),
        caller=caller,
    )
    rows = [progress_read(r) for r in resp.rows]
    return ProgressRead(
        items=[r for r in rows if r.org is None or caller.keeps(r.org.org_path, "核实进度")]
    )


@router.get(
    "/roster/special-groups/default-levels",
    response_model=DefaultLevelsRead,
    summary="特殊群体默认认定档次",
    **guard("special_group.read", ORG_IN_QUERY),
)
async def get_default_levels(
    caller: CurrentUser, roster: Roster, org_code: RootOrg = None
) -> DefaultLevelsRead:
    """The table of the org's province, else the national one."""
    resp = await roster.GetGroupDefaultLevels(
        pb.GetGroupDefaultLevelsRequest(org_code=org_code or ""), caller=caller
    )
    return _defaults(resp)


@router.put(
    "/roster/special-groups/default-levels",
    response_model=DefaultLevelsRead,
    summary="设置特殊群体默认认定档次（省级/国家）",
    **guard("special_group.defaults", ORG_IN_BODY),
)
async def set_default_levels(
    body: DefaultLevelsUpdate, caller: CurrentUser, roster: Roster
) -> DefaultLevelsRead:
    """Replace the default-level table of a province (or the nation)."""
    resp = await roster.SetGroupDefaultLevels(
        pb.SetGroupDefaultLevelsRequest(
            org_code=body.org_code or "",
            defaults=[
                pb.GroupDefaultLevel(group=group_value(d.group), level=level_value(d.level))
                for d in body.defaults
            ],
        ),
        caller=caller,
    )
    return DefaultLevelsRead(
        source_org_code=resp.org_code,
        defaults=[_default(d) for d in resp.defaults],
    )


def _default(d: pb.GroupDefaultLevel) -> DefaultLevelRead:
    return DefaultLevelRead(
        group=read(DefaultLevelRead, d).group, level=read(DefaultLevelRead, d).level
    )


def _defaults(resp: pb.GetGroupDefaultLevelsResponse) -> DefaultLevelsRead:
    return DefaultLevelsRead(
        source_org_code=resp.source_org_code,
        defaults=[_default(d) for d in resp.defaults],
        updated_by=resp.updated_by,
        updated_at=resp.updated_at.ToDatetime() if resp.HasField("updated_at") else None,
    )


# --- recognition --------------------------------------------------------------------------------


@router.post(
    "/roster/recognitions",
    response_model=RecognitionRead,
    status_code=201,
    summary="录入家庭经济困难学生认定",
    **guard("recognition.record", STUDENT_IN_BODY),
)
async def recognize(
    body: RecognitionCreate, caller: CurrentUser, roster: Roster
) -> RecognitionRead:
    """Record a level for a school year from a term on; changing a level needs a reason."""
    resp = await roster.RecognizeHardship(
        pb.RecognizeHardshipRequest(
            student_id=body.student_id,
            school_year=body.school_year,
            term=term_value(body.term),
            level=level_value(body.level),
            basis_groups=[group_value(g) for g in body.basis_groups],
            basis_note=body.basis_note,
            recognized_on=body.recognized_on,
            change_reason=body.change_reason,
            expected_version=body.expected_version,
        ),
        caller=caller,
    )
    return read(RecognitionRead, resp.recognition)  # type: ignore[no-any-return]


@router.get(
    "/roster/recognitions",
    response_model=RecognitionPage,
    summary="困难认定查询",
    **guard("recognition.read", ORG_IN_QUERY),
)
async def list_recognitions(
    caller: CurrentUser,
    roster: Roster,
    org_code: RootOrg = None,
    school_year: YearQuery = None,
    term: Annotated[TermName | None, Query()] = None,
    levels: Annotated[list[LevelName] | None, Query()] = None,
    stage: Annotated[StageName | None, Query()] = None,
    grade: Annotated[str | None, Query(max_length=20)] = None,
    class_name: Annotated[str | None, Query(max_length=60)] = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> RecognitionPage:
    """Recognitions in force in a subtree (for a term, or now)."""
    resp = await roster.ListRecognitions(
        pb.ListRecognitionsRequest(
            org_code=org_code or "",
            school_year=school_year or "",
            term=term_value(term),
            levels=[level_value(lv) for lv in levels or ()],
            stage=stage_number(stage),
            grade=grade or "",
            class_name=class_name or "",
            page=page_request(page_size, page_token),
        ),
        caller=caller,
    )
    return RecognitionPage(
        items=[
            read(RecognitionRead, r)
            for r in resp.recognitions
            if caller.keeps(r.school_org_path, "困难认定")
        ],
        next_page_token=resp.page.next_page_token,
        total=resp.page.total,
    )


@router.get(
    "/roster/recognitions/pending",
    response_model=PendingRecognitionPage,
    summary="待认定的特殊群体学生",
    **guard("recognition.read", ORG_IN_QUERY),
)
async def pending_recognitions(
    caller: CurrentUser,
    roster: Roster,
    org_code: RootOrg = None,
    school_year: YearQuery = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> PendingRecognitionPage:
    """Special-group students with no recognition for the year, with the suggested level."""
    resp = await roster.ListPendingRecognitions(
        pb.ListPendingRecognitionsRequest(
            org_code=org_code or "",
            school_year=school_year or "",
            page=page_request(page_size, page_token),
        ),
        caller=caller,
    )
    return PendingRecognitionPage(
        items=[read(PendingRecognitionRead, p) for p in resp.students],
        next_page_token=resp.page.next_page_token,
        total=resp.page.total,
    )


@router.get(
    "/roster/recognitions/template",
    summary="下载困难认定导入模板",
    response_class=Response,
    responses=FILE_RESPONSE,
    **guard("recognition.read", TEMPLATE),
)
async def recognition_template(caller: CurrentUser, roster: Roster) -> Response:
    """The recognition import template (.xlsx)."""
    resp = await roster.GetRecognitionTemplate(pb.GetRecognitionTemplateRequest(), caller=caller)
    return file_response(resp.file)


@router.post(
    "/roster/recognitions/import",
    response_model=ImportRead,
    summary="困难认定模板导入",
    **guard("recognition.record", OWN_ROWS),
)
async def import_recognitions(
    caller: CurrentUser,
    roster: Roster,
    file: Annotated[UploadFile, File(description="认定结果模板（.xlsx）")],
    school_year: Annotated[str, Form(pattern=r"^\d{4}-\d{4}$")],
    term: Annotated[TermName, Form()],
    dry_run: Annotated[bool, Form()] = False,
) -> ImportRead:
    """Validate every row (dry run, staged) or import the file all-or-nothing."""
    resp = await roster.ImportRecognitions(
        pb.ImportRecognitionsRequest(
            school_year=school_year, term=term_value(term), file=await _upload(file),
            dry_run=dry_run,
        ),
        caller=caller,
        deadline_s=300,
    )  # fmt: skip
    return import_read(resp.summary)


@router.post(
    "/roster/recognitions/import/{import_id}/commit",
    response_model=ImportRead,
    summary="提交已校验的困难认定导入",
    **guard("recognition.record", RECOGNITION_IMPORT_IN_PATH),
)
async def commit_recognition_import(
    import_id: Id, caller: CurrentUser, roster: Roster
) -> ImportRead:
    """Write a staged recognition import."""
    resp = await roster.ImportRecognitions(
        pb.ImportRecognitionsRequest(import_id=import_id), caller=caller, deadline_s=300
    )
    return import_read(resp.summary)


@router.get(
    "/roster/students/{student_id}/recognition",
    response_model=RecognitionHistoryRead,
    summary="学生困难认定（当前与历史）",
    **guard("recognition.read", STUDENT_IN_PATH),
)
async def student_recognition(
    student_id: Id, caller: CurrentUser, roster: Roster, school_year: YearQuery = None
) -> RecognitionHistoryRead:
    """The level in force and the school year's history."""
    resp = await roster.GetRecognition(
        pb.GetRecognitionRequest(student_id=student_id, school_year=school_year or ""),
        caller=caller,
    )
    current = resp.current if resp.HasField("current") else None
    return RecognitionHistoryRead(
        current=read(RecognitionRead, current)
        if current is not None and caller.keeps(current.school_org_path, "困难认定")
        else None,
        history=[
            read(RecognitionRead, r)
            for r in resp.history
            if caller.keeps(r.school_org_path, "困难认定")
        ],
    )


__all__ = ["router", "PendingRecognitionRead"]

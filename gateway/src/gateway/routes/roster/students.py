"""Roster routes for students from 学籍: search, sync, file import, the detail and the audited
identity read."""

from __future__ import annotations

from typing import Annotated

from fastapi import File, Form, Query, UploadFile
from fastapi.responses import Response
from zizhu_contracts.roster.v1 import roster_pb2 as pb

from gateway.deps import CurrentUser, Roster
from gateway.policy import guard
from gateway.routes.roster.base import (
    FILE_RESPONSE,
    ORG_IN_QUERY,
    OWN_ROWS,
    STUDENT_IMPORT_IN_PATH,
    STUDENT_IN_PATH,
    TEMPLATE,
    Id,
    RootOrg,
    YearQuery,
    _id_type,
    _upload,
    file_response,
    router,
)
from gateway.schemas.common import (
    PageSize,
    PageToken,
    StageName,
    page_request,
    row_error,
)
from gateway.schemas.roster import (
    GroupName,
    ImportRead,
    LevelName,
    StatusName,
    group_value,
    import_read,
    level_value,
    read,
    stage_number,
    status_value,
    value,
)
from gateway.schemas.roster.students import (
    StudentDetailRead,
    StudentIdentityRead,
    StudentPage,
    StudentRead,
    StudentSyncCreate,
    StudentSyncRead,
)


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

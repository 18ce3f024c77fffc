"""Roster routes for hardship recognition (困难认定): recognising, lists, pending students and file
import."""

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
    RECOGNITION_IMPORT_IN_PATH,
    STUDENT_IN_BODY,
    STUDENT_IN_PATH,
    TEMPLATE,
    Id,
    RootOrg,
    YearQuery,
    _upload,
    file_response,
    router,
)
from gateway.schemas.common import (
    PageSize,
    PageToken,
    StageName,
    page_request,
)
from gateway.schemas.roster import (
    ImportRead,
    LevelName,
    TermName,
    group_value,
    import_read,
    level_value,
    read,
    stage_number,
    term_value,
)
from gateway.schemas.roster.recognitions import (
    PendingRecognitionPage,
    PendingRecognitionRead,
    RecognitionCreate,
    RecognitionHistoryRead,
    RecognitionPage,
)
from gateway.schemas.roster.students import (
    RecognitionRead,
)


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

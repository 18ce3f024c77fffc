"""Aid routes for the template import: upload (dry run), commit and the error report."""

from __future__ import annotations

from typing import Annotated

from fastapi import File, Form, UploadFile
from fastapi.responses import Response
from zizhu_common.errors import ResourceExhausted
from zizhu_contracts.aid.v1 import aid_pb2 as pb
from zizhu_contracts.common.v1 import common_pb2

from gateway.deps import Aid, CurrentUser
from gateway.policy import guard
from gateway.routes.aid.base import (
    BULK_DEADLINE_S,
    FILE_RESPONSE,
    IMPORT_IN_PATH,
    MAX_UPLOAD,
    OWN,
    Id,
    file_response,
    router,
)
from gateway.schemas.aid import (
    ImportCommit,
    ImportRead,
    TermName,
    import_read,
    period_msg,
)


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

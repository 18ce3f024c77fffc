"""Aid routes' shared pieces: file download, deadlines, policy targets, path/query types and the
record-list request."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from zizhu_contracts.aid.v1 import aid_pb2 as pb
from zizhu_contracts.common.v1 import common_pb2

from gateway.schemas.aid import (
    SchoolYear,
    TermName,
    category_value,
    period_msg,
    status_value,
)
from gateway.schemas.aid.projects import (
    stage_number,
)
from gateway.schemas.common import (
    OrgCode,
    page_request,
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

"""Roster routes' shared pieces: file download and upload helpers, policy targets and path/query
types."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, UploadFile
from fastapi.responses import Response
from zizhu_common.errors import ResourceExhausted
from zizhu_contracts.common.v1 import common_pb2

from gateway.schemas.common import (
    OrgCode,
    enum_value,
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

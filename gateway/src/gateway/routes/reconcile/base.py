"""Reconcile routes' shared pieces: the .xlsx response, policy targets and path/query types."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from zizhu_contracts.common.v1 import common_pb2

from gateway.schemas.common import (
    OrgCode,
)
from gateway.schemas.reconcile import (
    TermName,
)

router = APIRouter(prefix="/reconcile", tags=["未资助与数据核查 reconcile"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSX_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {XLSX: {}}, "description": ".xlsx 文件"}
}
ORG_IN_QUERY = {"kind": "org", "in": "query", "name": "org_code"}
ORG_IN_BODY = {"kind": "org", "in": "body", "name": "org_code"}
RUN_IN_PATH = {"kind": "comparison_run", "in": "path", "name": "run_id"}
ENTRY_IN_PATH = {"kind": "unfunded_entry", "in": "path", "name": "entry_id"}
ENTRIES_IN_BODY = {"kind": "unfunded_entry", "in": "body", "name": "entry_ids"}
FINDING_IN_PATH = {"kind": "finding", "in": "path", "name": "finding_id"}
FINDINGS_IN_BODY = {"kind": "finding", "in": "body", "name": "finding_ids"}
DICTIONARY = {"kind": "global", "reason": "未资助原因字典为全国统一数据，无机构范围"}

RootOrg = Annotated[OrgCode | None, Query(description="范围根机构；默认本机构")]
SchoolYearQuery = Annotated[
    str | None,
    Query(pattern=r"^\d{4}-\d{4}$", description="学年，如 2024-2025；默认最近进行中周期"),
]
TermQuery = Annotated[TermName | None, Query(description="学期 autumn / spring")]
NumericId = Annotated[str, Path(pattern=r"^\d{1,18}$")]
RunId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_-]+$")]


def xlsx_response(file: common_pb2.FileContent) -> Response:
    """A downloadable workbook."""
    name = quote(file.file_name or "export.xlsx")
    return Response(
        content=file.content,
        media_type=file.content_type or XLSX,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"},
    )

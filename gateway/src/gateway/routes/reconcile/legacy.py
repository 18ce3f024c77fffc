"""Reconcile routes for the reason dictionary and the retired 建档立卡 report history."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.reconcile.v1 import reconcile_pb2 as pb

from gateway.deps import CurrentUser, Reconcile
from gateway.policy import guard
from gateway.routes.reconcile.base import (
    DICTIONARY,
    ORG_IN_QUERY,
    RootOrg,
    TermQuery,
    router,
)
from gateway.schemas.common import (
    IdTypeName,
    PageSize,
    PageToken,
    enum_value,
    page_request,
    to_timestamp,
)
from gateway.schemas.reconcile import (
    period_pb,
    term_value,
)
from gateway.schemas.reconcile.legacy import (
    LegacyImportCreate,
    LegacyImportRead,
    LegacyReportPage,
    legacy_import_read,
    legacy_read,
)
from gateway.schemas.reconcile.unfunded import (
    ReasonDictionaryRead,
    ReasonDictionaryUpdate,
    dictionary_read,
)


@router.get(
    "/reason-codes",
    response_model=ReasonDictionaryRead,
    summary="未资助原因字典",
    **guard("reason_dictionary.read", DICTIONARY),
)
async def list_reason_codes(
    caller: CurrentUser, reconcile: Reconcile, include_disabled: bool = False
) -> ReasonDictionaryRead:
    """The reason codes in display order (停用的 with include_disabled)."""
    resp = await reconcile.ListReasonDictionary(
        pb.ListReasonDictionaryRequest(include_disabled=include_disabled), caller=caller
    )
    return dictionary_read(list(resp.reasons), resp.version)


@router.put(
    "/reason-codes",
    response_model=ReasonDictionaryRead,
    summary="维护未资助原因字典",
    **guard("reason_dictionary.manage", DICTIONARY),
)
async def update_reason_codes(
    body: ReasonDictionaryUpdate, caller: CurrentUser, reconcile: Reconcile
) -> ReasonDictionaryRead:
    """Add or replace codes (national level); codes are disabled, never deleted. With
    expected_version, a concurrent edit answers 409."""
    resp = await reconcile.UpdateReasonDictionary(
        pb.UpdateReasonDictionaryRequest(
            reasons=[
                pb.ReasonCode(
                    code=r.code,
                    label=r.label,
                    description=r.description,
                    requires_note=r.requires_note,
                    enabled=r.enabled,
                    sort_order=r.sort_order,
                )
                for r in body.reasons
            ],
            expected_version=body.expected_version,
        ),  # fmt: skip
        caller=caller,
    )
    return dictionary_read(list(resp.reasons), resp.version)


@router.get(
    "/legacy-reports",
    response_model=LegacyReportPage,
    summary="脱贫家庭学生（原建档立卡）未资助情况查看（历史）",
    **guard("legacy_report.read", ORG_IN_QUERY),
)
async def list_legacy_reports(
    caller: CurrentUser,
    reconcile: Reconcile,
    org_code: RootOrg = None,
    school_year: Annotated[str | None, Query(pattern=r"^\d{4}-\d{4}$")] = None,
    term: TermQuery = None,
    project_code: Annotated[str | None, Query(max_length=40)] = None,
    student_name: Annotated[str | None, Query(max_length=50)] = None,
    id_number: Annotated[str | None, Query(max_length=18)] = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> LegacyReportPage:
    """What schools reported in the retired report, read-only; autumn-2023 rows are marked as
    carried into the new module."""
    resp = await reconcile.ListLegacyReports(
        pb.ListLegacyReportsRequest(
            period=period_pb(school_year, term),
            org_code=org_code or "",
            project_code=project_code or "",
            student_name=student_name or "",
            id_number=id_number or "",
            page=page_request(page_size, page_token),
        ),  # fmt: skip
        caller=caller,
    )
    return LegacyReportPage(
        items=[legacy_read(r) for r in resp.reports if caller.keeps(r.school_org_path, "历史")],
        next_page_token=resp.page.next_page_token,
        total=resp.page.total,
    )


def _id_type(name: IdTypeName) -> int:
    return enum_value(common_pb2.IdType, name, "ID_TYPE_")


@router.post(
    "/legacy-reports/import",
    response_model=LegacyImportRead,
    summary="导入原建档立卡未资助原因历史",
    **guard("legacy_report.import", {"kind": "self"}),
)
async def import_legacy_reports(
    body: LegacyImportCreate, caller: CurrentUser, reconcile: Reconcile
) -> LegacyImportRead:
    """Load the old report's rows (schools of the caller's area only; all or nothing; dry run
    reports every refused row). Autumn-2023 reasons are carried into the unfunded module."""
    resp = await reconcile.ImportLegacyReports(
        pb.ImportLegacyReportsRequest(
            rows=[
                pb.LegacyReportRow(
                    period=common_pb2.AidPeriod(
                        school_year=r.period.school_year, term=term_value(r.period.term)
                    ),  # type: ignore[arg-type]
                    project_code=r.project_code,
                    project_name=r.project_name,
                    id_type=_id_type(r.id_type),  # type: ignore[arg-type]
                    id_number=r.id_number,
                    student_name=r.student_name,
                    school_org_code=r.school_org_code,
                    legacy_reason=r.legacy_reason,
                    reason_code=r.reason_code,
                    note=r.note,
                    reported_by=r.reported_by,
                    reported_at=to_timestamp(r.reported_at) if r.reported_at else None,
                )
                for r in body.rows
            ],
            dry_run=body.dry_run,
        ),  # fmt: skip
        caller=caller,
        deadline_s=60,
    )
    return legacy_import_read(resp)

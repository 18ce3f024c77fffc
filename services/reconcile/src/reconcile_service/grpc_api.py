"""gRPC servicer of the reconcile service: proto in, service call, proto out (no SQL, no rules)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from zizhu_common.rpc import current_caller
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.reconcile.v1 import reconcile_pb2 as pb
from zizhu_contracts.reconcile.v1 import reconcile_pb2_grpc

from reconcile_service import protomap as pm
from reconcile_service import xlsx
from reconcile_service.domain.reasons import ReasonCode
from reconcile_service.service import ReconcileServices
from reconcile_service.service.context import parse_period
from reconcile_service.service.findings import FindingQuery
from reconcile_service.service.history import LegacyInput
from reconcile_service.service.unfunded import ListQuery

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ReconcileService"].full_name


def _page(total: int, token: str) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_page_token=token, total=total)


def _list_query(r: pb.ListUnfundedRequest) -> ListQuery:
    return ListQuery(
        period=parse_period(r.period) if r.HasField("period") else None,
        org_code=r.org_code,
        statuses=tuple(int(s) for s in r.statuses),
        groups=tuple(int(g) for g in r.groups),
        source=int(r.source),
        reason_state=int(r.reason_state),
        reason_codes=tuple(c.strip() for c in r.reason_codes if c.strip()),
        stage=int(r.stage),
        student_name=r.student_name,
        id_number=r.id_number,
    )


class ReconcileServicer(reconcile_pb2_grpc.ReconcileServiceServicer):
    """Serves zizhu_contracts.reconcile.v1.ReconcileService."""

    def __init__(self, services: ReconcileServices) -> None:
        self.s = services

    # --- runs ---------------------------------------------------------------------------------

    async def RunComparison(self, request: pb.RunComparisonRequest, context: Any) -> Any:
        periods = [parse_period(p, field=f"periods[{i}]") for i, p in enumerate(request.periods)]
        run, already = await self.s.runs.request(
            current_caller(),
            periods=[p for p in periods if p is not None],
            org_code=request.org_code,
            include_verification=request.include_verification,
        )
        return pb.RunComparisonResponse(run=pm.run_pb(run), already_running=already)

    async def GetRun(self, request: pb.GetRunRequest, context: Any) -> Any:
        run = await self.s.runs.get(current_caller(), request.run_id)
        return pb.GetRunResponse(run=pm.run_pb(run))

    async def ListRuns(self, request: pb.ListRunsRequest, context: Any) -> Any:
        runs, token, total = await self.s.runs.list_runs(
            current_caller(),
            period=parse_period(request.period) if request.HasField("period") else None,
            statuses=[int(s) for s in request.statuses],
            trigger=int(request.trigger),
            page_size=request.page.page_size,
            page_token=request.page.page_token,
            org_code=request.org_code,
        )
        return pb.ListRunsResponse(runs=[pm.run_pb(r) for r in runs], page=_page(total, token))

    # --- unfunded list ----------------------------------------------------------------------

    async def ListUnfunded(self, request: pb.ListUnfundedRequest, context: Any) -> Any:
        page = await self.s.unfunded.list_entries(
            current_caller(),
            _list_query(request),
            page_size=request.page.page_size,
            page_token=request.page.page_token,
        )
        resp = pb.ListUnfundedResponse(
            entries=[pm.entry_pb(e, page.reasons, page.period) for e in page.entries],
            page=_page(page.total, page.next_token),
        )
        if page.as_of is not None:
            pm.ts(page.as_of.finished_at, resp.as_of)
        return resp

    async def GetUnfunded(self, request: pb.GetUnfundedRequest, context: Any) -> Any:
        entry, reasons, period = await self.s.unfunded.get(current_caller(), request.entry_id)
        return pb.GetUnfundedResponse(entry=pm.entry_pb(entry, reasons, period))

    async def ReportReason(self, request: pb.ReportReasonRequest, context: Any) -> Any:
        entries, reasons = await self.s.unfunded.report_reason(
            current_caller(),
            entry_ids=list(request.entry_ids),
            reason_code=request.reason_code,
            note=request.note,
        )
        return pb.ReportReasonResponse(entries=[pm.entry_pb(e, reasons, None) for e in entries])

    async def ReportAuthorityReason(
        self, request: pb.ReportAuthorityReasonRequest, context: Any
    ) -> Any:
        entries, reasons = await self.s.unfunded.report_authority_reason(
            current_caller(),
            entry_ids=list(request.entry_ids),
            reason_code=request.reason_code,
            note=request.note,
        )
        return pb.ReportAuthorityReasonResponse(
            entries=[pm.entry_pb(e, reasons, None) for e in entries]
        )

    async def ExportUnfunded(self, request: pb.ExportUnfundedRequest, context: Any) -> Any:
        page = await self.s.unfunded.export(current_caller(), _list_query(request.filter))
        label = page.period.period.label if page.period else ""
        content = xlsx.unfunded_list(
            page.entries, page.reasons, title=f"{label}特殊群体学生未资助名单"
        )
        return pb.ExportUnfundedResponse(
            file=common_pb2.FileContent(
                file_name=f"特殊群体学生未资助名单_{label}.xlsx",
                content_type=xlsx.XLSX,
                content=content,
            ),
            row_count=len(page.entries),
        )

    # --- statistics and statements ------------------------------------------------------------

    async def _stats(self, r: pb.UnfundedStatsRequest) -> Any:
        return await self.s.stats.view(
            current_caller(),
            period=parse_period(r.period) if r.HasField("period") else None,
            org_code=r.org_code,
            stage=int(r.stage),
            source=int(r.source),
            expand_direct_schools=r.expand_direct_schools,
        )

    async def UnfundedStats(self, request: pb.UnfundedStatsRequest, context: Any) -> Any:
        view = await self._stats(request)
        period = view.period.period if view.period else None
        resp = pb.UnfundedStatsResponse(
            rows=[pm.stats_row_pb(r, view.reasons, period) for r in view.rows],
            run_id=view.as_of.run_id if view.as_of else "",
        )
        if view.as_of is not None:
            pm.ts(view.as_of.finished_at, resp.as_of)
        return resp

    async def ExportUnfundedStats(
        self, request: pb.ExportUnfundedStatsRequest, context: Any
    ) -> Any:
        view = await self._stats(request.filter)
        label = view.period.period.label if view.period else ""
        title = f"{view.scope.name}{label}特殊群体学生未资助情况统计"
        return pb.ExportUnfundedStatsResponse(
            file=common_pb2.FileContent(
                file_name=f"特殊群体学生未资助情况统计_{label}.xlsx",
                content_type=xlsx.XLSX,
                content=xlsx.stats_view(view.rows, view.reasons, title=title),
            )
        )

    async def FileAuthorityStatement(
        self, request: pb.FileAuthorityStatementRequest, context: Any
    ) -> Any:
        period = parse_period(request.period) if request.HasField("period") else None
        statement, reasons = await self.s.stats.file_statement(
            current_caller(),
            period=period,
            group=int(request.group),
            reason_code=request.reason_code,
            note=request.note,
        )
        return pb.FileAuthorityStatementResponse(
            statement=pm.statement_pb(statement, reasons, period)
        )

    async def ListAuthorityStatements(
        self, request: pb.ListAuthorityStatementsRequest, context: Any
    ) -> Any:
        found, reasons, period = await self.s.stats.list_statements(
            current_caller(),
            period=parse_period(request.period) if request.HasField("period") else None,
            org_code=request.org_code,
            root_only=request.root_only,
        )
        p = period.period if period else None
        return pb.ListAuthorityStatementsResponse(
            statements=[pm.statement_pb(s, reasons, p) for s in found]
        )

    # --- dictionary and history -------------------------------------------------------------

    async def ListReasonDictionary(
        self, request: pb.ListReasonDictionaryRequest, context: Any
    ) -> Any:
        codes, version = await self.s.history.dictionary(
            current_caller(), include_disabled=request.include_disabled
        )
        return pb.ListReasonDictionaryResponse(
            reasons=[pm.reason_pb(c) for c in codes], version=version
        )

    async def UpdateReasonDictionary(
        self, request: pb.UpdateReasonDictionaryRequest, context: Any
    ) -> Any:
        codes, version = await self.s.history.update_dictionary(
            current_caller(),
            entries=[
                ReasonCode(
                    r.code.strip(),
                    r.label.strip(),
                    r.description.strip(),
                    r.requires_note,
                    r.enabled,
                    r.sort_order,
                )
                for r in request.reasons
            ],  # fmt: skip
            expected_version=request.expected_version,
        )
        return pb.UpdateReasonDictionaryResponse(
            reasons=[pm.reason_pb(c) for c in codes], version=version
        )

    async def ListLegacyReports(self, request: pb.ListLegacyReportsRequest, context: Any) -> Any:
        rows, token, total = await self.s.history.list_legacy(
            current_caller(),
            period=parse_period(request.period) if request.HasField("period") else None,
            org_code=request.org_code,
            project_code=request.project_code,
            student_name=request.student_name,
            id_number=request.id_number,
            page_size=request.page.page_size,
            page_token=request.page.page_token,
        )
        return pb.ListLegacyReportsResponse(
            reports=[pm.legacy_pb(r) for r in rows], page=_page(total, token)
        )

    async def ImportLegacyReports(
        self, request: pb.ImportLegacyReportsRequest, context: Any
    ) -> Any:
        rows = [
            LegacyInput(
                period=(r.period.school_year, int(r.period.term)),
                project_code=r.project_code,
                project_name=r.project_name,
                id_type=int(r.id_type),
                id_number=r.id_number,
                student_name=r.student_name,
                school_org_code=r.school_org_code,
                legacy_reason=r.legacy_reason,
                reason_code=r.reason_code,
                note=r.note,
                reported_by=r.reported_by,
                reported_at=r.reported_at.ToDatetime(tzinfo=UTC)
                if r.HasField("reported_at")
                else None,
            )
            for r in request.rows
        ]
        count, problems = await self.s.history.import_legacy(
            current_caller(), rows, dry_run=request.dry_run
        )
        return pb.ImportLegacyReportsResponse(
            imported_count=count,
            dry_run=request.dry_run,
            errors=[
                common_pb2.RowError(
                    row=p.row, column=p.column, value=p.value, code=p.code, message=p.message
                )
                for p in problems
            ],
        )

    # --- findings and quotas ------------------------------------------------------------------

    async def ListFindings(self, request: pb.ListFindingsRequest, context: Any) -> Any:
        rows, token, total, periods = await self.s.findings.list_findings(
            current_caller(),
            FindingQuery(
                period=parse_period(request.period) if request.HasField("period") else None,
                org_code=request.org_code,
                rule_codes=tuple(request.rule_codes),
                severity=int(request.severity),
                statuses=tuple(int(s) for s in request.statuses),
                project_code=request.project_code,
                student_id=request.student_id,
                record_id=request.record_id,
            ),
            page_size=request.page.page_size,
            page_token=request.page.page_token,
        )
        return pb.ListFindingsResponse(
            findings=[pm.finding_pb(f, periods.get(f.period_key)) for f in rows],
            page=_page(total, token),
        )

    async def GetFinding(self, request: pb.GetFindingRequest, context: Any) -> Any:
        row, history, period = await self.s.findings.get(current_caller(), request.finding_id)
        return pb.GetFindingResponse(
            finding=pm.finding_pb(row, period), actions=[pm.action_pb(a) for a in history]
        )

    async def ResolveFinding(self, request: pb.ResolveFindingRequest, context: Any) -> Any:
        rows, periods = await self.s.findings.resolve(
            current_caller(),
            finding_ids=list(request.finding_ids),
            resolution=int(request.resolution),
            note=request.note,
        )
        return pb.ResolveFindingResponse(
            findings=[pm.finding_pb(f, periods.get(f.period_key)) for f in rows]
        )

    async def FindingStats(self, request: pb.FindingStatsRequest, context: Any) -> Any:
        rows = await self.s.findings.stats(
            current_caller(),
            period=parse_period(request.period) if request.HasField("period") else None,
            org_code=request.org_code,
            expand_direct_schools=request.expand_direct_schools,
        )
        return pb.FindingStatsResponse(rows=[pm.finding_stats_pb(r) for r in rows])

    async def SetQuotas(self, request: pb.SetQuotasRequest, context: Any) -> Any:
        rows = await self.s.findings.set_quotas(
            current_caller(),
            [(q.project_code, q.school_year, q.org_code, q.places) for q in request.quotas],
        )
        return pb.SetQuotasResponse(quotas=[pm.quota_pb(q) for q in rows])

    async def ListQuotas(self, request: pb.ListQuotasRequest, context: Any) -> Any:
        rows = await self.s.findings.list_quotas(
            current_caller(),
            school_year=request.school_year,
            org_code=request.org_code,
            project_code=request.project_code,
        )
        return pb.ListQuotasResponse(quotas=[pm.quota_pb(q) for q in rows])

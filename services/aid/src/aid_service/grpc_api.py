"""gRPC servicer of the aid service: proto in, service call, proto out (no SQL, no rules)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from zizhu_common.errors import InvalidArgument
from zizhu_common.rpc import current_caller
from zizhu_contracts.aid.v1 import aid_pb2, aid_pb2_grpc
from zizhu_contracts.common.v1 import common_pb2

from aid_service.domain.enums import Phase
from aid_service.domain.enums import RecordStatus as S
from aid_service.domain.periods import AidPeriod, current_period
from aid_service.protomap import (
    exclusions_from,
    governing_msgs,
    levels_from,
    period_info_msg,
    project_msg,
    record_msg,
    tiers_from,
    transition_msg,
    window_msg,
)
from aid_service.service import AidServices
from aid_service.service.imports import ImportResult, Upload
from aid_service.service.projects import ProjectChanges, ProjectCreate
from aid_service.service.records import ListFilter, RecordInput
from aid_service.service.windows import parse_phase
from aid_service.xlsx import XLSX_TYPE

SERVICE_NAME = aid_pb2.DESCRIPTOR.services_by_name["AidService"].full_name


def _period(msg: common_pb2.AidPeriod, field: str = "period") -> AidPeriod:
    return AidPeriod.parse(msg.school_year, msg.term, field=field)


def _maybe_period(msg: Any, field: str = "period") -> AidPeriod | None:
    if not msg.HasField(field):
        return None
    p = getattr(msg, field)
    if not p.school_year and not p.term:
        return None
    return _period(p, field)


def _ts(msg: Any, field: str) -> datetime | None:
    return getattr(msg, field).ToDatetime(tzinfo=UTC) if msg.HasField(field) else None


def _filter(f: aid_pb2.ListRecordsRequest) -> ListFilter:
    return ListFilter(
        org_code=f.org_code,
        project_code=f.project_code,
        period=_maybe_period(f),
        statuses=tuple(f.statuses),
        pending_org_code=f.pending_org_code,
        stage=f.stage,
        categories=tuple(f.categories),
        student_name=f.student_name,
        id_number=f.id_number,
        student_number=f.student_number,
        grade=f.grade,
        class_name=f.class_name,
        entered_by=f.entered_by,
    )


def _summary(r: ImportResult) -> common_pb2.ImportSummary:
    msg = common_pb2.ImportSummary(
        import_id=r.import_id,
        file_name=r.file_name,
        total_rows=r.total_rows,
        valid_rows=r.valid_rows,
        error_rows=r.error_rows,
        dry_run=r.dry_run,
        committed=r.committed,
        created_count=r.created_count,
        errors=[common_pb2.RowError(**e) for e in r.errors],
        errors_truncated=r.errors_truncated,
    )
    if r.expires_at is not None:
        msg.expires_at.FromDatetime(r.expires_at)
    return msg


def _page(total: int, token: str) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_page_token=token, total=total)


class AidServicer(aid_pb2_grpc.AidServiceServicer):
    """Serves zizhu_contracts.aid.v1.AidService."""

    def __init__(self, services: AidServices) -> None:
        self.s = services

    def _now(self) -> Any:
        return self.s.deps.now()

    # --- projects ---------------------------------------------------------------------------

    async def CreateProject(
        self, request: aid_pb2.CreateProjectRequest, context: Any
    ) -> aid_pb2.CreateProjectResponse:
        r = request
        project = await self.s.projects.create(
            current_caller(),
            ProjectCreate(
                project_code=r.project_code, name=r.name, owner_type=r.owner_type, stage=r.stage,
                category=r.category, owner_org_code=r.owner_org_code, tiers=tiers_from(r.tiers),
                allow_custom_amount=r.allow_custom_amount, min_amount_fen=r.min_amount_fen,
                max_amount_fen=r.max_amount_fen, requires_recognition=r.requires_recognition,
                min_hardship_level=r.min_hardship_level, exclusions=exclusions_from(r.exclusions),
                audit_levels=tuple(levels_from(r.audit_levels)), annual=r.annual,
                start_school_year=r.start_school_year, end_school_year=r.end_school_year,
                policy_basis=r.policy_basis, description=r.description,
                quota_per_school=r.quota_per_school,
            ),
        )  # fmt: skip
        return aid_pb2.CreateProjectResponse(project=project_msg(project))

    async def UpdateProject(
        self, request: aid_pb2.UpdateProjectRequest, context: Any
    ) -> aid_pb2.UpdateProjectResponse:
        r = request
        values: dict[str, Any] = {}
        for name in ("name", "stage", "category", "allow_custom_amount", "min_amount_fen",
                     "max_amount_fen", "requires_recognition", "min_hardship_level", "annual",
                     "start_school_year", "end_school_year", "status", "policy_basis",
                     "description", "quota_per_school"):  # fmt: skip
            if r.HasField(name):
                values[name] = getattr(r, name)
        if r.HasField("tiers"):
            values["tiers"] = tiers_from(r.tiers.tiers)
        if r.HasField("exclusions"):
            values["exclusions"] = exclusions_from(r.exclusions.exclusions)
        if r.HasField("audit_levels"):
            values["audit_levels"] = tuple(levels_from(r.audit_levels.levels))
        project = await self.s.projects.update(
            current_caller(), r.project_code, ProjectChanges(values, r.expected_version)
        )
        return aid_pb2.UpdateProjectResponse(project=project_msg(project))

    async def GetProject(
        self, request: aid_pb2.GetProjectRequest, context: Any
    ) -> aid_pb2.GetProjectResponse:
        project = await self.s.projects.get(current_caller(), request.project_code)
        return aid_pb2.GetProjectResponse(project=project_msg(project))

    async def ListProjects(
        self, request: aid_pb2.ListProjectsRequest, context: Any
    ) -> aid_pb2.ListProjectsResponse:
        r = request
        projects, total, token = await self.s.projects.list_projects(
            current_caller(),
            owner_org_code=r.owner_org_code, applicable_to_org_code=r.applicable_to_org_code,
            owner_types=list(r.owner_types), stage=r.stage, categories=list(r.categories),
            school_year=r.school_year, include_disabled=r.include_disabled, query=r.query,
            page_size=r.page.page_size, page_token=r.page.page_token,
        )  # fmt: skip
        return aid_pb2.ListProjectsResponse(
            projects=[project_msg(p) for p in projects], page=_page(total, token)
        )

    # --- periods ------------------------------------------------------------------------------

    async def OpenPeriod(
        self, request: aid_pb2.OpenPeriodRequest, context: Any
    ) -> aid_pb2.OpenPeriodResponse:
        p = await self.s.projects.open_period(
            current_caller(), _period(request.period), starts_on=request.starts_on,
            ends_on=request.ends_on, deadline_on=request.deadline_on,
        )  # fmt: skip
        return aid_pb2.OpenPeriodResponse(period=period_info_msg(p))

    async def ClosePeriod(
        self, request: aid_pb2.ClosePeriodRequest, context: Any
    ) -> aid_pb2.ClosePeriodResponse:
        p = await self.s.projects.close_period(current_caller(), _period(request.period))
        return aid_pb2.ClosePeriodResponse(period=period_info_msg(p))

    async def ListPeriods(
        self, request: aid_pb2.ListPeriodsRequest, context: Any
    ) -> aid_pb2.ListPeriodsResponse:
        periods, total, token = await self.s.projects.list_periods(
            current_caller(),
            list(request.statuses),
            request.page.page_size,
            request.page.page_token,
        )
        return aid_pb2.ListPeriodsResponse(
            periods=[period_info_msg(p) for p in periods], page=_page(total, token)
        )

    # --- windows ------------------------------------------------------------------------------

    async def SetWindow(
        self, request: aid_pb2.SetWindowRequest, context: Any
    ) -> aid_pb2.SetWindowResponse:
        r = request
        w = await self.s.windows.set_window(
            current_caller(), project_code=r.project_code, period=_period(r.period),
            phase=parse_phase(r.phase), org_code=r.org_code, starts_at=_ts(r, "starts_at"),
            ends_at=_ts(r, "ends_at"),
        )  # fmt: skip
        return aid_pb2.SetWindowResponse(window=window_msg(w, now=self._now()))

    async def CloseWindow(
        self, request: aid_pb2.CloseWindowRequest, context: Any
    ) -> aid_pb2.CloseWindowResponse:
        w = await self.s.windows.close_window(current_caller(), request.window_id)
        return aid_pb2.CloseWindowResponse(window=window_msg(w, now=self._now()))

    async def ListWindows(
        self, request: aid_pb2.ListWindowsRequest, context: Any
    ) -> aid_pb2.ListWindowsResponse:
        r = request
        items, total, token = await self.s.windows.list_windows(
            current_caller(), project_code=r.project_code, period=_maybe_period(r),
            phase=Phase(r.phase) if r.phase else None, org_code=r.org_code,
            include_extensions=r.include_extensions, page_size=r.page.page_size,
            page_token=r.page.page_token,
        )  # fmt: skip
        now = self._now()
        return aid_pb2.ListWindowsResponse(
            windows=[window_msg(w, now=now) for w in items], page=_page(total, token)
        )

    async def GrantExtension(
        self, request: aid_pb2.GrantExtensionRequest, context: Any
    ) -> aid_pb2.GrantExtensionResponse:
        r = request
        w = await self.s.windows.grant_extension(
            current_caller(), project_code=r.project_code, period=_period(r.period),
            phase=parse_phase(r.phase), org_code=r.org_code, ends_at=_ts(r, "ends_at"),
            reason=r.reason,
        )  # fmt: skip
        return aid_pb2.GrantExtensionResponse(window=window_msg(w, now=self._now()))

    async def GetEffectiveWindows(
        self, request: aid_pb2.GetEffectiveWindowsRequest, context: Any
    ) -> aid_pb2.GetEffectiveWindowsResponse:
        items = await self.s.windows.effective(
            current_caller(), project_code=request.project_code,
            period=_maybe_period(request) or current_period(self._now()), org_code=request.org_code,
        )  # fmt: skip
        return aid_pb2.GetEffectiveWindowsResponse(windows=governing_msgs(items, now=self._now()))

    # --- records ------------------------------------------------------------------------------

    async def EnterRecord(
        self, request: aid_pb2.EnterRecordRequest, context: Any
    ) -> aid_pb2.EnterRecordResponse:
        r = request
        record = await self.s.records.enter(
            current_caller(),
            RecordInput(
                project_code=r.project_code, period=_period(r.period),
                school_org_code=r.school_org_code, student_id=r.student_id, id_type=r.id_type,
                id_number=r.id_number, student_name=r.student_name, tier_code=r.tier_code,
                amount_fen=r.amount_fen, bank_name=r.bank_name,
                bank_card_number=r.bank_card_number, remark=r.remark,
            ),
        )  # fmt: skip
        return aid_pb2.EnterRecordResponse(record=record_msg(record))

    async def UpdateRecord(
        self, request: aid_pb2.UpdateRecordRequest, context: Any
    ) -> aid_pb2.UpdateRecordResponse:
        r = request
        changes = {
            name: getattr(r, name)
            for name in ("tier_code", "amount_fen", "bank_name", "bank_card_number", "remark")
            if r.HasField(name)
        }
        record = await self.s.records.update(
            current_caller(), r.record_id, changes, r.expected_version
        )
        return aid_pb2.UpdateRecordResponse(record=record_msg(record))

    async def DeleteRecord(
        self, request: aid_pb2.DeleteRecordRequest, context: Any
    ) -> aid_pb2.DeleteRecordResponse:
        await self.s.records.delete(current_caller(), request.record_id, request.expected_version)
        return aid_pb2.DeleteRecordResponse()

    async def GetRecord(
        self, request: aid_pb2.GetRecordRequest, context: Any
    ) -> aid_pb2.GetRecordResponse:
        record, project_name, school_name, full, windows = await self.s.reads.get(
            current_caller(), request.record_id, reveal_id_number=request.reveal_id_number
        )
        return aid_pb2.GetRecordResponse(
            record=record_msg(
                record, project_name=project_name, school_name=school_name, id_number=full
            ),
            windows=governing_msgs(windows, now=self._now()),
        )

    async def ListRecords(
        self, request: aid_pb2.ListRecordsRequest, context: Any
    ) -> aid_pb2.ListRecordsResponse:
        records, total, token, projects, schools, windows = await self.s.reads.page(
            current_caller(), _filter(request), page_size=request.page.page_size,
            page_token=request.page.page_token,
        )  # fmt: skip
        return aid_pb2.ListRecordsResponse(
            records=[
                record_msg(
                    r,
                    project_name=projects.get(r.project_code, ""),
                    school_name=schools.get(r.school_org_code, ""),
                )
                for r in records
            ],  # fmt: skip
            page=_page(total, token),
            windows=governing_msgs(windows, now=self._now()),
        )

    async def ExportRecords(
        self, request: aid_pb2.ExportRecordsRequest, context: Any
    ) -> aid_pb2.ExportRecordsResponse:
        content, count = await self.s.reads.export(current_caller(), _filter(request.filter))
        return aid_pb2.ExportRecordsResponse(
            file=common_pb2.FileContent(
                file_name="资助名单导出.xlsx", content_type=XLSX_TYPE, content=content
            ),
            row_count=count,
        )

    async def SubmitRecords(
        self, request: aid_pb2.SubmitRecordsRequest, context: Any
    ) -> aid_pb2.SubmitRecordsResponse:
        records = await self.s.records.submit(current_caller(), list(request.record_ids))
        return aid_pb2.SubmitRecordsResponse(results=[_result(r) for r in records])

    async def AuditRecords(
        self, request: aid_pb2.AuditRecordsRequest, context: Any
    ) -> aid_pb2.AuditRecordsResponse:
        r = request
        outcome = await self.s.audit.decide(
            current_caller(), decision=r.decision, opinion=r.opinion, record_ids=list(r.record_ids),
            where=_filter(r.filter) if r.HasField("filter") else None,
            expected_count=r.expected_count,
        )  # fmt: skip
        return aid_pb2.AuditRecordsResponse(
            results=[_result(x) for x in outcome.records],
            forwarded_count=outcome.forwarded,
            approved_count=outcome.approved,
            returned_count=outcome.returned,
        )

    async def RevokeRecord(
        self, request: aid_pb2.RevokeRecordRequest, context: Any
    ) -> aid_pb2.RevokeRecordResponse:
        record = await self.s.records.revoke(
            current_caller(), request.record_id, request.reason, request.expected_version
        )
        return aid_pb2.RevokeRecordResponse(record=record_msg(record))

    async def GetRecordHistory(
        self, request: aid_pb2.GetRecordHistoryRequest, context: Any
    ) -> aid_pb2.GetRecordHistoryResponse:
        items = await self.s.reads.history(current_caller(), request.record_id)
        return aid_pb2.GetRecordHistoryResponse(transitions=[transition_msg(x) for x in items])

    # --- import ------------------------------------------------------------------------------

    async def GetImportTemplate(
        self, request: aid_pb2.GetImportTemplateRequest, context: Any
    ) -> aid_pb2.GetImportTemplateResponse:
        name, content = await self.s.imports.template(current_caller(), request.project_code)
        return aid_pb2.GetImportTemplateResponse(
            file=common_pb2.FileContent(file_name=name, content_type=XLSX_TYPE, content=content)
        )

    async def ImportRecords(
        self, request: aid_pb2.ImportRecordsRequest, context: Any
    ) -> aid_pb2.ImportRecordsResponse:
        r = request
        source = r.WhichOneof("source")
        if source is None:
            raise InvalidArgument(
                "请上传文件或指定已校验的导入批次", code="FILE_REQUIRED", field="file"
            )
        result = await self.s.imports.run(
            current_caller(), project_code=r.project_code, period=_period(r.period),
            school_org_code=r.school_org_code,
            upload=Upload(r.file.file_name, r.file.content) if source == "file" else None,
            import_id=r.import_id if source == "import_id" else "", dry_run=r.dry_run,
            submit=r.submit,
        )  # fmt: skip
        return aid_pb2.ImportRecordsResponse(summary=_summary(result))

    async def GetImportReport(
        self, request: aid_pb2.GetImportReportRequest, context: Any
    ) -> aid_pb2.GetImportReportResponse:
        name, content = await self.s.imports.report(current_caller(), request.import_id)
        return aid_pb2.GetImportReportResponse(
            file=common_pb2.FileContent(file_name=name, content_type=XLSX_TYPE, content=content)
        )

    # --- statistics and feeds ---------------------------------------------------------------------

    async def Stats(self, request: aid_pb2.StatsRequest, context: Any) -> aid_pb2.StatsResponse:
        r = request
        rows = await self.s.stats.stats(
            current_caller(), period=_maybe_period(r) or current_period(self._now()), org_code=r.org_code,
            project_code=r.project_code, categories=list(r.categories), stage=r.stage,
            group_by=list(r.group_by), expand_direct_schools=r.expand_direct_schools,
        )  # fmt: skip
        out = aid_pb2.StatsResponse(
            rows=[
                aid_pb2.StatsRow(
                    kind=int(x.kind),
                    org=common_pb2.OrgRef(
                        org_code=x.org.org_code if x.org else "",
                        name=x.org.name if x.org else "",
                        level=int(x.org.level) if x.org else 0,
                        org_path=x.org.org_path if x.org else "",
                    ),
                    project_code=x.project_code,
                    project_name=x.project_name,
                    stage=int(x.stage or 0),
                    category=int(x.category or 0),
                    record_count=x.record_count,
                    approved_student_count=x.approved_student_count,
                    draft_count=x.count(S.DRAFT),
                    pending_count=x.count(S.PENDING_SCHOOL_AUDIT, S.PENDING_AUTHORITY_AUDIT),
                    returned_count=x.count(S.RETURNED),
                    approved_count=x.count(S.APPROVED),
                    revoked_count=x.count(S.REVOKED),
                    approved_amount_fen=x.approved_amount_fen,
                    unapproved_amount_fen=x.unapproved_amount_fen,
                )
                for x in rows
            ]
        )
        out.as_of.FromDatetime(self._now())
        return out

    async def ListApprovedRecordsForPeriod(
        self, request: aid_pb2.ListApprovedRecordsForPeriodRequest, context: Any
    ) -> aid_pb2.ListApprovedRecordsForPeriodResponse:
        r = request
        records, cursor = await self.s.reads.approved_page(
            current_caller(), period=_period(r.period), org_code=r.org_code,
            categories=list(r.categories), project_code=r.project_code, cursor=r.cursor,
            limit=r.limit,
        )  # fmt: skip
        items = []
        for x in records:
            m = aid_pb2.ApprovedRecord(
                record_id=x.record_id, student_id=x.student_id,
                id_number_blind_index=x.id_number_blind_index, school_org_code=x.school_org_code,
                school_org_path=x.school_org_path, project_code=x.project_code,
                project_category=int(x.category), stage=int(x.stage), amount_fen=x.amount_fen,
            )  # fmt: skip
            if x.approved_at:
                m.approved_at.FromDatetime(x.approved_at)
            items.append(m)
        return aid_pb2.ListApprovedRecordsForPeriodResponse(records=items, next_cursor=cursor)


def _result(r: Any) -> aid_pb2.RecordTransitionResult:
    return aid_pb2.RecordTransitionResult(
        record_id=r.record_id,
        status=int(r.status),
        pending_level=int(r.pending_level or 0),
        version=r.version,
    )

"""gRPC servicer of the roster service: proto in, service call, proto out (no SQL, no rules)."""

from __future__ import annotations

from typing import Any

from zizhu_common.bulk import gc_paused
from zizhu_common.rpc import current_caller
from zizhu_contracts.roster.v1 import roster_pb2 as pb
from zizhu_contracts.roster.v1 import roster_pb2_grpc

from roster_service.domain.groups import IssuedRowInput
from roster_service.grpc_api.protomap import (
    check_response,
    file_content,
    import_summary,
    page,
    row_errors,
    sync_row,
    to_proto,
)
from roster_service.service import RosterServices
from roster_service.service.students import CheckInput, SearchInput

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["RosterService"].full_name


class RosterServicer(roster_pb2_grpc.RosterServiceServicer):
    """Serves zizhu_contracts.roster.v1.RosterService."""

    def __init__(self, services: RosterServices) -> None:
        self.s = services

    # -- students ------------------------------------------------------------------------------

    async def SyncStudents(
        self, request: pb.SyncStudentsRequest, context: Any
    ) -> pb.SyncStudentsResponse:
        result = await self.s.students.sync_rows(
            current_caller(),
            source_system=request.source_system,
            batch_id=request.batch_id,
            rows=[sync_row(r) for r in request.rows],
            skip_invalid=request.skip_invalid_rows,
        )
        return pb.SyncStudentsResponse(
            created_count=result.created_count,
            updated_count=result.updated_count,
            unchanged_count=result.unchanged_count,
            errors=row_errors(result.errors),
            student_ids=result.student_ids,
        )

    async def ImportStudents(
        self, request: pb.ImportStudentsRequest, context: Any
    ) -> pb.ImportStudentsResponse:
        summary = await self.s.students.import_students(
            current_caller(),
            source_system=request.source_system,
            file_name=request.file.file_name or "students.csv",
            content=request.file.content,
            import_id=request.import_id,
            dry_run=request.dry_run,
            skip_invalid=request.skip_invalid_rows,
        )
        return pb.ImportStudentsResponse(
            summary=import_summary(summary), unchanged_count=summary.unchanged_count
        )

    async def GetStudentTemplate(
        self, request: pb.GetStudentTemplateRequest, context: Any
    ) -> pb.GetStudentTemplateResponse:
        current_caller()
        return pb.GetStudentTemplateResponse(
            file=file_content(self.s.students.template(request.format))
        )

    async def GetStudent(
        self, request: pb.GetStudentRequest, context: Any
    ) -> pb.GetStudentResponse:
        detail = await self.s.students.get(
            current_caller(),
            student_id=request.student_id,
            id_type=request.id_type,
            id_number=request.id_number,
            reveal=request.reveal_id_number,
            include_history=request.include_history,
        )
        return to_proto(pb.GetStudentResponse, detail)

    async def BatchGetStudents(
        self, request: pb.BatchGetStudentsRequest, context: Any
    ) -> pb.BatchGetStudentsResponse:
        views, missing = await self.s.students.batch_get(
            current_caller(), list(request.student_ids)
        )
        return pb.BatchGetStudentsResponse(
            students=[to_proto(pb.Student, v) for v in views], missing_ids=missing
        )

    async def SearchStudents(
        self, request: pb.SearchStudentsRequest, context: Any
    ) -> pb.SearchStudentsResponse:
        views, p = await self.s.students.search(
            current_caller(),
            SearchInput(
                org_code=request.org_code,
                stage=request.stage,
                grade=request.grade,
                class_name=request.class_name,
                statuses=tuple(request.statuses),
                name=request.name,
                id_number=request.id_number,
                student_number=request.student_number,
                groups=tuple(request.groups),
                hardship_levels=tuple(request.hardship_levels),
                hardship_school_year=request.hardship_school_year,
            ),
            request.page,
        )
        return pb.SearchStudentsResponse(
            students=[to_proto(pb.Student, v) for v in views], page=page(p)
        )

    # Batched calls make tens of thousands of short-lived, acyclic objects that would set off
    # the cyclic collector again and again (a quarter of roster's CPU per check): paused.
    @gc_paused
    async def CheckEnrollment(
        self, request: pb.CheckEnrollmentRequest, context: Any
    ) -> pb.CheckEnrollmentResponse:
        # Positional construction and one period read per check: a call carries up to 5000.
        checks = []
        append = checks.append
        for i, c in enumerate(request.checks):
            period = c.period
            append(
                CheckInput(
                    i, c.student_id, c.id_type, c.id_number, c.id_number_blind_index, c.name,
                    c.school_org_code, c.stage, period.school_year, period.term,
                )
            )  # fmt: skip
        results = await self.s.students.check_enrollment(current_caller(), checks)
        return check_response(results)

    # -- special groups ------------------------------------------------------------------------

    async def IssueSpecialGroupBatch(
        self, request: pb.IssueSpecialGroupBatchRequest, context: Any
    ) -> pb.IssueSpecialGroupBatchResponse:
        view = await self.s.groups.issue(
            current_caller(),
            issuing_org_code=request.issuing_org_code,
            title=request.title,
            source_system=request.source_system,
            groups=list(request.groups),
            mode=request.mode,
            as_of_date=request.as_of_date,
            school_year=request.school_year,
        )
        return pb.IssueSpecialGroupBatchResponse(batch=to_proto(pb.IssueBatch, view))

    @gc_paused  # thousands of rows matched per call (see CheckEnrollment)
    async def AddIssuedRows(
        self, request: pb.AddIssuedRowsRequest, context: Any
    ) -> pb.AddIssuedRowsResponse:
        rows = [
            IssuedRowInput(
                id_type=r.id_type,
                id_number=r.id_number,
                name=r.name,
                group=r.group,
                action=r.action,
                household_region_code=r.household_region_code,
                valid_from=r.valid_from,
                valid_to=r.valid_to,
            )
            for r in request.rows
        ]
        errors, total = await self.s.groups.add_rows(
            current_caller(),
            batch_id=request.batch_id,
            chunk_number=request.chunk_number,
            rows=rows,
        )
        return pb.AddIssuedRowsResponse(errors=row_errors(errors), row_count=total)

    @gc_paused  # a list of up to millions of rows committed at once
    async def CommitSpecialGroupBatch(
        self, request: pb.CommitSpecialGroupBatchRequest, context: Any
    ) -> pb.CommitSpecialGroupBatchResponse:
        view = await self.s.groups.commit(
            current_caller(), batch_id=request.batch_id, chunk_count=request.chunk_count
        )
        return pb.CommitSpecialGroupBatchResponse(batch=to_proto(pb.IssueBatch, view))

    async def CancelSpecialGroupBatch(
        self, request: pb.CancelSpecialGroupBatchRequest, context: Any
    ) -> pb.CancelSpecialGroupBatchResponse:
        view = await self.s.groups.cancel(
            current_caller(), batch_id=request.batch_id, reason=request.reason
        )
        return pb.CancelSpecialGroupBatchResponse(batch=to_proto(pb.IssueBatch, view))

    async def GetSpecialGroupBatch(
        self, request: pb.GetSpecialGroupBatchRequest, context: Any
    ) -> pb.GetSpecialGroupBatchResponse:
        view = await self.s.groups.get(current_caller(), request.batch_id)
        return pb.GetSpecialGroupBatchResponse(batch=to_proto(pb.IssueBatch, view))

    async def ListSpecialGroupBatches(
        self, request: pb.ListSpecialGroupBatchesRequest, context: Any
    ) -> pb.ListSpecialGroupBatchesResponse:
        views, p = await self.s.groups.list_batches(
            current_caller(),
            org_code=request.org_code,
            statuses=list(request.statuses),
            group=request.group,
            page=request.page,
        )
        return pb.ListSpecialGroupBatchesResponse(
            batches=[to_proto(pb.IssueBatch, v) for v in views], page=page(p)
        )

    async def ListIssuedRows(
        self, request: pb.ListIssuedRowsRequest, context: Any
    ) -> pb.ListIssuedRowsResponse:
        views, p = await self.s.groups.list_rows(
            current_caller(),
            batch_id=request.batch_id,
            org_code=request.org_code,
            match_statuses=list(request.match_statuses),
            verification_statuses=list(request.verification_statuses),
            group=request.group,
            page=request.page,
        )
        return pb.ListIssuedRowsResponse(
            rows=[to_proto(pb.IssuedRow, v) for v in views], page=page(p)
        )

    async def ListIssueChanges(
        self, request: pb.ListIssueChangesRequest, context: Any
    ) -> pb.ListIssueChangesResponse:
        views, previous, p = await self.s.groups.list_changes(
            current_caller(),
            batch_id=request.batch_id,
            kinds=list(request.kinds),
            page=request.page,
        )
        return pb.ListIssueChangesResponse(
            changes=[to_proto(pb.IssueChange, v) for v in views],
            previous_batch_id=previous,
            page=page(p),
        )

    async def GetVerificationProgress(
        self, request: pb.GetVerificationProgressRequest, context: Any
    ) -> pb.GetVerificationProgressResponse:
        rows = await self.s.groups.progress(
            current_caller(),
            org_code=request.org_code,
            school_year=request.school_year,
            batch_id=request.batch_id,
            group=request.group,
        )
        return pb.GetVerificationProgressResponse(
            rows=[to_proto(pb.VerificationProgressRow, r) for r in rows]
        )

    async def ListMemberships(
        self, request: pb.ListMembershipsRequest, context: Any
    ) -> pb.ListMembershipsResponse:
        views, p = await self.s.groups.list_memberships(
            current_caller(),
            org_code=request.org_code,
            student_id=request.student_id,
            groups=list(request.groups),
            source=request.source,
            statuses=list(request.statuses),
            verification_statuses=list(request.verification_statuses),
            batch_id=request.batch_id,
            school_year=request.school_year,
            period_year=request.period.school_year,
            period_term=request.period.term,
            page=request.page,
        )
        return pb.ListMembershipsResponse(
            memberships=[to_proto(pb.Membership, v) for v in views], page=page(p)
        )

    async def VerifyMembership(
        self, request: pb.VerifyMembershipRequest, context: Any
    ) -> pb.VerifyMembershipResponse:
        views = await self.s.groups.verify(
            current_caller(),
            membership_ids=list(request.membership_ids),
            result=request.result,
            note=request.note,
        )
        return pb.VerifyMembershipResponse(memberships=[to_proto(pb.Membership, v) for v in views])

    async def AddSelfCollectedMembership(
        self, request: pb.AddSelfCollectedMembershipRequest, context: Any
    ) -> pb.AddSelfCollectedMembershipResponse:
        view = await self.s.groups.add_self_collected(
            current_caller(),
            student_id=request.student_id,
            id_type=request.id_type,
            id_number=request.id_number,
            group=request.group,
            valid_from=request.valid_from,
            valid_to=request.valid_to,
            evidence_note=request.evidence_note,
            school_year=request.school_year,
            students=self.s.students,
        )
        return pb.AddSelfCollectedMembershipResponse(membership=to_proto(pb.Membership, view))

    async def EndMembership(
        self, request: pb.EndMembershipRequest, context: Any
    ) -> pb.EndMembershipResponse:
        view = await self.s.groups.end(
            current_caller(),
            membership_id=request.membership_id,
            ended_on=request.ended_on,
            reason=request.reason,
        )
        return pb.EndMembershipResponse(membership=to_proto(pb.Membership, view))

    async def ListMembershipsForPeriod(
        self, request: pb.ListMembershipsForPeriodRequest, context: Any
    ) -> pb.ListMembershipsForPeriodResponse:
        members, cursor = await self.s.groups.members_for_period(
            current_caller(),
            school_year=request.period.school_year,
            term=request.period.term,
            org_code=request.org_code,
            stage=request.stage,
            cursor=request.cursor,
            limit=request.limit,
        )
        return pb.ListMembershipsForPeriodResponse(
            members=[to_proto(pb.PeriodMember, m) for m in members], next_cursor=cursor
        )

    # -- recognition ---------------------------------------------------------------------------

    async def RecognizeHardship(
        self, request: pb.RecognizeHardshipRequest, context: Any
    ) -> pb.RecognizeHardshipResponse:
        view = await self.s.recognitions.recognize(
            current_caller(),
            student_id=request.student_id,
            school_year=request.school_year,
            term=request.term,
            level=request.level,
            basis_groups=list(request.basis_groups),
            basis_note=request.basis_note,
            recognized_on=request.recognized_on,
            change_reason=request.change_reason,
            expected_version=request.expected_version,
        )
        return pb.RecognizeHardshipResponse(recognition=to_proto(pb.Recognition, view))

    async def GetRecognition(
        self, request: pb.GetRecognitionRequest, context: Any
    ) -> pb.GetRecognitionResponse:
        current, history = await self.s.recognitions.get(
            current_caller(), student_id=request.student_id, school_year=request.school_year
        )
        resp = pb.GetRecognitionResponse(history=[to_proto(pb.Recognition, v) for v in history])
        if current is not None:
            resp.current.CopyFrom(to_proto(pb.Recognition, current))
        return resp

    async def ListRecognitions(
        self, request: pb.ListRecognitionsRequest, context: Any
    ) -> pb.ListRecognitionsResponse:
        views, p = await self.s.recognitions.list(
            current_caller(),
            org_code=request.org_code,
            school_year=request.school_year,
            term=request.term,
            levels=list(request.levels),
            stage=request.stage,
            grade=request.grade,
            class_name=request.class_name,
            page=request.page,
        )
        return pb.ListRecognitionsResponse(
            recognitions=[to_proto(pb.Recognition, v) for v in views], page=page(p)
        )

    async def GetRecognitionTemplate(
        self, request: pb.GetRecognitionTemplateRequest, context: Any
    ) -> pb.GetRecognitionTemplateResponse:
        current_caller()
        return pb.GetRecognitionTemplateResponse(file=file_content(self.s.recognitions.template()))

    async def ImportRecognitions(
        self, request: pb.ImportRecognitionsRequest, context: Any
    ) -> pb.ImportRecognitionsResponse:
        summary = await self.s.recognitions.import_file(
            current_caller(),
            school_org_code=request.school_org_code,
            school_year=request.school_year,
            term=request.term,
            file_name=request.file.file_name or "recognitions.xlsx",
            content=request.file.content,
            import_id=request.import_id,
            dry_run=request.dry_run,
        )
        return pb.ImportRecognitionsResponse(summary=import_summary(summary))

    async def GetImportReport(
        self, request: pb.GetImportReportRequest, context: Any
    ) -> pb.GetImportReportResponse:
        f = await self.s.students.import_report(current_caller(), request.import_id)
        return pb.GetImportReportResponse(file=file_content(f))

    async def ListPendingRecognitions(
        self, request: pb.ListPendingRecognitionsRequest, context: Any
    ) -> pb.ListPendingRecognitionsResponse:
        views, p = await self.s.recognitions.pending(
            current_caller(),
            org_code=request.org_code,
            school_year=request.school_year,
            page=request.page,
        )
        return pb.ListPendingRecognitionsResponse(
            students=[to_proto(pb.PendingRecognition, v) for v in views], page=page(p)
        )

    async def SetGroupDefaultLevels(
        self, request: pb.SetGroupDefaultLevelsRequest, context: Any
    ) -> pb.SetGroupDefaultLevelsResponse:
        view = await self.s.recognitions.set_defaults(
            current_caller(),
            org_code=request.org_code,
            defaults=[(d.group, d.level) for d in request.defaults],
        )
        return pb.SetGroupDefaultLevelsResponse(
            org_code=view.source_org_code,
            defaults=[pb.GroupDefaultLevel(group=g, level=lv) for g, lv in view.defaults],
        )

    async def GetGroupDefaultLevels(
        self, request: pb.GetGroupDefaultLevelsRequest, context: Any
    ) -> pb.GetGroupDefaultLevelsResponse:
        view = await self.s.recognitions.get_defaults(current_caller(), org_code=request.org_code)
        resp = pb.GetGroupDefaultLevelsResponse(
            source_org_code=view.source_org_code,
            defaults=[pb.GroupDefaultLevel(group=g, level=lv) for g, lv in view.defaults],
            updated_by=view.updated_by,
        )
        if view.updated_at is not None:
            resp.updated_at.FromDatetime(view.updated_at)
        return resp

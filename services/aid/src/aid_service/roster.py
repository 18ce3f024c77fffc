"""What aid asks roster (DESIGN.md §5 entry validation), behind a small interface.

`Roster` is the port the use cases depend on; `GrpcRoster` calls roster's CheckEnrollment in
batches of at most 5,000 checks, a few batches in flight at once, with a deadline and the caller's
context forwarded (roster applies its own scope and audits reveals).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc
from zizhu_common.errors import Unavailable, error_from_rpc
from zizhu_common.rpc import CallerContext
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.roster.v1 import roster_pb2, roster_pb2_grpc

from aid_service.bulk import paused_gc
from aid_service.domain.enums import EnrollmentOutcome, HardshipLevel, IdType, Stage
from aid_service.domain.periods import AidPeriod

MAX_CHECKS_PER_CALL = 5000


@dataclass(frozen=True, slots=True)
class EnrollmentQuery:
    """Is this student enrolled at that school, in that stage, during the period?"""

    school_org_code: str
    stage: Stage
    period: AidPeriod
    student_id: str = ""
    id_type: IdType = IdType.RESIDENT_ID
    id_number: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True)
class EnrollmentAnswer:
    """Roster's answer, with what aid keeps on the record."""

    outcome: EnrollmentOutcome
    student_id: str = ""
    id_number_blind_index: str = ""
    name: str = ""
    id_number_masked: str = ""
    student_number: str = ""
    grade: str = ""
    class_name: str = ""
    school_org_path: str = ""
    hardship_level: HardshipLevel | None = None


@dataclass(frozen=True, slots=True)
class StudentBrief:
    """A student of a school as roster lists it (demo data and pickers)."""

    student_id: str
    name: str
    id_number_masked: str
    stage: Stage | None
    grade: str
    boarder: bool
    hardship_level: HardshipLevel | None


class Roster(Protocol):
    """The roster operations aid needs."""

    async def check_enrollment(
        self, caller: CallerContext, queries: Sequence[EnrollmentQuery]
    ) -> list[EnrollmentAnswer]:
        """One answer per query, in order."""
        ...

    async def reveal_id_number(self, caller: CallerContext, student_id: str) -> str:
        """The full ID number of a student (an audited read in roster)."""
        ...

    async def list_students(
        self, caller: CallerContext, *, school_org_code: str, stage: Stage, school_year: str
    ) -> list[StudentBrief]:
        """In-school students of a school and stage, with their recognition that year."""
        ...


def _answer(r: roster_pb2.EnrollmentCheckResult) -> EnrollmentAnswer:
    e = r.enrollment
    return EnrollmentAnswer(
        outcome=EnrollmentOutcome(r.outcome) if r.outcome else EnrollmentOutcome.STUDENT_NOT_FOUND,
        student_id=r.student_id,
        id_number_blind_index=r.id_number_blind_index,
        name=r.name,
        id_number_masked=r.id_number_masked,
        student_number=e.student_number,
        grade=e.grade,
        class_name=e.class_name,
        school_org_path=e.school_org_path,
        hardship_level=HardshipLevel(r.hardship_level) if r.hardship_level else None,
    )


class GrpcRoster:
    """Roster over gRPC."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        timeout_s: float = 30.0,
        batch_size: int = MAX_CHECKS_PER_CALL,
        concurrency: int = 3,
    ) -> None:
        self.stub = roster_pb2_grpc.RosterServiceStub(channel)
        self.timeout_s = timeout_s
        self.batch_size = min(batch_size, MAX_CHECKS_PER_CALL)
        self.concurrency = concurrency
        # Seconds spent awaiting check_enrollment and calls made (for operators and benchmarks).
        self.wait_s = 0.0
        self.calls = 0

    async def check_enrollment(
        self, caller: CallerContext, queries: Sequence[EnrollmentQuery]
    ) -> list[EnrollmentAnswer]:
        """Batched CheckEnrollment calls; answers in query order."""
        metadata = caller.to_metadata()
        gate = asyncio.Semaphore(self.concurrency)

        async def one(part: Sequence[EnrollmentQuery]) -> list[EnrollmentAnswer]:
            request = roster_pb2.CheckEnrollmentRequest(
                checks=[
                    roster_pb2.EnrollmentCheck(
                        student_id=q.student_id,
                        id_type=int(q.id_type),  # type: ignore[arg-type]
                        id_number=q.id_number,
                        name=q.name,
                        school_org_code=q.school_org_code,
                        stage=int(q.stage),  # type: ignore[arg-type]
                        period=common_pb2.AidPeriod(
                            school_year=q.period.school_year,
                            term=int(q.period.term),  # type: ignore[arg-type]
                        ),
                    )
                    for q in part
                ]
            )
            async with gate:
                try:
                    response = await self.stub.CheckEnrollment(
                        request, metadata=metadata, timeout=self.timeout_s
                    )
                except grpc.RpcError as exc:
                    raise _roster_error(exc) from None
            answers: list[EnrollmentAnswer] = [
                EnrollmentAnswer(EnrollmentOutcome.STUDENT_NOT_FOUND)
            ] * len(part)
            with paused_gc():
                for r in response.results:
                    if 0 <= r.index < len(part):
                        answers[r.index] = _answer(r)
            return answers

        parts = [queries[i : i + self.batch_size] for i in range(0, len(queries), self.batch_size)]
        started = time.perf_counter()
        try:
            results = await asyncio.gather(*(one(p) for p in parts))
        finally:
            self.wait_s += time.perf_counter() - started
            self.calls += len(parts)
        return [a for chunk in results for a in chunk]

    async def reveal_id_number(self, caller: CallerContext, student_id: str) -> str:
        """GetStudent with reveal_id_number (roster audits the read)."""
        try:
            response = await self.stub.GetStudent(
                roster_pb2.GetStudentRequest(student_id=student_id, reveal_id_number=True),
                metadata=caller.to_metadata(),
                timeout=self.timeout_s,
            )
        except grpc.RpcError as exc:
            raise _roster_error(exc) from None
        return response.student.id_number

    async def list_students(
        self, caller: CallerContext, *, school_org_code: str, stage: Stage, school_year: str
    ) -> list[StudentBrief]:
        """SearchStudents, every page."""
        out: list[StudentBrief] = []
        token = ""
        while True:
            try:
                response = await self.stub.SearchStudents(
                    roster_pb2.SearchStudentsRequest(
                        org_code=school_org_code,
                        stage=int(stage),  # type: ignore[arg-type]
                        statuses=[roster_pb2.STUDENT_STATUS_IN_SCHOOL],
                        hardship_school_year=school_year,
                        page=common_pb2.PageRequest(page_size=1000, page_token=token),
                    ),
                    metadata=caller.to_metadata(),
                    timeout=self.timeout_s,
                )
            except grpc.RpcError as exc:
                raise _roster_error(exc) from None
            for st in response.students:
                rec = st.current_recognition
                level = rec.level if rec.school_year == school_year and rec.level else 0
                out.append(
                    StudentBrief(
                        student_id=st.student_id,
                        name=st.name,
                        id_number_masked=st.id_number_masked,
                        stage=Stage(st.enrollment.stage) if st.enrollment.stage else None,
                        grade=st.enrollment.grade,
                        boarder=st.enrollment.boarder,
                        hardship_level=HardshipLevel(level) if level else None,
                    )
                )
            token = response.page.next_page_token
            if not token:
                return out


def _roster_error(exc: grpc.RpcError) -> Exception:
    err = error_from_rpc(exc)
    if err.code in ("SERVICE_UNAVAILABLE", "UPSTREAM_TIMEOUT", "INTERNAL", "NOT_IMPLEMENTED"):
        return Unavailable(
            "学籍服务暂不可用，无法核验学生在校情况，请稍后重试", code="ROSTER_UNAVAILABLE"
        )
    return err

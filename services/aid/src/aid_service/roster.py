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
from zizhu_common.bulk import paused_gc
from zizhu_common.errors import Unavailable, error_from_rpc
from zizhu_common.rpc import CallerContext
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.roster.v1 import roster_pb2, roster_pb2_grpc

from aid_service.domain.enums import EnrollmentOutcome, HardshipLevel, IdType, Stage
from aid_service.domain.periods import AidPeriod

MAX_CHECKS_PER_CALL = 5000


# Not frozen: a 100,000-row import builds one of each per row, and a frozen dataclass's
# __init__ costs several times more.
@dataclass(slots=True)
class EnrollmentQuery:
    """Is this student enrolled at that school, in that stage, during the period?"""

    school_org_code: str
    stage: Stage
    period: AidPeriod
    student_id: str = ""
    id_type: IdType = IdType.RESIDENT_ID
    id_number: str = ""
    name: str = ""
    # The person key of a resident ID that aid has validated and normalised (the blind index,
    # keyed as roster keys it): roster looks the student up by it without computing it again.
    id_number_blind_index: str = ""


@dataclass(slots=True)
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


_OUTCOMES = {int(o): o for o in EnrollmentOutcome}
_LEVELS = {int(h): h for h in HardshipLevel}
_NOT_FOUND = EnrollmentOutcome.STUDENT_NOT_FOUND


def _answer(r: roster_pb2.EnrollmentCheckResult) -> EnrollmentAnswer:
    e = r.enrollment
    return EnrollmentAnswer(
        _OUTCOMES.get(r.outcome, _NOT_FOUND),
        r.student_id,
        r.id_number_blind_index,
        r.name,
        r.id_number_masked,
        e.student_number,
        e.grade,
        e.class_name,
        e.school_org_path,
        _LEVELS.get(r.hardship_level),
    )


def _request(queries: Sequence[EnrollmentQuery]) -> roster_pb2.CheckEnrollmentRequest:
    """One CheckEnrollment request. The checks of an import share school, stage and period:
    each is a copy of a shared prototype with its own person fields set (several times cheaper
    than building every nested message from keyword arguments)."""
    request = roster_pb2.CheckEnrollmentRequest()
    add = request.checks.add
    proto = roster_pb2.EnrollmentCheck()
    shared: tuple[str, Stage, AidPeriod] | None = None
    for q in queries:
        key = (q.school_org_code, q.stage, q.period)
        if key != shared:
            shared = key
            proto = roster_pb2.EnrollmentCheck(
                school_org_code=q.school_org_code,
                stage=int(q.stage),  # type: ignore[arg-type]
                period=common_pb2.AidPeriod(
                    school_year=q.period.school_year,
                    term=int(q.period.term),  # type: ignore[arg-type]
                ),
            )
        c = add()
        c.CopyFrom(proto)
        if q.student_id:
            c.student_id = q.student_id
        c.id_type = int(q.id_type)  # type: ignore[assignment]
        if q.id_number:
            c.id_number = q.id_number
        if q.id_number_blind_index:
            c.id_number_blind_index = q.id_number_blind_index
        if q.name:
            c.name = q.name
    return request


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
        # At most `concurrency` CheckEnrollment calls of this client in flight at once, however
        # many imports (or pipelined chunks of one import) ask at the same time.
        self._gate: asyncio.Semaphore | None = None
        self._gate_loop: asyncio.AbstractEventLoop | None = None
        # Seconds during which at least one check_enrollment was under way, and calls made (for
        # operators and benchmarks). A pipelined import overlaps them with its own work.
        self.wait_s = 0.0
        self.calls = 0
        self._busy = 0
        self._busy_since = 0.0

    def _enter(self) -> None:
        if self._busy == 0:
            self._busy_since = time.perf_counter()
        self._busy += 1

    def _leave(self) -> None:
        self._busy -= 1
        if self._busy == 0:
            self.wait_s += time.perf_counter() - self._busy_since

    async def check_enrollment(
        self, caller: CallerContext, queries: Sequence[EnrollmentQuery]
    ) -> list[EnrollmentAnswer]:
        """Batched CheckEnrollment calls; answers in query order."""
        loop = asyncio.get_running_loop()
        if self._gate is None or self._gate_loop is not loop:
            self._gate, self._gate_loop = asyncio.Semaphore(self.concurrency), loop
        gate = self._gate
        metadata = caller.to_metadata()

        async def one(part: Sequence[EnrollmentQuery]) -> list[EnrollmentAnswer]:
            with paused_gc():
                request = _request(part)
            async with gate:
                try:
                    response = await self.stub.CheckEnrollment(
                        request, metadata=metadata, timeout=self.timeout_s
                    )
                except grpc.RpcError as exc:
                    raise _roster_error(exc) from None
            n = len(part)
            answers: list[EnrollmentAnswer] = [EnrollmentAnswer(_NOT_FOUND)] * n
            with paused_gc():
                for r in response.results:
                    i = r.index
                    if 0 <= i < n:
                        answers[i] = _answer(r)
            return answers

        parts = [queries[i : i + self.batch_size] for i in range(0, len(queries), self.batch_size)]
        self._enter()
        try:
            if len(parts) == 1:
                results = [await one(parts[0])]
            else:
                results = await asyncio.gather(*(one(p) for p in parts))
        finally:
            self._leave()
            self.calls += len(parts)
        if len(results) == 1:
            return results[0]
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

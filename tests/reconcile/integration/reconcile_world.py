"""The reconcile service under test: a real gRPC server, real JetStream streams fed with the
protobuf events of identity, roster, aid and funding, and durable consumers applying them."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from reconcile_service.service import ReconcileServices
from zizhu_common.consumer import DurableConsumer
from zizhu_common.db import Database
from zizhu_common.errors import ERROR_TRAILER
from zizhu_common.idnumber import id_check_char, mask_id_number
from zizhu_common.outbox import stamp
from zizhu_common.rpc import CallerContext
from zizhu_contracts.aid.v1 import aid_pb2
from zizhu_contracts.aid.v1 import events_pb2 as aid_events
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.funding.v1 import events_pb2 as funding_events
from zizhu_contracts.identity.v1 import events_pb2 as identity_events
from zizhu_contracts.identity.v1 import identity_pb2
from zizhu_contracts.reconcile.v1 import reconcile_pb2 as pb
from zizhu_contracts.reconcile.v1 import reconcile_pb2_grpc
from zizhu_contracts.roster.v1 import events_pb2 as roster_events
from zizhu_contracts.roster.v1 import roster_pb2

NATION = ("000000", "全国", 1, "", "/000000/")
PROVINCE = ("440000", "广东省", 2, "000000", "/000000/440000/")
CITY = ("440100", "广州市", 3, "440000", "/000000/440000/440100/")
TIANHE = ("440106", "天河区", 4, "440100", "/000000/440000/440100/440106/")
BAIYUN = ("440111", "白云区", 4, "440100", "/000000/440000/440100/440111/")
HUAYANG = ("2144010601", "广州市天河区华阳小学", 5, "440106", TIANHE[4] + "2144010601/", (2,))
TIANHE_MS = ("3444010601", "广州市天河中学", 5, "440106", TIANHE[4] + "3444010601/", (2, 3))
BAIYUN_PS = ("2144011101", "广州市白云区实验小学", 5, "440111", BAIYUN[4] + "2144011101/", (2,))
VOCATIONAL = ("3644010001", "广州市轻工职业学校", 5, "440100", CITY[4] + "3644010001/", (4,))
AUTHORITIES = (NATION, PROVINCE, CITY, TIANHE, BAIYUN)
SCHOOLS = (HUAYANG, TIANHE_MS, BAIYUN_PS, VOCATIONAL)
BY_CODE = {o[0]: o for o in (*AUTHORITIES, *SCHOOLS)}
LEVEL_NAMES = {1: "national", 2: "province", 3: "city", 4: "county", 5: "school"}

AUTUMN_2024 = ("2024-2025", 1)
SPRING_2025 = ("2024-2025", 2)
AUTUMN_2023 = ("2023-2024", 1)
NEED, MERIT = common_pb2.AID_CATEGORY_NEED_BASED, common_pb2.AID_CATEGORY_MERIT
ISSUED, SELF = common_pb2.MEMBERSHIP_SOURCE_ISSUED, common_pb2.MEMBERSHIP_SOURCE_SELF_COLLECTED

_serial = itertools.count(1)


def id_number(n: int, birth: str = "20150301") -> str:
    """A valid resident ID number (GB 11643) born on birth."""
    first17 = f"440106{birth}{n % 1000:03d}"
    return first17 + id_check_char(first17)


def period_pb(p: tuple[str, int]) -> common_pb2.AidPeriod:
    return common_pb2.AidPeriod(school_year=p[0], term=p[1])  # type: ignore[arg-type]


def caller(org_code: str, *roles: str, account: str = "") -> list[tuple[str, str]]:
    """gRPC metadata of a user of org_code with roles (default operator)."""
    code, _, level, _, path, *_ = BY_CODE[org_code]
    return CallerContext(
        account_id=account or f"acc-{org_code}-{'-'.join(roles or ('operator',))}",
        org_code=code,
        org_path=path,
        level=LEVEL_NAMES[level],
        roles=frozenset(roles or ("operator",)),
        request_id=uuid.uuid4().hex,
    ).to_metadata()


def error_of(exc: grpc.aio.AioRpcError) -> dict[str, Any]:
    """The JSON error trailer (code, message, field) of a refused call."""
    import json

    for key, value in exc.trailing_metadata() or ():
        if key == ERROR_TRAILER:
            return json.loads(value)
    return {}


@dataclass
class Student:
    """A student as roster knows it."""

    student_id: str
    id_number: str
    name: str
    school: tuple
    stage: int
    blind_index: str


@dataclass
class Feed:
    """Publishes other services' events into their real JetStream streams."""

    js: JetStreamContext
    blind: Any
    published: int = 0
    students: dict[str, Student] = field(default_factory=dict)

    async def _pub(self, subject: str, msg: Any, at: datetime | None = None) -> None:
        await self.publish(subject, msg, at)

    async def org_tree(self) -> None:
        """The demo tree: nation, 广东省, 广州市, 天河区, 白云区 and four schools."""
        for o in (*AUTHORITIES, *SCHOOLS):
            await self.org(o)

    async def org(self, o: tuple) -> None:
        code, name, level, parent, path, *rest = o
        org = identity_pb2.Org(
            org_code=code,
            name=name,
            level=level,
            parent_code=parent,
            org_path=path,
            stages=list(rest[0]) if rest else [],
            status=identity_pb2.ORG_STATUS_ACTIVE,
        )
        await self._pub("identity.org.created", identity_events.OrgCreated(org_code=code, org=org))

    async def student(
        self,
        school: tuple,
        *,
        stage: int = 2,
        name: str = "",
        status: int = roster_pb2.STUDENT_STATUS_IN_SCHOOL,
        enrolled_on: str = "2022-09-01",
        left_on: str = "",
        birth: str = "20150301",
        n: int | None = None,
    ) -> Student:
        """A registered student enrolled at school."""
        n = n if n is not None else next(_serial)
        number = id_number(n, birth)
        s = Student(f"S{n:06d}", number, name or f"学生{n}", school, stage, self.blind(number))
        msg = roster_events.StudentRegistered(
            student_id=s.student_id,
            id_number_blind_index=s.blind_index,
            name=s.name,
            id_number_masked=mask_id_number(number),
            gender=roster_pb2.GENDER_MALE,
            birth_date=f"{birth[:4]}-{birth[4:6]}-{birth[6:]}",
            enrollment=self.enrollment(school, stage, status, enrolled_on, left_on),
        )
        await self._pub("roster.student.registered", msg)
        self.students[s.student_id] = s
        return s

    @staticmethod
    def enrollment(school: tuple, stage: int, status: int, enrolled_on: str, left_on: str) -> Any:
        return roster_pb2.Enrollment(
            school_org_code=school[0],
            school_name=school[1],
            school_org_path=school[4],
            stage=stage,  # type: ignore[arg-type]
            grade="三年级",
            class_name="1班",
            status=status,  # type: ignore[arg-type]
            enrolled_on=enrolled_on,
            left_on=left_on,
        )

    async def enrollment_changed(
        self,
        s: Student,
        school: tuple,
        *,
        status: int,
        left_on: str = "",
        previous: tuple | None = None,
    ) -> None:
        msg = roster_events.StudentEnrollmentChanged(
            student_id=s.student_id,
            id_number_blind_index=s.blind_index,
            enrollment=self.enrollment(school, s.stage, status, "2022-09-01", left_on),
        )
        if previous is not None:
            msg.previous.CopyFrom(self.enrollment(previous, s.stage, 1, "2022-09-01", ""))
        await self._pub("roster.student.enrollment_changed", msg)

    async def membership(
        self, s: Student, group: int, *, source: int = ISSUED, valid_to: str = ""
    ) -> str:
        mid = f"M{next(_serial):06d}"
        await self._pub(
            "roster.membership.added",
            roster_events.MembershipAdded(
                membership_id=mid,
                student_id=s.student_id,
                id_number_blind_index=s.blind_index,
                school_org_code=s.school[0],
                school_org_path=s.school[4],
                stage=s.stage,  # type: ignore[arg-type]
                group=group,  # type: ignore[arg-type]
                source=source,  # type: ignore[arg-type]
                valid_to=valid_to,
                verification_status=roster_pb2.VERIFICATION_STATUS_PENDING,
            ),
        )
        return mid

    async def memberships_issued(
        self,
        batch_id: str,
        school: tuple,
        members: list[tuple[Student, int]],
        *,
        part: int = 1,
        at: datetime | None = None,
        ids: list[str] | None = None,
    ) -> roster_events.MembershipsIssued:
        """The memberships a central issue batch created at one school (one part), published
        as roster does: one event whose entries are whole MembershipAdded without meta.
        Returns the stamped event (its entries name the membership ids, new unless given)."""
        msg = roster_events.MembershipsIssued(
            batch_id=batch_id, school_org_code=school[0], school_org_path=school[4], part=part
        )
        for i, (s, group) in enumerate(members):
            msg.memberships.add(
                membership_id=ids[i] if ids else f"M{next(_serial):06d}",
                student_id=s.student_id,
                id_number_blind_index=s.blind_index,
                school_org_code=school[0],
                school_org_path=school[4],
                stage=s.stage,  # type: ignore[arg-type]
                group=group,  # type: ignore[arg-type]
                source=ISSUED,
                batch_id=batch_id,
                verification_status=roster_pb2.VERIFICATION_STATUS_PENDING,
                school_year=AUTUMN_2024[0],
            )
        await self.publish("roster.membership.issued", msg, at)
        return msg

    async def publish(self, subject: str, msg: Any, at: datetime | None = None) -> str:
        """Any event as is (stamped where its meta is unset); returns its event id."""
        if at is not None:
            msg.meta.occurred_at.FromDatetime(at)
        event_id = stamp(msg, producer=subject.split(".")[0])
        await self.js.publish(subject, msg.SerializeToString(), headers={"Nats-Msg-Id": event_id})
        self.published += 1
        return event_id

    async def verify(self, s: Student, mid: str, group: int, status: int) -> None:
        await self._pub(
            "roster.membership.verified",
            roster_events.MembershipVerified(
                membership_id=mid,
                student_id=s.student_id,
                school_org_code=s.school[0],
                group=group,  # type: ignore[arg-type]
                verification_status=status,  # type: ignore[arg-type]
            ),
        )

    async def end_membership(self, s: Student, mid: str, group: int, ended_on: str) -> None:
        await self._pub(
            "roster.membership.ended",
            roster_events.MembershipEnded(
                membership_id=mid,
                student_id=s.student_id,
                school_org_code=s.school[0],
                group=group,  # type: ignore[arg-type]
                ended_on=ended_on,
            ),
        )

    async def recognition(self, s: Student, school_year: str, term: int, level: int) -> None:
        await self._pub(
            "roster.recognition.recorded",
            roster_events.RecognitionRecorded(
                recognition_id=f"G{next(_serial)}",
                student_id=s.student_id,
                id_number_blind_index=s.blind_index,
                school_org_code=s.school[0],
                school_org_path=s.school[4],
                school_year=school_year,
                term=term,  # type: ignore[arg-type]
                level=level,  # type: ignore[arg-type]
            ),
        )

    async def period(
        self, p: tuple[str, int], *, deadline_on: str = "", closed: bool = False
    ) -> None:
        if closed:
            await self._pub("aid.period.closed", aid_events.PeriodClosed(period=period_pb(p)))
            return
        await self._pub(
            "aid.period.opened",
            aid_events.PeriodOpened(period=period_pb(p), deadline_on=deadline_on),
        )

    async def project(
        self,
        code: str,
        *,
        category: int = NEED,
        stage: int = 2,
        tiers: tuple[int, ...] = (75000,),
        exclusions: tuple[str, ...] = (),
        min_level: int = 0,
    ) -> None:
        project = aid_pb2.Project(
            project_code=code,
            name=f"项目{code}",
            category=category,  # type: ignore[arg-type]
            stage=stage,  # type: ignore[arg-type]
            tiers=[aid_pb2.AmountTier(tier_code=str(i), amount_fen=a) for i, a in enumerate(tiers)],
            exclusions=[aid_pb2.Exclusion(project_code=x, scope=1) for x in exclusions],  # type: ignore[arg-type]
            min_hardship_level=min_level,  # type: ignore[arg-type]
            status=aid_pb2.PROJECT_STATUS_ACTIVE,
        )
        await self._pub(
            "aid.project.created", aid_events.ProjectCreated(project_code=code, project=project)
        )

    async def approve(
        self,
        s: Student,
        project: str,
        period: tuple[str, int],
        *,
        category: int = NEED,
        amount_fen: int = 75000,
        school: tuple | None = None,
        record_id: str = "",
        stage: int | None = None,
        student_name: str | None = None,
    ) -> str:
        """An approved record; its name is the student's unless student_name says otherwise."""
        rid = record_id or f"R{next(_serial):06d}"
        school = school or s.school
        await self._pub(
            "aid.record.approved",
            aid_events.RecordApproved(
                record_id=rid,
                student_id=s.student_id,
                student_name=s.name if student_name is None else student_name,
                id_number_blind_index=s.blind_index,
                school_org_code=school[0],
                school_org_path=school[4],
                project_code=project,
                project_category=category,  # type: ignore[arg-type]
                period=period_pb(period),
                amount_fen=amount_fen,
                stage=stage if stage is not None else s.stage,  # type: ignore[arg-type]
                approved_level=common_pb2.ORG_LEVEL_COUNTY,
            ),
        )
        return rid

    async def revoke(self, s: Student, rid: str, project: str, period: tuple[str, int]) -> None:
        await self._pub(
            "aid.record.revoked",
            aid_events.RecordRevoked(
                record_id=rid,
                student_id=s.student_id,
                id_number_blind_index=s.blind_index,
                school_org_code=s.school[0],
                school_org_path=s.school[4],
                project_code=project,
                project_category=NEED,
                period=period_pb(period),
                amount_fen=75000,
                stage=s.stage,  # type: ignore[arg-type]
                reason="发放错误",
            ),
        )

    async def allocation(self, project: str, fiscal_year: str, to: tuple, amount_fen: int) -> None:
        await self._pub(
            "funding.allocation.made",
            funding_events.AllocationMade(
                allocation_id=f"A{next(_serial)}",
                project_code=project,
                fiscal_year=fiscal_year,
                from_org_code=to[3],
                to_org_code=to[0],
                to_org_path=to[4],
                amount_fen=amount_fen,
            ),
        )


@dataclass
class Clock:
    """A clock the test sets instead of sleeping."""

    now: datetime = field(default_factory=lambda: datetime(2024, 11, 20, 3, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@dataclass
class World:
    """The service, its stub, the feed, the clock and the consumers."""

    services: ReconcileServices
    stub: reconcile_pb2_grpc.ReconcileServiceStub
    feed: Feed
    clock: Clock
    db: Database
    js: JetStreamContext
    consumers: list[DurableConsumer]
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start_consumers(self) -> None:
        """Run the durable consumers (as the service's runtime does)."""
        self.stop = asyncio.Event()
        self.tasks = [asyncio.create_task(c.run(self.stop)) for c in self.consumers]

    async def stop_consumers(self) -> None:
        """Stop them (a service shutting down)."""
        await self.sync()  # nothing in flight: cancelling does not cut a batch
        self.stop.set()
        for task in self.tasks:
            task.cancel()  # instead of waiting out the pull's timeout
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []

    async def sync(self) -> None:
        """Wait until the consumers applied everything published so far."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while True:
            pending = 0
            for c in self.consumers:
                try:
                    info = await self.js.consumer_info(c.stream, c.durable)
                except NotFoundError:  # not (re)created yet by its consumer
                    pending += 1
                    continue
                pending += info.num_pending + info.num_ack_pending
            if pending == 0:
                return
            assert loop.time() < deadline, "consumers did not catch up"
            await asyncio.sleep(0.05)

    async def run(
        self, org_code: str = "440000", *periods: tuple[str, int], verify: bool = False
    ) -> pb.Run:
        """Sync, start a comparison as an operator of org_code and wait for it to finish."""
        await self.sync()
        self.clock.advance(minutes=1)
        resp = await self.stub.RunComparison(
            pb.RunComparisonRequest(
                periods=[period_pb(p) for p in periods],
                org_code=org_code,
                include_verification=verify,
            ),
            metadata=caller(org_code),
            timeout=10,
        )
        await self.services.runs.wait(resp.run.run_id)
        got = await self.stub.GetRun(
            pb.GetRunRequest(run_id=resp.run.run_id), metadata=caller(org_code), timeout=10
        )
        return got.run

    async def unfunded(
        self, org_code: str, period: tuple[str, int] = AUTUMN_2024, **filters: Any
    ) -> list[pb.UnfundedEntry]:
        """Every entry the caller of org_code sees (all pages)."""
        out: list[pb.UnfundedEntry] = []
        token = ""
        page_size = filters.pop("page_size", 100)
        while True:
            resp = await self.stub.ListUnfunded(
                pb.ListUnfundedRequest(
                    period=period_pb(period),
                    page=common_pb2.PageRequest(page_size=page_size, page_token=token),
                    **filters,
                ),
                metadata=caller(org_code, "viewer"),
                timeout=10,
            )
            out += resp.entries
            token = resp.page.next_page_token
            if not token:
                return out

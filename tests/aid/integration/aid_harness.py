"""The aid servicer and the real roster servicer on real gRPC servers (port 0): aid on SQLite or
PostgreSQL, roster on SQLite; both org copies fed the same identity.org.created events; students
synced into roster over gRPC; callers at every level of the demo tree; aid's clock movable."""

from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from aid_service import tables
from aid_service.service import AidServices
from sqlalchemy import select
from zizhu_common.consumer import Event
from zizhu_common.db import Database
from zizhu_common.idnumber import id_check_char
from zizhu_common.rpc import CallerContext
from zizhu_contracts.aid.v1 import aid_pb2, aid_pb2_grpc
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.identity.v1 import events_pb2 as identity_events
from zizhu_contracts.identity.v1 import identity_pb2
from zizhu_contracts.roster.v1 import roster_pb2 as rpb
from zizhu_contracts.roster.v1 import roster_pb2_grpc

NAT = "/000000/"
GD = NAT + "440000/"
GZ = GD + "440100/"
SZ = GD + "440300/"
TH = GZ + "440106/"
BY = GZ + "440111/"
HY = TH + "2144010601/"  # 广州市天河区华阳小学 (义务教育)
MS = TH + "3444010601/"  # 广州市天河中学 (义务教育, 普通高中)
KG = BY + "1144011101/"  # 广州市白云区实验幼儿园 (学前)
BYPS = BY + "2144011102/"  # 广州市白云区第二小学 (义务教育)
ZZ = GZ + "3644010001/"  # 广州市轻工职业学校 (中职, 市属)
SYSU = NAT + "4144010558/"  # 中山大学 (部属高校, under the nation)
SZPS = SZ + "2144030001/"  # 深圳 (outside 广州)

# (code, name, level, parent, path, stages)
ORGS: list[tuple[str, str, int, str, str, list[int]]] = [
    ("000000", "全国", 1, "", NAT, []),
    ("440000", "广东省", 2, "000000", GD, []),
    ("440100", "广州市", 3, "440000", GZ, []),
    ("440300", "深圳市", 3, "440000", SZ, []),
    ("440106", "天河区", 4, "440100", TH, []),
    ("440111", "白云区", 4, "440100", BY, []),
    ("2144010601", "广州市天河区华阳小学", 5, "440106", HY, [2]),
    ("3444010601", "广州市天河中学", 5, "440106", MS, [2, 3]),
    ("1144011101", "广州市白云区实验幼儿园", 5, "440111", KG, [1]),
    ("2144011102", "广州市白云区第二小学", 5, "440111", BYPS, [2]),
    ("3644010001", "广州市轻工职业学校", 5, "440100", ZZ, [4]),
    ("4144010558", "中山大学", 5, "000000", SYSU, [5, 6]),
    ("2144030001", "深圳市福田区第一小学", 5, "440300", SZPS, [2]),
]
LEVELS = {1: "national", 2: "province", 3: "city", 4: "county", 5: "school"}
PERIOD = common_pb2.AidPeriod(school_year="2026-2027", term=common_pb2.TERM_AUTUMN)
SPRING = common_pb2.AidPeriod(school_year="2026-2027", term=common_pb2.TERM_SPRING)
# A fixed "now" inside the autumn term of 2026-2027 (Asia/Shanghai 2026-11-20 10:00).
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def org_events() -> list[Event]:
    """identity.org.created for every org of the test tree, as JetStream would deliver them."""
    out = []
    for seq, (code, name, level, parent, path, stages) in enumerate(ORGS, start=1):
        org = identity_pb2.Org(
            org_code=code, name=name, level=level, parent_code=parent, org_path=path,
            stages=stages, status=identity_pb2.ORG_STATUS_ACTIVE, version=1,
        )  # fmt: skip
        msg = identity_events.OrgCreated(org_code=code, org=org)
        msg.meta.event_id = uuid.uuid4().hex
        out.append(Event(msg.meta.event_id, "identity.org.created", msg.SerializeToString(), seq))
    return out


def who(path: str, *roles: str, account: str = "") -> CallerContext:
    """A caller at the org whose path is given."""
    code = path.strip("/").split("/")[-1]
    level = next(lvl for c, _, lvl, *_ in ORGS if c == code)
    return CallerContext(
        account_id=account or f"{code}-{'-'.join(roles)}",
        org_code=code,
        org_path=path,
        level=LEVELS[level],
        roles=frozenset(roles),
        request_id=uuid.uuid4().hex,
    )


NATION = who(NAT, "operator", "admin")
NATION_AUD = who(NAT, "auditor")
GD_OP = who(GD, "operator", "admin")
GD_AUD = who(GD, "auditor")
GZ_OP = who(GZ, "operator", "admin")
GZ_AUD = who(GZ, "auditor")
TH_OP = who(TH, "operator", "admin")
TH_AUD = who(TH, "auditor")
BY_AUD = who(BY, "auditor")
TH_VIEWER = who(TH, "viewer")
HY_OP = who(HY, "operator")
HY_AUD = who(HY, "auditor")
MS_OP = who(MS, "operator")
MS_AUD = who(MS, "auditor")
KG_OP = who(KG, "operator")
BYPS_OP = who(BYPS, "operator")
ZZ_OP = who(ZZ, "operator")
ZZ_AUD = who(ZZ, "auditor")
SYSU_OP = who(SYSU, "operator")
SYSU_AUD = who(SYSU, "auditor")
SZ_OP = who(SZPS, "operator")

_SEQ = itertools.count(1)


@dataclass(frozen=True)
class Kid:
    """A student synced into roster."""

    student_id: str
    id_number: str
    name: str
    school: str


def new_id_number(*, birth: str = "20120901") -> str:
    """A resident ID number not used before in this test session."""
    n = next(_SEQ)
    first17 = f"4401{n // 1000 % 100:02d}{birth}{n % 1000:03d}"
    return first17 + id_check_char(first17)


@dataclass
class Clock:
    """aid's clock; tests move it instead of sleeping."""

    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now

    def set(self, when: datetime) -> None:
        self.now = when

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@dataclass
class Env:
    """Both services, their stubs and helpers."""

    aid: aid_pb2_grpc.AidServiceStub
    roster: roster_pb2_grpc.RosterServiceStub
    services: AidServices
    db: Database
    clock: Clock
    dialect: str
    made: dict[str, Any] = field(default_factory=dict)

    async def call(self, method: str, request: Any, caller: CallerContext) -> Any:
        """Call an aid RPC as caller."""
        return await getattr(self.aid, method)(request, metadata=caller.to_metadata(), timeout=60)

    async def kids(
        self,
        school_path: str,
        stage: int,
        n: int = 1,
        *,
        hardship: int = 0,
        status: int = rpb.STUDENT_STATUS_IN_SCHOOL,
        grade: str = "2026级",
        class_name: str = "1班",
        **row: Any,
    ) -> list[Kid]:
        """Sync n new students into roster at a school (and record their hardship level)."""
        code = school_path.strip("/").split("/")[-1]
        school_op = who(school_path, "operator")
        rows = []
        for _ in range(n):
            idn = new_id_number()
            rows.append(
                rpb.StudentSyncRow(
                    id_type=common_pb2.ID_TYPE_RESIDENT_ID,
                    id_number=idn,
                    name=f"学生{idn[-6:]}",
                    gender=rpb.GENDER_MALE if int(idn[16]) % 2 else rpb.GENDER_FEMALE,
                    birth_date=f"{idn[6:10]}-{idn[10:12]}-{idn[12:14]}",
                    school_org_code=code,
                    stage=stage,
                    student_number="G" + idn,
                    grade=grade,
                    class_name=class_name,
                    status=status,
                    **{"enrolled_on": "2026-09-01", **row},
                )  # fmt: skip
            )
        kids: list[Kid] = []
        for start in range(0, len(rows), 2000):
            part = rows[start : start + 2000]
            resp = await self.roster.SyncStudents(
                rpb.SyncStudentsRequest(source_system="学籍系统", rows=part),
                metadata=school_op.to_metadata(),
                timeout=120,
            )
            kids += [
                Kid(sid, r.id_number, r.name, code)
                for sid, r in zip(resp.student_ids, part, strict=True)
            ]
        if hardship:
            for k in kids:
                await self.roster.RecognizeHardship(
                    rpb.RecognizeHardshipRequest(
                        student_id=k.student_id, school_year="2026-2027",
                        term=common_pb2.TERM_AUTUMN, level=hardship, recognized_on="2026-10-01",
                    ),
                    metadata=school_op.to_metadata(),
                    timeout=30,
                )  # fmt: skip
        return kids

    async def subjects(self) -> list[str]:
        """Subjects written to aid's outbox, in order."""
        async with self.db.read() as session:
            rows = await session.execute(
                select(tables.outbox_event.c.subject).order_by(tables.outbox_event.c.id)
            )
            return list(rows.scalars())

    async def events(self, subject: str, cls: Any) -> list[Any]:
        """Decoded outbox events of a subject, in order."""
        async with self.db.read() as session:
            rows = await session.execute(
                select(tables.outbox_event.c.payload)
                .where(tables.outbox_event.c.subject == subject)
                .order_by(tables.outbox_event.c.id)
            )
            return [cls.FromString(p) for p in rows.scalars()]

    async def enter(
        self, caller: CallerContext, project: str, kid: Kid, *, period: Any = PERIOD, **kw: Any
    ) -> aid_pb2.AidRecord:
        """EnterRecord for a kid (by ID number and name)."""
        resp = await self.call(
            "EnterRecord",
            aid_pb2.EnterRecordRequest(
                project_code=project, period=period, id_type=common_pb2.ID_TYPE_RESIDENT_ID,
                id_number=kid.id_number, student_name=kid.name, **kw,
            ),
            caller,
        )  # fmt: skip
        return resp.record

    async def submit(self, caller: CallerContext, ids: list[str]) -> Any:
        """SubmitRecords."""
        return await self.call(
            "SubmitRecords", aid_pb2.SubmitRecordsRequest(record_ids=ids), caller
        )

    async def approve(self, caller: CallerContext, ids: list[str], opinion: str = "同意") -> Any:
        """AuditRecords APPROVE."""
        return await self.call(
            "AuditRecords",
            aid_pb2.AuditRecordsRequest(
                record_ids=ids, decision=aid_pb2.AUDIT_DECISION_APPROVE, opinion=opinion
            ),
            caller,
        )

    async def give_back(self, caller: CallerContext, ids: list[str], reason: str) -> Any:
        """AuditRecords RETURN."""
        return await self.call(
            "AuditRecords",
            aid_pb2.AuditRecordsRequest(
                record_ids=ids, decision=aid_pb2.AUDIT_DECISION_RETURN, opinion=reason
            ),
            caller,
        )

    async def record(self, caller: CallerContext, record_id: str) -> aid_pb2.AidRecord:
        """GetRecord."""
        return (
            await self.call("GetRecord", aid_pb2.GetRecordRequest(record_id=record_id), caller)
        ).record

    async def project(self, caller: CallerContext, **kw: Any) -> aid_pb2.Project:
        """CreateProject with a unique code (prefix kw["project_code"])."""
        kw["project_code"] = f"{kw.get('project_code', 'T')}-{next(_SEQ)}"
        resp = await self.call("CreateProject", aid_pb2.CreateProjectRequest(**kw), caller)
        return resp.project


async def refused(coro: Any, status: grpc.StatusCode, code: str | None = None) -> dict[str, Any]:
    """Await a call that must fail with status (and stable code); returns the error body."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await coro
    err = info.value
    assert err.code() == status, (err.code(), err.details())
    body = json.loads(dict(err.trailing_metadata() or ())["zizhu-error-bin"])
    if code is not None:
        assert body["code"] == code, body
    assert body["message"] and not body["message"].isascii(), body  # Chinese, for people
    return body

"""A running funding service for tests: migrated database, gRPC servicer on a real channel,
outbox relay and both durable consumers on a private JetStream, and builders of the identity
and aid events that feed it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from funding_service.service import FundingServices
from google.protobuf.message import Message
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from zizhu_common.consumer import DurableConsumer
from zizhu_common.db import Database
from zizhu_common.messaging import EVENT_ID_HEADER, ensure_producer_stream
from zizhu_common.outbox import Outbox, OutboxRelay, stamp
from zizhu_common.rpc import CallerContext
from zizhu_contracts.aid.v1 import aid_pb2
from zizhu_contracts.aid.v1 import events_pb2 as aid_events
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.funding.v1 import funding_pb2, funding_pb2_grpc
from zizhu_contracts.identity.v1 import events_pb2 as identity_events
from zizhu_contracts.identity.v1 import identity_pb2

LEVELS = {
    "national": common_pb2.ORG_LEVEL_NATIONAL,
    "province": common_pb2.ORG_LEVEL_PROVINCE,
    "city": common_pb2.ORG_LEVEL_CITY,
    "county": common_pb2.ORG_LEVEL_COUNTY,
    "school": common_pb2.ORG_LEVEL_SCHOOL,
}

# (code, name, level, parent): the demo tree of identity, plus a second province.
TREE = [
    ("000000", "全国", "national", None),
    ("440000", "广东省", "province", "000000"),
    ("440100", "广州市", "city", "440000"),
    ("440106", "天河区", "county", "440100"),
    ("440111", "白云区", "county", "440100"),
    ("2144010601", "广州市天河区华阳小学", "school", "440106"),
    ("3444010601", "广州市天河中学", "school", "440106"),
    ("1144011101", "广州市白云区实验幼儿园", "school", "440111"),
    ("3644010001", "广州市轻工职业学校", "school", "440100"),
    ("4144010558", "中山大学", "school", "000000"),
    ("450000", "广西壮族自治区", "province", "000000"),
]


def paths() -> dict[str, str]:
    """Materialised path of every org of TREE."""
    out: dict[str, str] = {}
    for code, _name, _level, parent in TREE:
        out[code] = (out[parent] if parent else "/") + code + "/"
    return out


PATHS = paths()
LEVEL_OF = {code: level for code, _n, level, _p in TREE}

CENTRAL, PROVINCE, CITY, COUNTY, SCHOOL, SOCIAL = (
    funding_pb2.FUND_SOURCE_CENTRAL,
    funding_pb2.FUND_SOURCE_PROVINCE,
    funding_pb2.FUND_SOURCE_CITY,
    funding_pb2.FUND_SOURCE_COUNTY,
    funding_pb2.FUND_SOURCE_SCHOOL,
    funding_pb2.FUND_SOURCE_SOCIAL,
)


def caller(code: str, *roles: str) -> CallerContext:
    """A user of the org (operator unless roles are given)."""
    return CallerContext(
        account_id=f"acct-{code}-{'-'.join(roles) or 'operator'}",
        org_code=code,
        org_path=PATHS[code],
        level=LEVEL_OF[code],
        roles=frozenset(roles or ("operator",)),
        request_id=uuid.uuid4().hex,
    )


def md(code: str, *roles: str) -> list[tuple[str, str]]:
    """gRPC metadata of a user of the org."""
    return caller(code, *roles).to_metadata()


def org_created(code: str, name: str, level: str, parent: str | None, path: str) -> Message:
    """identity.org.created."""
    org = identity_pb2.Org(
        org_code=code,
        name=name,
        level=LEVELS[level],
        parent_code=parent or "",
        org_path=path,
        status=identity_pb2.ORG_STATUS_ACTIVE,
        version=1,
    )
    return identity_events.OrgCreated(org_code=code, org=org)


def tree_events() -> list[tuple[str, Message]]:
    """identity.org.created for every org of TREE."""
    return [
        ("identity.org.created", org_created(code, name, level, parent, PATHS[code]))
        for code, name, level, parent in TREE
    ]


def project_created(
    code: str, name: str, owner: str = "000000", category: int = common_pb2.AID_CATEGORY_NEED_BASED
) -> tuple[str, Message]:
    """aid.project.created."""
    project = aid_pb2.Project(
        project_code=code,
        name=name,
        owner_org_code=owner,
        owner_org_path=PATHS[owner],
        owner_level=LEVELS[LEVEL_OF[owner]],
        category=category,  # type: ignore[arg-type]
        status=aid_pb2.PROJECT_STATUS_ACTIVE,
    )
    return "aid.project.created", aid_events.ProjectCreated(project_code=code, project=project)


def record_approved(
    record_id: str,
    school: str,
    project: str,
    amount_fen: int,
    *,
    school_year: str = "2024-2025",
    term: int = common_pb2.TERM_AUTUMN,
    at: datetime | None = None,
) -> tuple[str, Message]:
    """aid.record.approved."""
    msg = aid_events.RecordApproved(
        record_id=record_id,
        student_id=f"S-{record_id}",
        school_org_code=school,
        school_org_path=PATHS[school],
        project_code=project,
        project_category=common_pb2.AID_CATEGORY_NEED_BASED,
        period=common_pb2.AidPeriod(school_year=school_year, term=term),  # type: ignore[arg-type]
        amount_fen=amount_fen,
        approved_level=common_pb2.ORG_LEVEL_COUNTY,
    )
    msg.approved_at.FromDatetime(at or datetime.now(UTC))
    return "aid.record.approved", msg


def record_revoked(
    record_id: str,
    school: str,
    project: str,
    amount_fen: int,
    *,
    school_year: str = "2024-2025",
    term: int = common_pb2.TERM_AUTUMN,
    at: datetime | None = None,
) -> tuple[str, Message]:
    """aid.record.revoked."""
    msg = aid_events.RecordRevoked(
        record_id=record_id,
        student_id=f"S-{record_id}",
        school_org_code=school,
        school_org_path=PATHS[school],
        project_code=project,
        period=common_pb2.AidPeriod(school_year=school_year, term=term),  # type: ignore[arg-type]
        amount_fen=amount_fen,
        reason="学籍信息有误",
    )
    msg.revoked_at.FromDatetime(at or datetime.now(UTC))
    return "aid.record.revoked", msg


def line(to: str, source: int, yuan: int, note: str = "") -> funding_pb2.AllocationLine:
    """An allocation line of whole yuan."""
    return funding_pb2.AllocationLine(
        to_org_code=to, source=source, amount_fen=yuan * 100, note=note
    )  # type: ignore[arg-type]


def allocate_request(
    project: str,
    lines: Iterable[funding_pb2.AllocationLine],
    *,
    year: str = "2024",
    document: str = "财教〔2024〕1号",
    from_org: str = "",
) -> funding_pb2.AllocateFundsRequest:
    """An AllocateFundsRequest."""
    return funding_pb2.AllocateFundsRequest(
        project_code=project,
        fiscal_year=year,
        from_org_code=from_org,
        document_number=document,
        document_date="2024-03-01",
        lines=list(lines),
    )


@dataclass
class Harness:
    """The service under test and its event plumbing."""

    services: FundingServices
    stub: funding_pb2_grpc.FundingServiceStub
    db: Database
    outbox: Outbox
    relay: OutboxRelay
    nc: NatsClient
    js: JetStreamContext
    consumers: dict[str, DurableConsumer]
    published: dict[str, int] = field(default_factory=lambda: {"identity": 0, "aid": 0})

    async def publish(self, events: Iterable[tuple[str, Message]]) -> None:
        """Publish events into the producers' streams, as identity and aid would."""
        for subject, msg in events:
            producer = subject.split(".", 1)[0]
            await ensure_producer_stream(
                self.js, producer=producer, duplicate_window_s=120, replicas=1
            )
            event_id = stamp(msg, producer=producer)
            await self.js.publish(
                subject, msg.SerializeToString(), headers={EVENT_ID_HEADER: event_id}
            )
            self.published[producer] += 1

    async def settle(self) -> None:
        """Wait (at most 30 s) until both consumers applied everything published."""

        def done() -> bool:
            return all(
                c.applied_total + c.duplicates_total >= self.published[name]
                for name, c in self.consumers.items()
            )

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while True:
            if done():
                return
            if loop.time() > deadline:
                raise AssertionError(f"consumers did not catch up: {self.published}")
            await asyncio.sleep(0.02)

    async def feed(self, events: Iterable[tuple[str, Message]]) -> None:
        """Publish and wait until applied."""
        await self.publish(events)
        await self.settle()

    async def relay_all(self) -> int:
        """Publish every pending outbox row now; returns how many."""
        total = 0
        while n := await self.relay.relay_once():
            total += n
        return total

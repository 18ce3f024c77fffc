"""aid's part of the `make run` demo: seeded through the service layer against the real roster
(whose own demo runs first), idempotent, with records in every state of the audit chain."""

from __future__ import annotations

from datetime import UTC, datetime

from aid_harness import GZ_AUD, TH_AUD, Env
from aid_service.demo import current_period, seed_demo
from aid_service.domain.enums import Term
from roster_service.demo import seed_demo as seed_roster_demo
from roster_service.service import RosterServices
from zizhu_contracts.aid.v1 import aid_pb2
from zizhu_contracts.common.v1 import common_pb2


def test_current_period_follows_the_terms() -> None:
    assert current_period(datetime(2026, 11, 22, tzinfo=UTC)).school_year == "2026-2027"
    assert current_period(datetime(2027, 1, 20, tzinfo=UTC)).term is Term.AUTUMN
    spring = current_period(datetime(2027, 3, 1, tzinfo=UTC))
    assert (spring.school_year, spring.term) == ("2026-2027", Term.SPRING)


async def test_demo_seeds_projects_windows_and_records_idempotently(
    env: Env, roster_services: RosterServices
) -> None:
    await seed_roster_demo(roster_services, wait_s=5)
    await seed_demo(env.services, wait_s=5)
    first = await env.call("ListRecords", aid_pb2.ListRecordsRequest(), GZ_AUD)
    await seed_demo(env.services, wait_s=5)
    again = await env.call("ListRecords", aid_pb2.ListRecordsRequest(), GZ_AUD)
    assert first.page.total == again.page.total >= 5
    statuses = {r.status for r in again.records}
    assert {aid_pb2.RECORD_STATUS_DRAFT, aid_pb2.RECORD_STATUS_PENDING_SCHOOL_AUDIT,
            aid_pb2.RECORD_STATUS_APPROVED} <= statuses  # fmt: skip
    queue = await env.call(
        "ListRecords", aid_pb2.ListRecordsRequest(pending_org_code="440106"), TH_AUD
    )
    assert queue.page.total >= 1
    got = await env.call("GetProject", aid_pb2.GetProjectRequest(project_code="GZ-ZZ-SHBZ"), GZ_AUD)
    assert got.project.name == "广州市中职学生生活补助"
    period = common_pb2.AidPeriod(school_year="2026-2027", term=common_pb2.TERM_AUTUMN)
    windows = await env.call("GetEffectiveWindows", aid_pb2.GetEffectiveWindowsRequest(
        project_code="GJ-XQ-ZFZZ", period=period, org_code="440100"), GZ_AUD)  # fmt: skip
    entry = next(w for w in windows.windows if w.phase == aid_pb2.WINDOW_PHASE_ENTRY)
    # Seed 003 part 三: preschool entry ends on 25 January, 24:00 Beijing time.
    assert not entry.window.is_default
    assert entry.window.ends_at.ToDatetime(tzinfo=UTC) == datetime(2027, 1, 25, 16, 0, tzinfo=UTC)

"""Demo data of the embedded default (`make run`): the national catalogue, the current aid period,
a 广州市 and a school project, the preschool windows of seed 003 part 三, and records at the
demo schools in every state of the audit chain.

Written through the service layer, on the running service's database and outbox (its relay
publishes the events), acting as the demo orgs' operators and auditors; roster is asked over
gRPC for the demo students (its demo runs first). Idempotent: what exists is left alone. The org
read copy comes from identity's events, so seeding waits until the demo orgs have arrived.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, time, timedelta

from zizhu_common.errors import AlreadyExists, DomainError
from zizhu_common.rpc import CallerContext

from aid_service.domain.enums import (
    Category,
    Decision,
    OwnerType,
    Phase,
    RecordStatus,
    Stage,
)
from aid_service.domain.periods import TZ, AidPeriod, current_period
from aid_service.domain.projects import AmountTier
from aid_service.service import AidServices
from aid_service.service.projects import ProjectCreate
from aid_service.service.records import ListFilter, RecordInput

log = logging.getLogger(__name__)

SYSTEM = CallerContext.system(job="aid-demo")
PATHS = {
    "000000": "/000000/",
    "440000": "/000000/440000/",
    "440100": "/000000/440000/440100/",
    "440106": "/000000/440000/440100/440106/",
    "2144010601": "/000000/440000/440100/440106/2144010601/",  # 广州市天河区华阳小学
    "3444010601": "/000000/440000/440100/440106/3444010601/",  # 广州市天河中学
    "1144011101": "/000000/440000/440100/440111/1144011101/",  # 广州市白云区实验幼儿园
    "3644010001": "/000000/440000/440100/3644010001/",  # 广州市轻工职业学校
}
CITY_PROJECT = "GZ-ZZ-SHBZ"
SCHOOL_PROJECT = "TH-ZX-XZJ"


def _as(code: str, level: str, role: str) -> CallerContext:
    return CallerContext(
        account_id=f"demo:{code}-{role}",
        org_code=code,
        org_path=PATHS[code],
        level=level,
        roles=frozenset({role}),
    )


async def _wait_for_orgs(services: AidServices, timeout_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        async with services.deps.db.read() as session:
            found = await services.deps.orgs.get_many(session, list(PATHS))
        if len(found) == len(PATHS):
            return
        if loop.time() > deadline:
            raise RuntimeError(
                f"aid has not received identity's demo orgs: {sorted(set(PATHS) - set(found))}"
            )
        await asyncio.sleep(0.5)


async def _project(services: AidServices, caller: CallerContext, req: ProjectCreate) -> None:
    try:
        await services.projects.create(caller, req)
    except AlreadyExists:
        pass


async def seed_demo(services: AidServices, *, wait_s: float = 120.0) -> None:
    """Create aid's demo data (idempotent)."""
    await _wait_for_orgs(services, wait_s)
    await services.projects.ensure_catalogue(SYSTEM)
    period = current_period(services.deps.now())
    try:
        await services.projects.open_period(SYSTEM, period)
    except AlreadyExists:
        pass
    await _project(services, _as("440100", "city", "operator"), ProjectCreate(
        project_code=CITY_PROJECT, name="广州市中职学生生活补助", owner_type=int(OwnerType.LOCAL_GOVERNMENT),
        stage=int(Stage.SECONDARY_VOCATIONAL), category=int(Category.NEED_BASED),
        tiers=(AmountTier("1", "一档", 100000), AmountTier("2", "二档", 50000)),
        policy_basis="广州市地方政府资助项目（演示）",
    ))  # fmt: skip
    await _project(services, _as("3444010601", "school", "operator"), ProjectCreate(
        project_code=SCHOOL_PROJECT, name="天河中学校长奖学金", owner_type=int(OwnerType.SCHOOL),
        stage=int(Stage.GENERAL_HIGH_SCHOOL), category=int(Category.MERIT),
        tiers=(AmountTier("1", "一等", 100000), AmountTier("2", "二等", 50000)), quota_per_school=20,
    ))  # fmt: skip
    await _preschool_windows(services, period)
    await _records(services, period)
    log.info("aid demo data ready for %s", period.label)


async def _preschool_windows(services: AidServices, period: AidPeriod) -> None:
    """Seed 003 part 三: preschool government aid has entry and audit windows (填报截止时间)."""
    first_day, _, deadline = period.default_dates()
    # 25 January (or July), 24:00: the next day's 00:00.
    entry_end = datetime.combine(deadline - timedelta(days=5), time(0), tzinfo=TZ)
    start = datetime.combine(first_day, time(0), tzinfo=TZ)
    national = _as("000000", "national", "operator")
    for phase, end in (
        (Phase.ENTRY, entry_end),
        (Phase.SCHOOL_AUDIT, entry_end),
        (Phase.AUTHORITY_AUDIT, datetime.combine(deadline + timedelta(days=1), time(0), tzinfo=TZ)),
    ):
        windows, _, _ = await services.windows.list_windows(
            national, project_code="GJ-XQ-ZFZZ", period=period, phase=phase, org_code="",
            include_extensions=False, page_size=10, page_token="",
        )  # fmt: skip
        if not windows:
            await services.windows.set_window(
                national, project_code="GJ-XQ-ZFZZ", period=period, phase=phase, org_code="",
                starts_at=start, ends_at=end,
            )  # fmt: skip


async def _records(services: AidServices, period: AidPeriod) -> None:
    """Records at 华阳小学 (national subsidies up the chain), 天河中学 (school scholarship) and 轻工职业学校
    (city subsidy): some drafts, some waiting at the school, the county or the city, some approved."""
    roster = services.deps.roster
    hy_op, hy_aud = _as("2144010601", "school", "operator"), _as("2144010601", "school", "auditor")
    th_aud = _as("440106", "county", "auditor")
    students = await roster.list_students(
        hy_op, school_org_code="2144010601", stage=Stage.COMPULSORY, school_year=period.school_year
    )
    entered: list[str] = []
    for s in students:
        if s.hardship_level is None:
            continue
        project = "GJ-YW-JSSBZ-XX" if s.boarder else "GJ-YW-FJSSBZ-XX"
        entered += await _enter(
            services, hy_op, RecordInput(project, period, student_id=s.student_id)
        )
    await _advance(services, hy_op, [hy_aud, th_aud], entered)
    ms_op, ms_aud = _as("3444010601", "school", "operator"), _as("3444010601", "school", "auditor")
    students = await roster.list_students(
        ms_op,
        school_org_code="3444010601",
        stage=Stage.GENERAL_HIGH_SCHOOL,
        school_year=period.school_year,
    )
    entered = []
    for s in students[:3]:
        entered += await _enter(
            services,
            ms_op,
            RecordInput(SCHOOL_PROJECT, period, student_id=s.student_id, tier_code="1"),
        )
    await _advance(services, ms_op, [ms_aud], entered)
    zz_op, zz_aud = _as("3644010001", "school", "operator"), _as("3644010001", "school", "auditor")
    students = await roster.list_students(
        zz_op,
        school_org_code="3644010001",
        stage=Stage.SECONDARY_VOCATIONAL,
        school_year=period.school_year,
    )
    entered = []
    for s in students[:2]:
        entered += await _enter(
            services,
            zz_op,
            RecordInput(CITY_PROJECT, period, student_id=s.student_id, tier_code="2"),
        )
    await _advance(services, zz_op, [zz_aud], entered)


async def _enter(services: AidServices, caller: CallerContext, req: RecordInput) -> list[str]:
    try:
        return [(await services.records.enter(caller, req)).record_id]
    except AlreadyExists:
        return []
    except DomainError as exc:
        log.warning("demo record for %s not entered: %s", req.student_id, exc.message)
        return []


async def _advance(
    services: AidServices, operator: CallerContext, auditors: list[CallerContext], ids: list[str]
) -> None:
    """Leave the first record as a draft, submit the rest, and move them up one level fewer each."""
    if len(ids) < 2:
        return
    await services.records.submit(operator, ids[1:])
    remaining = ids[2:]
    for auditor in auditors:
        if not remaining:
            return
        await services.audit.decide(
            auditor, decision=int(Decision.APPROVE), opinion="同意（演示）", record_ids=remaining
        )
        remaining = remaining[1:]


async def demo_summary(services: AidServices) -> dict[str, int]:
    """Records by status (for the launcher's log)."""
    records, _, _, _, _, _ = await services.reads.page(
        SYSTEM, ListFilter(), page_size=1000, page_token=""
    )
    out: dict[str, int] = {}
    for r in records:
        out[RecordStatus(r.status).label] = out.get(RecordStatus(r.status).label, 0) + 1
    return out


__all__ = ["current_period", "demo_summary", "seed_demo"]

"""Demo data of the embedded default (`make run`): reconcile's own part.

Everything reconcile compares arrives as events from identity, roster and aid (their demos seed
students, special groups, projects, an open period and records). This seed, called with the
running service's ReconcileServices (service layer, system caller), adds what only reconcile
holds, then runs the first comparison so the unfunded list and statistics are not empty:

- the retired 建档立卡 report's history (脱贫家庭学生未资助情况) for a few demo special-group
  students: autumn 2023 (carried over into the new module) and spring 2023 (history only). The
  old system's rows would carry full ID numbers; the demo writes the same person key (blind
  index) and masked number roster published, so no ID number is needed here;
- a quota (名额) for 天河区 on a need-based demo project, so R09 has something to check;
- one comparison with data verification over every open period.

Idempotent: history rows are keyed by period × project × person, the quota is replaced, and a
second comparison changes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

from sqlalchemy import select
from zizhu_common.rpc import CallerContext

from reconcile_service import tables as t
from reconcile_service.domain.periods import AUTUMN, SPRING, Period
from reconcile_service.repository import records as record_repo
from reconcile_service.repository.comparison import carry_legacy_reasons
from reconcile_service.repository.readcopy import period_keys
from reconcile_service.repository.runs import get_org
from reconcile_service.repository.runs import open_periods as list_open
from reconcile_service.service import ReconcileServices
from reconcile_service.service.runs import CARRY_OVER_PERIOD

log = logging.getLogger(__name__)

SYSTEM = CallerContext.system(job="demo")
DEMO_SCHOOLS = ("2144010601", "3444010601", "1144011101", "3644010001", "4144010558")
LEGACY_PROJECT = ("GJ-YW-JSSBZ", "寄宿生生活补助")
LEGACY_REASONS = [
    ("02", "学生或监护人自愿放弃", ""),
    ("99", "外出务工家庭，联系不上监护人", "外出务工家庭，联系不上监护人"),
    ("03", "经认定不困难", ""),
]
QUOTA_COUNTY = "440106"
QUOTA_PLACES = 50


async def _wait_for_copy(services: ReconcileServices, wait_s: float) -> list[Any]:
    """Demo special-group students of the read copy (waits for roster's events)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    m, s = t.membership, t.student
    while True:
        async with services.deps.db.read() as session:
            rows = (
                await session.execute(
                    select(
                        s.c.student_key,
                        s.c.name,
                        s.c.id_number_blind_index,
                        s.c.id_number_masked,
                        m.c.school_org_code,
                        m.c.school_org_path,
                    )
                    .join(m, m.c.student_key == s.c.student_key)
                    .where(m.c.school_org_code.in_(DEMO_SCHOOLS), s.c.id_number_blind_index != "")
                    .order_by(s.c.student_key)
                )
            ).all()
        if rows or loop.time() > deadline:
            return list({r.student_key: r for r in rows}.values())
        await asyncio.sleep(0.5)


async def seed_demo(services: ReconcileServices, *, wait_s: float = 120.0) -> dict[str, int]:
    """Create reconcile's demo data (idempotent) and run the first comparison."""
    students = await _wait_for_copy(services, wait_s)
    if not students:
        log.warning("reconcile demo: no special-group students arrived from roster yet")
    now = services.deps.now()
    history = 0
    async with services.deps.db.write() as session:
        spring_2023 = Period("2022-2023", SPRING)
        keys = await period_keys(
            session,
            [
                (CARRY_OVER_PERIOD.school_year, CARRY_OVER_PERIOD.term),
                (spring_2023.school_year, SPRING),
            ],
        )
        schools = {
            r.org_code: r
            for r in (
                await session.execute(select(t.org).where(t.org.c.org_code.in_(DEMO_SCHOOLS)))
            ).all()
        }
        rows = []
        for i, st in enumerate(students[:3]):
            code, reason, note = LEGACY_REASONS[i % len(LEGACY_REASONS)]
            for period in (CARRY_OVER_PERIOD, spring_2023):
                key = keys[(period.school_year, period.term)]
                legacy_id = hashlib.sha256(
                    f"{period.school_year}|{period.term}|{LEGACY_PROJECT[0]}|"
                    f"{st.id_number_blind_index}".encode()
                ).hexdigest()[:40]
                school = schools.get(st.school_org_code)
                rows.append(
                    {
                        "legacy_id": legacy_id,
                        "period_key": key,
                        "project_code": LEGACY_PROJECT[0],
                        "project_name": LEGACY_PROJECT[1],
                        "id_type": 1,
                        "id_number_blind_index": st.id_number_blind_index,
                        "id_number_masked": st.id_number_masked,
                        "student_name": st.name,
                        "school_org_code": st.school_org_code,
                        "school_org_path": school.org_path if school else st.school_org_path,
                        "school_name": school.name if school else "",
                        "legacy_reason": reason,
                        "reason_code": code,
                        "note": note,
                        "reported_by": "演示学校操作员",
                        "reported_at": now,
                        "imported_at": now,
                    }
                )
        if rows:
            await record_repo.upsert_legacy(session, rows)
            await carry_legacy_reasons(
                session, period_key=keys[(CARRY_OVER_PERIOD.school_year, AUTUMN)]
            )
            history = len(rows)
        project = (
            await session.execute(
                select(t.project.c.project_code)
                .where(t.project.c.category == 1)
                .order_by(t.project.c.project_code)
                .limit(1)
            )
        ).scalar_one_or_none()
    quotas = 0
    async with services.deps.db.read() as session:
        open_periods = await list_open(session)
        county = await get_org(session, QUOTA_COUNTY)
    if project and county and open_periods:
        await services.findings.set_quotas(
            SYSTEM,
            [(project, open_periods[-1].period.school_year, QUOTA_COUNTY, QUOTA_PLACES)],
        )
        quotas = 1
    unfunded = 0
    if open_periods:
        run, _ = await services.runs.request(
            SYSTEM, periods=[], org_code="", include_verification=True
        )
        await services.runs.wait(run.run_id)
        unfunded = run.unfunded_open
    log.info(
        "reconcile demo data ready: %d history rows, %d quota, %d unfunded entries",
        history,
        quotas,
        unfunded,
    )
    return {"history": history, "quotas": quotas, "unfunded": unfunded}

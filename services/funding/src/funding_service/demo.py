"""Demo data of `make run`: fiscal funds of the current year for the demo tree (国家 → 广东省 →
广州市 → 天河区/白云区 → schools, plus 中山大学 under the nation), with each level's own
contribution, and the cost shares of 普通高中国家助学金.

Written through the service layer (AllocationService, CostShareService) with a system caller,
on the running service's database and outbox, so the running relay publishes the events. The
org tree and the projects are read copies fed by identity's and aid's events: the seed waits for
them, since identity and aid seed just before (or beside) funding. Idempotent: a document
already recorded is skipped.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from zizhu_common.rpc import CallerContext

from funding_service.domain.model import AllocationInput, AllocationLineInput, FundSource, ShareLine
from funding_service.service import FundingServices

log = logging.getLogger(__name__)

DEMO_ORGS = (
    "000000", "440000", "440100", "440106", "440111",
    "2144010601", "3444010601", "1144011101", "3644010001", "4144010558",
)  # fmt: skip
# National projects of aid's catalogue the demo schools take part in, and which schools.
DEMO_PROJECTS: dict[str, tuple[str, ...]] = {
    "GJ-PG-ZXJ": ("3444010601",),  # 普通高中国家助学金: 天河中学
    "GJ-YW-JSSBZ-XX": ("2144010601",),  # 寄宿生生活补助（小学）: 华阳小学
    "GJ-XQ-ZFZZ": ("1144011101",),  # 学前教育政府资助: 白云区实验幼儿园
    "GJ-ZZ-ZXJ": ("3644010001",),  # 中职国家助学金: 轻工职业学校 (市属)
    "GJ-BZK-ZXJ": ("4144010558",),  # 本专科生国家助学金: 中山大学 (部属)
}
SHANGHAI = ZoneInfo("Asia/Shanghai")
C, P, CI, CO = FundSource.CENTRAL, FundSource.PROVINCE, FundSource.CITY, FundSource.COUNTY


@dataclass(frozen=True)
class Doc:
    """One demo allocation document: issuer, 文号, lines (to, source, yuan)."""

    from_org: str
    number: str
    lines: tuple[tuple[str, FundSource, int], ...]


def demo_documents(year: str, schools: tuple[str, ...]) -> list[Doc]:
    """The documents funding a project down to its demo schools (amounts in yuan)."""
    school = schools[0]
    if school == "4144010558":  # 部属高校: straight from the nation
        return [
            Doc("000000", f"财教〔{year}〕101号", (("000000", C, 800_000), (school, C, 600_000)))
        ]
    docs = [
        Doc("000000", f"财教〔{year}〕100号", (("000000", C, 500_000), ("440000", C, 300_000))),
        Doc("440000", f"粤财教〔{year}〕200号",
            (("440000", P, 200_000), ("440100", C, 280_000), ("440100", P, 180_000))),
    ]  # fmt: skip
    if school == "3644010001":  # 市属学校
        docs.append(
            Doc("440100", f"穗财教〔{year}〕300号",
                (("440100", CI, 60_000), (school, C, 200_000), (school, P, 120_000),
                 (school, CI, 40_000)))
        )  # fmt: skip
        return docs
    county = "440106" if school in ("2144010601", "3444010601") else "440111"
    docs.append(
        Doc("440100", f"穗财教〔{year}〕300号",
            (("440100", CI, 60_000), (county, C, 220_000), (county, P, 150_000),
             (county, CI, 50_000)))
    )  # fmt: skip
    docs.append(
        Doc(county, f"{'天' if county == '440106' else '白'}财教〔{year}〕400号",
            ((county, CO, 30_000), (school, C, 200_000), (school, P, 120_000),
             (school, CI, 40_000), (school, CO, 20_000)))
    )  # fmt: skip
    return docs


def system_caller() -> CallerContext:
    """The demo seed acts as the system (national scope)."""
    return CallerContext(
        account_id="system:demo",
        org_code="",
        org_path="/",
        level="national",
        roles=frozenset({"system"}),
    )


async def _wait_for_refs(services: FundingServices, wait_s: float) -> list[str]:
    """Wait until identity's demo orgs and aid's projects reached the read copies; returns the
    demo projects present."""
    deps = services.deps
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        async with deps.db.read() as session:
            orgs = await deps.orgs.get_many(session, DEMO_ORGS)
            projects = [c for c in DEMO_PROJECTS if await deps.projects.get(session, c) is not None]
        if len(orgs) == len(DEMO_ORGS) and len(projects) == len(DEMO_PROJECTS):
            return projects
        if loop.time() > deadline:
            if len(orgs) < len(DEMO_ORGS):
                missing = sorted(set(DEMO_ORGS) - set(orgs))
                raise RuntimeError(f"机构数据尚未从 identity 同步到资金服务：{missing}")
            log.warning(
                "demo projects missing in funding's copy: %s",
                sorted(set(DEMO_PROJECTS) - set(projects)),
            )
            return projects
        await asyncio.sleep(0.5)


async def seed_demo(
    services: FundingServices, *, fiscal_year: str | None = None, wait_s: float = 120.0
) -> int:
    """Create the demo allocations and cost shares (idempotent); returns documents written."""
    year = fiscal_year or str(datetime.now(SHANGHAI).year)
    caller = system_caller()
    deps = services.deps
    written = 0
    for project in await _wait_for_refs(services, wait_s):
        for doc in demo_documents(year, DEMO_PROJECTS[project]):
            async with deps.db.read() as session:
                done = await deps.allocations.duplicates(
                    session,
                    document_number=doc.number,
                    project_code=project,
                    fiscal_year=year,
                    from_org_code=doc.from_org,
                )
            if done:
                continue
            await services.allocations.allocate(
                caller,
                AllocationInput(
                    project_code=project,
                    fiscal_year=year,
                    from_org_code=doc.from_org,
                    document_number=doc.number,
                    document_date=f"{year}-03-15",
                    allocated_on="",
                    note="演示数据",
                    lines=tuple(
                        AllocationLineInput(to, int(src), yuan * 100) for to, src, yuan in doc.lines
                    ),
                ),
            )
            written += 1
    if "GJ-PG-ZXJ" in DEMO_PROJECTS and written:
        # 广东 is in the fourth tier of 国办发〔2019〕27号: the centre bears 30 %.
        await services.cost_shares.set(
            caller,
            project_code="GJ-PG-ZXJ",
            fiscal_year=year,
            region_org_code="440000",
            shares=[ShareLine(C, 3000), ShareLine(P, 7000)],
            document_number="国办发〔2019〕27号",
        )
        await services.cost_shares.set(
            caller,
            project_code="GJ-PG-ZXJ",
            fiscal_year=year,
            region_org_code="440100",
            shares=[
                ShareLine(C, 3000),
                ShareLine(P, 3500),
                ShareLine(CI, 1500),
                ShareLine(CO, 2000),
            ],
            document_number=f"粤财教〔{year}〕18号",
        )
    return written

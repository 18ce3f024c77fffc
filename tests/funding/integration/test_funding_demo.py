"""The demo seed of `make run`: funds for the demo tree, cost shares, idempotent."""

from __future__ import annotations

from funding_harness import Harness, md, project_created
from funding_service import tables
from funding_service.demo import DEMO_PROJECTS, seed_demo
from sqlalchemy import func, select
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.funding.v1 import funding_pb2


async def test_demo_seed_funds_every_demo_school_once(funding: Harness) -> None:
    await funding.feed([project_created(code, f"演示项目{code}") for code in DEMO_PROJECTS])
    assert (
        await seed_demo(funding.services, fiscal_year="2026", wait_s=5) == 16
    )  # 4 documents for each county school, 3 for the city's, 1 for the university
    assert await seed_demo(funding.services, fiscal_year="2026", wait_s=5) == 0
    async with funding.db.read() as session:
        count = (
            await session.execute(select(func.count()).select_from(tables.allocation))
        ).scalar_one()
    assert count == 3 * (2 + 3 + 4 + 5) + (2 + 3 + 4) + 2
    county = await funding.stub.FundSummary(
        funding_pb2.FundSummaryRequest(
            fiscal_year="2026", project_code="GJ-PG-ZXJ", expand_direct_schools=True, by_source=True
        ),
        metadata=md("440106"),
    )
    school = next(r for r in county.rows if r.org.org_code == "3444010601")
    assert school.kind == common_pb2.STATS_ROW_KIND_SCHOOL and school.received_fen == 38_000_000
    shares = await funding.stub.ListCostShares(
        funding_pb2.ListCostSharesRequest(fiscal_year="2026"), metadata=md("440106")
    )
    assert [s.region_org_code for s in shares.cost_shares] == ["440000", "440100"]
    university = await funding.stub.FundSummary(
        funding_pb2.FundSummaryRequest(
            fiscal_year="2026", project_code="GJ-BZK-ZXJ", org_code="4144010558"
        ),
        metadata=md("000000"),
    )
    assert university.rows[0].received_fen == 60_000_000


async def test_demo_seed_without_aid_projects_writes_nothing(funding: Harness) -> None:
    assert await seed_demo(funding.services, fiscal_year="2026", wait_s=0) == 0

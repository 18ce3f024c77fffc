"""The demo seed: reconcile's part of `make run` is written and idempotent."""

from __future__ import annotations

from reconcile_service.demo import seed_demo
from reconcile_world import AUTUMN_2023, AUTUMN_2024, HUAYANG, TIANHE, World, caller
from zizhu_contracts.reconcile.v1 import reconcile_pb2 as pb


async def test_demo_seed_adds_history_quota_and_a_first_comparison_idempotently(
    world: World,
) -> None:
    f = world.feed
    await f.org_tree()
    await f.period(AUTUMN_2023)
    await f.period(AUTUMN_2024)
    await f.project("ZXJ")
    for _ in range(4):
        s = await f.student(HUAYANG)
        await f.membership(s, 1)
    await world.sync()
    first = await seed_demo(world.services, wait_s=5)
    assert first == {"history": 6, "quotas": 1, "unfunded": 8}
    world.clock.advance(hours=1)
    again = await seed_demo(world.services, wait_s=5)
    assert again == first
    history = await world.stub.ListLegacyReports(
        pb.ListLegacyReportsRequest(), metadata=caller(HUAYANG[0], "viewer")
    )
    assert history.page.total == 6
    carried = [
        e for e in await world.unfunded(TIANHE[0], AUTUMN_2023) if e.school_reason.carried_over
    ]
    assert len(carried) == 3
    quotas = await world.stub.ListQuotas(
        pb.ListQuotasRequest(), metadata=caller(TIANHE[0], "viewer")
    )
    assert [(q.project_code, q.places) for q in quotas.quotas] == [("ZXJ", 50)]
    runs = await world.stub.ListRuns(pb.ListRunsRequest(), metadata=caller("000000"))
    assert len(runs.runs) == 2 and runs.runs[0].unfunded_opened == 0

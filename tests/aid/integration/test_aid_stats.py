"""Statistics by region × project × period: the authority's total, its directly-run schools and
each child region; never anything outside the caller's subtree."""

from __future__ import annotations

import grpc
from aid_harness import (
    BY_AUD,
    GZ_AUD,
    GZ_OP,
    KG,
    KG_OP,
    MS,
    MS_AUD,
    MS_OP,
    PERIOD,
    TH_AUD,
    ZZ,
    ZZ_OP,
    Env,
    refused,
)
from zizhu_contracts.aid.v1 import aid_pb2
from zizhu_contracts.common.v1 import common_pb2

TOTAL, DIRECT, REGION, SCHOOL = (common_pb2.STATS_ROW_KIND_TOTAL, common_pb2.STATS_ROW_KIND_DIRECT_SCHOOLS,
                                 common_pb2.STATS_ROW_KIND_CHILD_REGION, common_pb2.STATS_ROW_KIND_SCHOOL)  # fmt: skip


async def _stats(env: Env, caller, **kw) -> list[aid_pb2.StatsRow]:
    return list((await env.call("Stats", aid_pb2.StatsRequest(period=PERIOD, **kw), caller)).rows)


async def test_city_view_has_total_direct_schools_and_each_county(env: Env) -> None:
    project = await env.project(
        GZ_OP, project_code="GZ-ST", name="广州市统计测试助学金",
        owner_type=aid_pb2.PROJECT_OWNER_TYPE_LOCAL_GOVERNMENT, stage=common_pb2.STAGE_GENERAL_HIGH_SCHOOL,
        category=common_pb2.AID_CATEGORY_NEED_BASED, tiers=[aid_pb2.AmountTier(amount_fen=10000)],
    )  # fmt: skip
    code = project.project_code
    kids = await env.kids(MS, common_pb2.STAGE_GENERAL_HIGH_SCHOOL, 3)
    ids = [(await env.enter(MS_OP, code, k)).record_id for k in kids]
    await env.submit(MS_OP, ids[:2])
    await env.approve(MS_AUD, ids[:1])
    await env.approve(TH_AUD, ids[:1])
    await env.approve(GZ_AUD, ids[:1])  # the city owns it: last level
    rows = await _stats(env, GZ_AUD, project_code=code, group_by=[aid_pb2.STATS_DIMENSION_ORG])
    kinds = [(r.kind, r.org.org_code) for r in rows]
    assert kinds[0] == (TOTAL, "440100") and kinds[1] == (DIRECT, "440100")
    assert {(REGION, "440106"), (REGION, "440111")} <= set(kinds)
    total = rows[0]
    assert (total.record_count, total.draft_count, total.pending_count, total.approved_count) == (
        3,
        1,
        1,
        1,
    )
    assert total.approved_amount_fen == 10000 and total.unapproved_amount_fen == 20000
    assert total.approved_student_count == 1
    th = next(r for r in rows if r.org.org_code == "440106")
    assert th.org.name == "天河区" and th.record_count == 3
    assert next(r for r in rows if r.org.org_code == "440111").record_count == 0


async def test_figures_never_include_rows_outside_the_subtree(env: Env) -> None:
    [kg_kid] = await env.kids(
        KG, common_pb2.STAGE_PRESCHOOL, hardship=common_pb2.HARDSHIP_LEVEL_SPECIAL
    )
    await env.enter(KG_OP, "GJ-XQ-ZFZZ", kg_kid, tier_code="1")
    [ms_kid] = await env.kids(
        MS, common_pb2.STAGE_COMPULSORY, hardship=common_pb2.HARDSHIP_LEVEL_SPECIAL
    )
    await env.enter(MS_OP, "GJ-YW-JSSBZ-CZ", ms_kid)
    by = await _stats(env, BY_AUD, group_by=[aid_pb2.STATS_DIMENSION_PROJECT])
    assert {r.project_code for r in by} == {"GJ-XQ-ZFZZ"}
    th = await _stats(
        env, TH_AUD, group_by=[aid_pb2.STATS_DIMENSION_ORG], expand_direct_schools=True
    )
    assert all(r.org.org_path.startswith(TH_AUD.org_path) for r in th)
    assert {r.kind for r in th} <= {TOTAL, SCHOOL}
    await refused(_stats(env, BY_AUD, org_code="440106"), grpc.StatusCode.NOT_FOUND)


async def test_city_run_schools_are_the_citys_direct_schools(env: Env) -> None:
    [kid] = await env.kids(ZZ, common_pb2.STAGE_SECONDARY_VOCATIONAL)
    await env.enter(ZZ_OP, "GJ-ZZ-MXF", kid, amount_fen=200000)
    rows = await _stats(env, GZ_AUD, project_code="GJ-ZZ-MXF", group_by=[aid_pb2.STATS_DIMENSION_ORG],
                        expand_direct_schools=True)  # fmt: skip
    school = [r for r in rows if r.kind == SCHOOL]
    assert [r.org.org_code for r in school] == ["3644010001"] and school[0].record_count >= 1
    assert school[0].org.name == "广州市轻工职业学校"
    assert ZZ.endswith("3644010001/")

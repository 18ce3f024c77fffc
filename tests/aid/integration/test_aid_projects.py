"""Projects (资助项目): set up by the level that owns them, national catalogue seeded, rules
checked with nothing written on bad input, visibility by subtree and ancestry."""

from __future__ import annotations

import grpc
from aid_harness import (
    BY_AUD,
    GD_OP,
    GZ_OP,
    HY_OP,
    MS,
    MS_OP,
    NATION,
    PERIOD,
    SZ_OP,
    TH_OP,
    Env,
    refused,
)
from zizhu_contracts.aid.v1 import aid_pb2, events_pb2
from zizhu_contracts.common.v1 import common_pb2

HIGH = common_pb2.STAGE_GENERAL_HIGH_SCHOOL
LOCAL = aid_pb2.PROJECT_OWNER_TYPE_LOCAL_GOVERNMENT
NEED = common_pb2.AID_CATEGORY_NEED_BASED


def _local(**kw: object) -> dict[str, object]:
    values = dict(project_code="P", name="地方助学金", owner_type=LOCAL, stage=HIGH, category=NEED,
                  tiers=[aid_pb2.AmountTier(tier_code="1", name="一档", amount_fen=50000)])  # fmt: skip
    values.update(kw)
    return values


async def test_national_catalogue_is_seeded_with_its_standards(env: Env) -> None:
    listed = await env.call("ListProjects", aid_pb2.ListProjectsRequest(
        owner_types=[aid_pb2.PROJECT_OWNER_TYPE_NATIONAL], page=common_pb2.PageRequest(page_size=100)), NATION)  # fmt: skip
    by_code = {p.project_code: p for p in listed.projects}
    assert by_code["GJ-BZK-ZXJ"].name == "本专科生国家助学金"
    assert [t.amount_fen for t in by_code["GJ-BZK-ZXJ"].tiers] == [250000, 185000, 125000]
    assert [t.amount_fen for t in by_code["GJ-YW-JSSBZ-CZ"].tiers] == [75000]
    gjj = by_code["GJ-BZK-GJJXJ"]
    assert gjj.annual and [t.amount_fen for t in gjj.tiers] == [1000000]
    assert [e.project_code for e in gjj.exclusions] == ["GJ-BZK-LZJXJ"]
    assert by_code["GJ-BZK-LZJXJ"].requires_recognition
    assert list(by_code["GJ-PG-ZXJ"].audit_levels) == [
        common_pb2.ORG_LEVEL_COUNTY, common_pb2.ORG_LEVEL_CITY, common_pb2.ORG_LEVEL_PROVINCE]  # fmt: skip
    names = {p.name for p in listed.projects}
    assert {"寄宿生生活补助（小学）", "学前教育政府资助", "国家助学贷款（本专科生）"} <= names


async def test_each_level_sets_up_only_its_own_kind_of_project(env: Env) -> None:
    city = await env.project(GZ_OP, **_local(project_code="GZ"))
    assert (city.owner_org_code, city.owner_level) == ("440100", common_pb2.ORG_LEVEL_CITY)
    assert list(city.audit_levels) == [common_pb2.ORG_LEVEL_COUNTY, common_pb2.ORG_LEVEL_CITY]
    await refused(
        env.project(MS_OP, **_local(project_code="MS")),
        grpc.StatusCode.PERMISSION_DENIED,
        "PROJECT_OWNER_LEVEL",
    )
    await refused(env.project(GD_OP, **_local(project_code="GD", owner_type=aid_pb2.PROJECT_OWNER_TYPE_NATIONAL)),
                  grpc.StatusCode.PERMISSION_DENIED, "PROJECT_OWNER_LEVEL")  # fmt: skip
    await refused(env.project(GZ_OP, **_local(project_code="SCH", owner_type=aid_pb2.PROJECT_OWNER_TYPE_SCHOOL)),
                  grpc.StatusCode.PERMISSION_DENIED, "PROJECT_OWNER_LEVEL")  # fmt: skip
    school = await env.project(
        MS_OP, **_local(project_code="MSX", owner_type=aid_pb2.PROJECT_OWNER_TYPE_SCHOOL)
    )
    assert list(school.audit_levels) == [] and school.owner_org_path == MS
    # A city project may not be re-audited by the province above it.
    await refused(env.project(GZ_OP, **_local(project_code="GZ2", audit_levels=[common_pb2.ORG_LEVEL_PROVINCE])),
                  grpc.StatusCode.INVALID_ARGUMENT, "AUDIT_LEVELS_INVALID")  # fmt: skip


async def test_bad_project_input_is_refused_with_the_field_and_nothing_is_written(env: Env) -> None:
    cases = [
        (dict(project_code="有 空格"), "PROJECT_CODE_INVALID", "project_code"),
        (dict(name=""), "PROJECT_NAME_INVALID", "name"),
        (dict(tiers=[]), "TIERS_REQUIRED", "tiers"),
        (dict(tiers=[aid_pb2.AmountTier(amount_fen=-5)]), "TIER_AMOUNT_INVALID", "tiers"),
        (dict(stage=0), "STAGE_INVALID", "stage"),
        (dict(allow_custom_amount=True, min_amount_fen=500, max_amount_fen=100), "AMOUNT_RANGE_INVALID", "min_amount_fen"),
        (dict(exclusions=[aid_pb2.Exclusion(project_code="NO-SUCH")]), "EXCLUSION_UNKNOWN", "exclusions"),
        (dict(start_school_year="2026"), "SCHOOL_YEAR_INVALID", "start_school_year"),
    ]  # fmt: skip
    for override, code, field in cases:
        body = await refused(env.call("CreateProject", aid_pb2.CreateProjectRequest(
            **_local(project_code="BAD-X", **{k: v for k, v in override.items() if k != "project_code"}),
        ) if "project_code" not in override else aid_pb2.CreateProjectRequest(**_local(**override)), TH_OP),
            grpc.StatusCode.INVALID_ARGUMENT, code)  # fmt: skip
        assert body["field"] == field, (override, body)
    await refused(
        env.call("GetProject", aid_pb2.GetProjectRequest(project_code="BAD-X"), TH_OP),
        grpc.StatusCode.NOT_FOUND,
    )
    made = await env.call(
        "CreateProject", aid_pb2.CreateProjectRequest(**_local(project_code="DUP-X")), TH_OP
    )
    assert made.project.version == 1
    await refused(env.call("CreateProject", aid_pb2.CreateProjectRequest(**_local(project_code="DUP-X")), TH_OP),
                  grpc.StatusCode.ALREADY_EXISTS, "PROJECT_EXISTS")  # fmt: skip


async def test_projects_are_visible_to_the_owners_subtree_and_its_ancestors_only(env: Env) -> None:
    county = await env.project(TH_OP, **_local(project_code="TH"))
    for insider in (MS_OP, HY_OP, TH_OP, GZ_OP, GD_OP, NATION):
        got = await env.call(
            "GetProject", aid_pb2.GetProjectRequest(project_code=county.project_code), insider
        )
        assert got.project.name == "地方助学金"
    for outsider in (BY_AUD, SZ_OP):
        await refused(env.call("GetProject", aid_pb2.GetProjectRequest(project_code=county.project_code), outsider),
                      grpc.StatusCode.NOT_FOUND, "NOT_FOUND")  # fmt: skip
    mine = await env.call("ListProjects", aid_pb2.ListProjectsRequest(
        applicable_to_org_code="3444010601", page=common_pb2.PageRequest(page_size=500)), MS_OP)  # fmt: skip
    codes = {p.project_code for p in mine.projects}
    assert county.project_code in codes and "GJ-PG-ZXJ" in codes
    assert "GJ-BZK-ZXJ" not in codes  # 本专科 is not taught at 天河中学
    theirs = await env.call("ListProjects", aid_pb2.ListProjectsRequest(
        applicable_to_org_code="1144011101", page=common_pb2.PageRequest(page_size=500)), BY_AUD)  # fmt: skip
    assert county.project_code not in {p.project_code for p in theirs.projects}
    await refused(env.call("ListProjects", aid_pb2.ListProjectsRequest(applicable_to_org_code="3444010601"), BY_AUD),
                  grpc.StatusCode.NOT_FOUND)  # fmt: skip


async def test_owner_updates_a_project_but_stage_is_frozen_once_used(env: Env) -> None:
    project = await env.project(TH_OP, **_local(project_code="UPD"))
    code = project.project_code
    await refused(env.call("UpdateProject", aid_pb2.UpdateProjectRequest(project_code=code, name="改名"), GZ_OP),
                  grpc.StatusCode.FAILED_PRECONDITION, "NOT_PROJECT_OWNER")  # fmt: skip
    upd = await env.call("UpdateProject", aid_pb2.UpdateProjectRequest(
        project_code=code, name="天河区助学金", tiers=aid_pb2.AmountTierList(tiers=[
            aid_pb2.AmountTier(tier_code="1", amount_fen=50000), aid_pb2.AmountTier(tier_code="2", amount_fen=30000)]),
        expected_version=1), TH_OP)  # fmt: skip
    assert upd.project.version == 2 and len(upd.project.tiers) == 2
    updates = await env.events("aid.project.updated", events_pb2.ProjectUpdated)
    changed = [e for e in updates if e.project_code == code]
    assert set(changed[-1].changed_fields) == {"name", "tiers"}
    await refused(env.call("UpdateProject", aid_pb2.UpdateProjectRequest(
        project_code=code, name="再改", expected_version=1), TH_OP), grpc.StatusCode.ABORTED, "VERSION_CONFLICT")  # fmt: skip
    [kid] = await env.kids(MS, HIGH)
    await env.enter(MS_OP, code, kid, tier_code="2")
    await refused(env.call("UpdateProject", aid_pb2.UpdateProjectRequest(
        project_code=code, stage=common_pb2.STAGE_COMPULSORY), TH_OP), grpc.StatusCode.FAILED_PRECONDITION, "PROJECT_IN_USE")  # fmt: skip
    off = await env.call("UpdateProject", aid_pb2.UpdateProjectRequest(
        project_code=code, status=aid_pb2.PROJECT_STATUS_DISABLED), TH_OP)  # fmt: skip
    assert off.project.status == aid_pb2.PROJECT_STATUS_DISABLED
    [other] = await env.kids(MS, HIGH)
    await refused(
        env.enter(MS_OP, code, other, tier_code="1"),
        grpc.StatusCode.FAILED_PRECONDITION,
        "PROJECT_DISABLED",
    )
    assert PERIOD.school_year

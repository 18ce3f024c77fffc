"""Data verification (数据核查): each rule finds what it should, findings persist across runs,
schools resolve them with an audited note, counts by region stay in scope."""

from __future__ import annotations

from collections import Counter

import grpc
import pytest
from reconcile_world import (
    AUTUMN_2024,
    BAIYUN,
    BAIYUN_PS,
    CITY,
    HUAYANG,
    MERIT,
    TIANHE,
    Student,
    World,
    caller,
    error_of,
    id_number,
    period_pb,
)
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.reconcile.v1 import reconcile_pb2 as pb
from zizhu_contracts.roster.v1 import roster_pb2

OPEN, CONFIRMED, FIXED, DISMISSED, CLEARED = 1, 2, 3, 4, 5


async def _findings(w: World, org: str, **kw: object) -> list[pb.Finding]:
    resp = await w.stub.ListFindings(
        pb.ListFindingsRequest(page=common_pb2.PageRequest(page_size=500), **kw),  # type: ignore[arg-type]
        metadata=caller(org, "viewer"),
    )
    return list(resp.findings)


async def _scenario(w: World) -> dict:
    f = w.feed
    await f.org_tree()
    await f.period(AUTUMN_2024)
    await f.project("ZXJ", tiers=(75000, 62500))
    await f.project("GJJ", category=MERIT, tiers=(100000,), exclusions=("LZJ",))
    await f.project("LZJ", category=MERIT, tiers=(50000,))
    s = {}
    s["x"] = await f.student(HUAYANG, name="跨校")
    await f.approve(s["x"], "ZXJ", AUTUMN_2024)
    await f.approve(s["x"], "ZXJ", AUTUMN_2024, school=BAIYUN_PS)
    s["y"] = await f.student(HUAYANG, name="重复")
    await f.approve(s["y"], "ZXJ", AUTUMN_2024)
    await f.approve(s["y"], "ZXJ", AUTUMN_2024)
    s["z"] = await f.student(HUAYANG, name="金额")
    s["z_record"] = await f.approve(s["z"], "ZXJ", AUTUMN_2024, amount_fen=80000)
    s["w"] = await f.student(
        HUAYANG, name="退学", status=roster_pb2.STUDENT_STATUS_DROPPED_OUT, left_on="2024-06-30"
    )
    await f.approve(s["w"], "ZXJ", AUTUMN_2024)
    s["v"] = await f.student(BAIYUN_PS, name="互斥")
    await f.recognition(s["v"], "2024-2025", 1, 1)
    await f.approve(s["v"], "GJJ", AUTUMN_2024, category=MERIT, amount_fen=100000)
    await f.approve(s["v"], "LZJ", AUTUMN_2024, category=MERIT, amount_fen=50000)
    s["u"] = await f.student(HUAYANG, name="学段")
    await f.recognition(s["u"], "2024-2025", 1, 2)
    await f.approve(s["u"], "ZXJ", AUTUMN_2024, stage=3)
    s["t"] = await f.student(BAIYUN_PS, name="幼龄", birth="20220301")
    await f.recognition(s["t"], "2024-2025", 1, 4)
    await f.approve(s["t"], "ZXJ", AUTUMN_2024)
    # The record's name differs from 学籍's; a middle-dot variant and spaces are the same name.
    s["n"] = await f.student(BAIYUN_PS, name="李明")
    await f.approve(s["n"], "GJJ", AUTUMN_2024, category=MERIT, amount_fen=100000,
                    student_name="李敏")  # fmt: skip
    s["d"] = await f.student(BAIYUN_PS, name="阿依古丽·买买提")
    await f.approve(s["d"], "GJJ", AUTUMN_2024, category=MERIT, amount_fen=100000,
                    student_name=" 阿依古丽•买买提")  # fmt: skip
    s["ghost"] = Student("S999999", id_number(999), "幽灵", HUAYANG, 2, f.blind(id_number(999)))
    await f.approve(s["ghost"], "ZXJ", AUTUMN_2024)
    await f.allocation("ZXJ", "2024", TIANHE, 100000)
    await w.sync()
    await w.stub.SetQuotas(
        pb.SetQuotasRequest(
            quotas=[
                pb.QuotaInput(
                    project_code="ZXJ", school_year="2024-2025", org_code=TIANHE[0], places=2
                )
            ]
        ),
        metadata=caller(CITY[0]),
    )
    return s


async def test_each_rule_finds_its_problem_and_counts_stay_in_scope(world: World) -> None:
    s = await _scenario(world)
    run = await world.run("440000", verify=True)
    assert run.findings_raised > 0
    found = await _findings(world, "440000")
    rules = Counter(f.rule_code for f in found)
    assert rules["R01"] == 2  # one per school involved
    assert {"R02", "R03", "R04", "R05", "R06", "R07", "R09", "R11", "R12"} <= set(rules)
    by_rule = {}
    for f in found:
        by_rule.setdefault(f.rule_code, []).append(f)
    [r03] = by_rule["R03"]
    assert r03.record_ids == [s["z_record"]] and "800.00元" in r03.summary
    assert r03.facts["allowed_tiers"] == "62500,75000" and r03.org_code == HUAYANG[0]
    assert r03.student_name == "金额" and r03.severity == pb.FINDING_SEVERITY_ERROR
    [r02] = by_rule["R02"]
    assert len(r02.record_ids) == 2 and r02.student_id == s["y"].student_id
    r04 = {(f.student_id, f.org_code): f for f in by_rule["R04"]}
    assert set(r04) == {
        (s["w"].student_id, HUAYANG[0]),  # dropped out before the period
        (s["x"].student_id, BAIYUN_PS[0]),  # aided where not enrolled
        (s["u"].student_id, HUAYANG[0]),  # enrolled in another stage
    }
    assert "退学" in r04[(s["w"].student_id, HUAYANG[0])].summary
    r05 = {f.student_id: f.facts["check"] for f in by_rule["R05"]}
    assert r05 == {
        s["t"].student_id: "AGE_STAGE_MISMATCH",  # two years old in primary school
        s["u"].student_id: "AGE_STAGE_MISMATCH",  # nine years old in high school
        s["ghost"].student_id: "NO_STUDENT_RECORD",  # unknown to 学籍
        s["n"].student_id: "NAME_MISMATCH",  # 李敏 on the record, 李明 in 学籍
    }
    [r06] = by_rule["R06"]
    assert r06.student_id == s["v"].student_id and len(r06.record_ids) == 2
    r07 = {f.student_id: f for f in by_rule["R07"]}
    assert r07[s["t"].student_id].severity == pb.FINDING_SEVERITY_ERROR  # 不困难
    assert r07[s["x"].student_id].severity == pb.FINDING_SEVERITY_WARNING  # no recognition
    assert s["u"].student_id not in r07 and s["v"].student_id not in r07
    [r09] = by_rule["R09"]
    assert r09.org_code == TIANHE[0] and r09.facts == {"places": "2", "students": "6"}
    [r11] = by_rule["R11"]
    assert r11.student_id == s["u"].student_id
    [r12] = by_rule["R12"]
    assert r12.org_code == TIANHE[0] and r12.facts["funds_fen"] == "100000"

    baiyun = await _findings(world, BAIYUN[0])
    assert {f.org_path.startswith(BAIYUN[4]) for f in baiyun} == {True}
    assert {f.rule_code for f in baiyun} >= {"R01", "R05", "R06"}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.GetFinding(
            pb.GetFindingRequest(finding_id=r03.finding_id), metadata=caller(BAIYUN[0], "viewer")
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    stats = await world.stub.FindingStats(
        pb.FindingStatsRequest(period=period_pb(AUTUMN_2024)), metadata=caller(CITY[0], "viewer")
    )
    rows = {(r.kind, r.org.org_code): r for r in stats.rows}
    tianhe = {(c.rule_code, c.severity): c.open for c in rows[(3, TIANHE[0])].rules}
    baiyun_counts = {(c.rule_code, c.severity): c.open for c in rows[(3, BAIYUN[0])].rules}
    assert tianhe[("R03", 1)] == 1 and baiyun_counts[("R03", 1)] == 0
    assert tianhe[("R01", 1)] == 1 and baiyun_counts[("R01", 1)] == 1
    total = {(c.rule_code, c.severity): c.open for c in rows[(1, CITY[0])].rules}
    assert total[("R01", 1)] == 2


async def test_school_resolves_findings_with_a_note_and_later_runs_keep_or_clear_them(
    world: World,
) -> None:
    s = await _scenario(world)
    await world.run("440000", verify=True)
    found = await _findings(world, HUAYANG[0])
    r02 = next(f for f in found if f.rule_code == "R02")
    r03 = next(f for f in found if f.rule_code == "R03")
    r04 = next(f for f in found if f.rule_code == "R04" and f.student_id == s["w"].student_id)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.ResolveFinding(
            pb.ResolveFindingRequest(finding_ids=[r02.finding_id], resolution=DISMISSED),
            metadata=caller(HUAYANG[0]),
        )
    assert (err.value.code(), error_of(err.value)["field"]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "note",
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.ResolveFinding(
            pb.ResolveFindingRequest(finding_ids=[r02.finding_id], resolution=DISMISSED, note="x"),
            metadata=caller(BAIYUN_PS[0]),
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    done = await world.stub.ResolveFinding(
        pb.ResolveFindingRequest(
            finding_ids=[r02.finding_id], resolution=DISMISSED, note="两条为不同学期补发，已核实"
        ),
        metadata=caller(HUAYANG[0], "auditor"),
    )
    assert done.findings[0].status == DISMISSED
    assert done.findings[0].resolution_note == "两条为不同学期补发，已核实"
    await world.stub.ResolveFinding(
        pb.ResolveFindingRequest(finding_ids=[r04.finding_id], resolution=FIXED, note="已撤销"),
        metadata=caller(HUAYANG[0]),
    )
    await world.stub.ResolveFinding(
        pb.ResolveFindingRequest(finding_ids=[r03.finding_id], resolution=CONFIRMED, note="确认"),
        metadata=caller(HUAYANG[0]),
    )
    await world.feed.revoke(s["z"], s["z_record"], "ZXJ", AUTUMN_2024)
    second = await world.run("440000", verify=True)
    assert second.findings_cleared >= 1
    after = await world.stub.GetFinding(
        pb.GetFindingRequest(finding_id=r03.finding_id), metadata=caller(HUAYANG[0], "viewer")
    )
    assert after.finding.status == CLEARED
    assert [(a.from_status, a.to_status) for a in after.actions] == [
        (0, OPEN),
        (OPEN, CONFIRMED),
        (CONFIRMED, CLEARED),
    ]
    assert after.actions[1].note == "确认" and after.actions[2].actor == "system:reconcile"
    kept = await world.stub.GetFinding(
        pb.GetFindingRequest(finding_id=r02.finding_id), metadata=caller(HUAYANG[0], "viewer")
    )
    assert kept.finding.status == DISMISSED
    reopened = await world.stub.GetFinding(
        pb.GetFindingRequest(finding_id=r04.finding_id), metadata=caller(HUAYANG[0], "viewer")
    )
    assert reopened.finding.status == OPEN  # marked fixed, but still there
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.ResolveFinding(
            pb.ResolveFindingRequest(finding_ids=[r03.finding_id], resolution=FIXED, note="x"),
            metadata=caller(HUAYANG[0]),
        )
    assert error_of(err.value)["code"] == "FINDING_CLOSED"
    quotas = await world.stub.ListQuotas(
        pb.ListQuotasRequest(), metadata=caller(BAIYUN[0], "viewer")
    )
    assert quotas.quotas == []
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.SetQuotas(
            pb.SetQuotasRequest(
                quotas=[
                    pb.QuotaInput(
                        project_code="ZXJ", school_year="2024-2025", org_code=TIANHE[0], places=9
                    )
                ]
            ),
            metadata=caller(BAIYUN[0]),
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND

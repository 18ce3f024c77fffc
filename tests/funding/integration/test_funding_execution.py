"""Execution fed by aid events through JetStream: approvals and revocations move the summary,
overspending is flagged and published, ListExecution and ListOverspending answer within scope,
cost shares split what each level should bear, and a moved school carries its totals."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from funding_harness import (
    CENTRAL,
    COUNTY,
    PATHS,
    PROVINCE,
    Harness,
    allocate_request,
    line,
    md,
    record_approved,
    record_revoked,
)
from openpyxl import load_workbook
from test_funding_allocations import fund_chain, refused
from zizhu_common.messaging import EVENT_ID_HEADER
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.funding.v1 import events_pb2, funding_pb2
from zizhu_contracts.identity.v1 import events_pb2 as identity_events

T0 = datetime(2024, 11, 1, tzinfo=UTC)


async def summary(f: Harness, caller: str, **kw: object) -> funding_pb2.FundSummaryResponse:
    req = funding_pb2.FundSummaryRequest(fiscal_year="2024", **kw)  # type: ignore[arg-type]
    return await f.stub.FundSummary(req, metadata=md(caller))


def row(resp: funding_pb2.FundSummaryResponse, code: str) -> funding_pb2.FundSummaryRow:
    return next(r for r in resp.rows if r.org.org_code == code)


async def test_approvals_and_a_revocation_move_the_execution_rate(funding: Harness) -> None:
    await fund_chain(funding)  # 华阳小学 received 20,000 yuan of PG01
    await funding.feed(
        [
            record_approved("R1", "2144010601", "PG01", 500_000, at=T0),
            record_approved("R2", "2144010601", "PG01", 500_000, at=T0),
            record_approved("R3", "3444010601", "PG01", 350_000, at=T0),
            # Spring of 2024-2025 counts towards 2025, not 2024.
            record_approved(
                "R4", "2144010601", "PG01", 500_000, term=common_pb2.TERM_SPRING, at=T0
            ),
        ]
    )
    county = await summary(funding, "440106", expand_direct_schools=True)
    school = row(county, "2144010601")
    assert (school.executed_fen, school.executed_count) == (1_000_000, 2)
    assert school.funds_fen == 2_000_000 and school.balance_fen == 1_000_000
    assert school.execution_rate_bp == 5_000
    total = county.rows[0]
    assert total.executed_fen == 1_350_000
    assert total.funds_fen == 4_000_000 + 500_000

    await funding.feed(
        [record_revoked("R2", "2144010601", "PG01", 500_000, at=T0 + timedelta(hours=1))]
    )
    school = row(await summary(funding, "440106", expand_direct_schools=True), "2144010601")
    assert (school.executed_fen, school.execution_rate_bp) == (500_000, 2_500)
    province = await summary(funding, "440000")
    assert province.rows[0].executed_fen == 850_000
    assert row(province, "440100").executed_fen == 850_000
    assert (await summary(funding, "440000", project_code="XQ01")).rows[0].executed_fen == 0


async def test_each_event_counts_once_and_late_older_facts_change_nothing(funding: Harness) -> None:
    subject, approved = record_approved("R1", "2144010601", "PG01", 100_000, at=T0)
    await funding.feed([(subject, approved)])
    # The same event published again (aid's relay retrying after a lost ack): same event id.
    ack = await funding.js.publish(
        subject, approved.SerializeToString(), headers={EVENT_ID_HEADER: approved.meta.event_id}
    )
    assert ack.duplicate
    # A revocation, then an older approval of the same record delivered late.
    await funding.feed(
        [
            record_revoked("R1", "2144010601", "PG01", 100_000, at=T0 + timedelta(minutes=5)),
            record_approved("R1", "2144010601", "PG01", 100_000, at=T0 + timedelta(minutes=1)),
            # A revocation arriving before its approval: the approval is older, so it stays out.
            record_revoked("R9", "3444010601", "PG01", 7_000, at=T0 + timedelta(minutes=9)),
            record_approved("R9", "3444010601", "PG01", 7_000, at=T0 + timedelta(minutes=8)),
            # Approved again after the revocation (re-entered and re-audited), new amount.
            record_approved("R1", "2144010601", "PG01", 120_000, at=T0 + timedelta(minutes=10)),
        ]
    )
    county = await summary(funding, "440106", expand_direct_schools=True)
    assert row(county, "2144010601").executed_fen == 120_000
    assert row(county, "2144010601").executed_count == 1
    assert row(county, "3444010601").executed_fen == 0
    # Every message delivered again to the service's consumer (a crash before the acks).
    replay = await funding.js.pull_subscribe("aid.record.>", durable="t-replay", stream="AID")
    msgs = await replay.fetch(6, timeout=5)
    consumer = funding.consumers["aid"]
    before = consumer.duplicates_total
    await consumer.handle(msgs)
    assert consumer.duplicates_total - before == len(msgs) == 6
    again = await summary(funding, "440106", expand_direct_schools=True)
    assert row(again, "2144010601").executed_fen == 120_000


async def test_overspending_is_flagged_published_and_listed_for_verification(
    funding: Harness,
) -> None:
    await fund_chain(funding)
    sub = await funding.js.pull_subscribe("funding.execution.>", durable="t-exec", stream="FUNDING")
    await funding.feed([record_approved("R1", "2144010601", "PG01", 2_000_001, at=T0)])
    county = await summary(funding, "440106", expand_direct_schools=True)
    assert row(county, "2144010601").overspent
    assert row(county, "2144010601").balance_fen == -1
    assert not county.rows[0].overspent  # the county as a whole still has money

    listed = await funding.stub.ListOverspending(
        funding_pb2.ListOverspendingRequest(fiscal_year="2024"), metadata=md("440100")
    )
    assert [(r.org.org_code, r.project_code, r.excess_fen) for r in listed.rows] == [
        ("2144010601", "PG01", 1)
    ]
    assert listed.rows[0].org.level == common_pb2.ORG_LEVEL_SCHOOL and listed.rows[0].HasField(
        "since"
    )
    assert listed.rows[0].project_name == "普通高中国家助学金"
    neighbour = await funding.stub.ListOverspending(
        funding_pb2.ListOverspendingRequest(fiscal_year="2024"), metadata=md("440111")
    )
    assert list(neighbour.rows) == [] and neighbour.page.total == 0
    only_counties = await funding.stub.ListOverspending(
        funding_pb2.ListOverspendingRequest(levels=[common_pb2.ORG_LEVEL_COUNTY]),
        metadata=md("440100"),
    )
    assert only_counties.page.total == 0

    # More money for the school covers it again.
    await funding.stub.AllocateFunds(
        allocate_request("PG01", [line("2144010601", COUNTY, 1)], document="天财教〔2024〕43号"),
        metadata=md("440106"),
    )
    assert not row(
        await summary(funding, "440106", expand_direct_schools=True), "2144010601"
    ).overspent
    assert (
        await funding.stub.ListOverspending(
            funding_pb2.ListOverspendingRequest(), metadata=md("440100")
        )
    ).page.total == 0
    await funding.relay_all()
    msgs = await sub.fetch(2, timeout=5)
    assert [m.subject for m in msgs] == ["funding.execution.overspent", "funding.execution.covered"]
    over = events_pb2.ExecutionOverspent.FromString(msgs[0].data)
    assert (over.org_code, over.funds_fen, over.executed_fen, over.fiscal_year) == (
        "2144010601", 2_000_000, 2_000_001, "2024",
    )  # fmt: skip
    assert over.org_level == common_pb2.ORG_LEVEL_SCHOOL


async def test_a_county_sees_its_own_summary_and_not_its_neighbours(funding: Harness) -> None:
    await fund_chain(funding)
    own = await summary(funding, "440111")
    assert own.rows[0].org.org_code == "440111" and own.rows[0].received_fen == 1_500_000
    code, err = await refused(
        funding.stub.FundSummary(
            funding_pb2.FundSummaryRequest(fiscal_year="2024", org_code="440106"),
            metadata=md("440111"),
        )
    )
    assert (code, err["code"], err["field"]) == (
        grpc.StatusCode.NOT_FOUND,
        "ORG_NOT_FOUND",
        "org_code",
    )
    code, err = await refused(
        funding.stub.FundSummary(
            funding_pb2.FundSummaryRequest(fiscal_year="24"), metadata=md("440111")
        )
    )
    assert (code, err["code"]) == (grpc.StatusCode.INVALID_ARGUMENT, "FISCAL_YEAR_INVALID")
    # A school sees only itself.
    school = await summary(funding, "3444010601")
    assert [r.org.org_code for r in school.rows] == ["3444010601"]


async def test_province_summary_has_total_direct_schools_and_child_regions(
    funding: Harness,
) -> None:
    await fund_chain(funding)
    city = await summary(funding, "440100")
    kinds = [r.kind for r in city.rows]
    assert kinds == [
        common_pb2.STATS_ROW_KIND_TOTAL,
        common_pb2.STATS_ROW_KIND_DIRECT_SCHOOLS,
        common_pb2.STATS_ROW_KIND_CHILD_REGION,
        common_pb2.STATS_ROW_KIND_CHILD_REGION,
    ]
    assert [r.org.org_code for r in city.rows[2:]] == ["440106", "440111"]
    national = await summary(funding, "000000")
    assert [
        r.org.org_code for r in national.rows if r.kind == common_pb2.STATS_ROW_KIND_CHILD_REGION
    ] == [
        "440000",
        "450000",
    ]
    assert national.rows[0].funds_fen == 10_000_000 + 2_000_000 + 500_000


async def test_execution_is_listed_per_project_and_period_for_the_org_and_its_children(
    funding: Harness,
) -> None:
    await funding.feed(
        [
            record_approved("R1", "2144010601", "PG01", 100, at=T0),
            record_approved("R2", "1144011101", "XQ01", 60, at=T0),
            record_approved("R3", "1144011101", "XQ01", 60, term=common_pb2.TERM_SPRING, at=T0),
        ]
    )
    resp = await funding.stub.ListExecution(
        funding_pb2.ListExecutionRequest(), metadata=md("440100")
    )
    got = [
        (
            r.kind,
            r.org.org_code,
            r.project_code,
            r.period.term,
            r.fiscal_year,
            r.executed_fen,
            r.record_count,
        )
        for r in resp.rows
    ]
    assert got == [
        (common_pb2.STATS_ROW_KIND_TOTAL, "440100", "PG01", 1, "2024", 100, 1),
        (common_pb2.STATS_ROW_KIND_TOTAL, "440100", "XQ01", 1, "2024", 60, 1),
        (common_pb2.STATS_ROW_KIND_TOTAL, "440100", "XQ01", 2, "2025", 60, 1),
        (common_pb2.STATS_ROW_KIND_CHILD_REGION, "440106", "PG01", 1, "2024", 100, 1),
        (common_pb2.STATS_ROW_KIND_CHILD_REGION, "440111", "XQ01", 1, "2024", 60, 1),
        (common_pb2.STATS_ROW_KIND_CHILD_REGION, "440111", "XQ01", 2, "2025", 60, 1),
    ]
    spring = await funding.stub.ListExecution(
        funding_pb2.ListExecutionRequest(
            org_code="440111",
            period=common_pb2.AidPeriod(school_year="2024-2025", term=common_pb2.TERM_SPRING),
        ),
        metadata=md("440111"),
    )
    assert [(r.org.org_code, r.kind) for r in spring.rows] == [
        ("440111", common_pb2.STATS_ROW_KIND_TOTAL),
        ("1144011101", common_pb2.STATS_ROW_KIND_SCHOOL),
    ]
    code, _ = await refused(
        funding.stub.ListExecution(
            funding_pb2.ListExecutionRequest(org_code="440111"), metadata=md("440106")
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND
    code, err = await refused(
        funding.stub.ListExecution(
            funding_pb2.ListExecutionRequest(
                period=common_pb2.AidPeriod(school_year="2024-2026", term=1)
            ),
            metadata=md("440106"),
        )
    )
    assert (code, err["field"]) == (grpc.StatusCode.INVALID_ARGUMENT, "period.school_year")


async def test_cost_shares_split_what_each_level_should_bear(funding: Harness) -> None:
    await fund_chain(funding)
    await funding.stub.SetCostShare(
        funding_pb2.SetCostShareRequest(
            project_code="PG01", fiscal_year="2024", region_org_code="440000",
            shares=[funding_pb2.ShareLine(source=CENTRAL, basis_points=3000),
                    funding_pb2.ShareLine(source=PROVINCE, basis_points=7000)],
            document_number="财教〔2024〕5号",
        ),
        metadata=md("000000"),
    )  # fmt: skip
    await funding.stub.SetCostShare(
        funding_pb2.SetCostShareRequest(
            project_code="PG01", fiscal_year="2024", region_org_code="440106",
            shares=[funding_pb2.ShareLine(source=CENTRAL, basis_points=3000),
                    funding_pb2.ShareLine(source=PROVINCE, basis_points=4000),
                    funding_pb2.ShareLine(source=COUNTY, basis_points=3000)],
        ),
        metadata=md("440000"),
    )  # fmt: skip
    await funding.feed(
        [
            record_approved("R1", "2144010601", "PG01", 1_000_000, at=T0),
            record_approved("R2", "1144011101", "PG01", 500_000, at=T0),
        ]
    )
    city = await summary(funding, "440100", by_source=True)
    expected = {s.source: s.amount_fen for s in city.rows[0].expected_by_source}
    assert expected == {CENTRAL: 450_000, PROVINCE: 750_000, COUNTY: 300_000}
    tianhe = {s.source: s.amount_fen for s in row(city, "440106").expected_by_source}
    assert tianhe == {CENTRAL: 300_000, PROVINCE: 400_000, COUNTY: 300_000}
    funds = {s.source: s.amount_fen for s in city.rows[0].funds_by_source}
    assert funds == {CENTRAL: 5_000_000, PROVINCE: 1_500_000, COUNTY: 500_000}
    assert sum(funds.values()) == city.rows[0].funds_fen


async def test_summary_exports_as_xlsx(funding: Harness) -> None:
    await fund_chain(funding)
    resp = await funding.stub.ExportFundSummary(
        funding_pb2.ExportFundSummaryRequest(
            summary=funding_pb2.FundSummaryRequest(fiscal_year="2024")
        ),
        metadata=md("440100"),
    )
    assert resp.file.file_name == "资金执行情况_广州市_2024.xlsx"
    rows = list(
        load_workbook(io.BytesIO(resp.file.content), read_only=True).active.iter_rows(
            values_only=True
        )
    )
    assert rows[0][:4] == ("行类型", "单位代码", "单位名称", "上级下达")
    assert rows[1][:4] == ("合计", "440100", "广州市", 65_000.0)
    assert [r[0] for r in rows[1:]] == ["合计", "直属学校小计", "下辖地区", "下辖地区"]


async def test_a_moved_school_takes_its_funds_and_execution_to_its_new_county(
    funding: Harness,
) -> None:
    await fund_chain(funding)
    await funding.feed([record_approved("R1", "3444010601", "PG01", 300_000, at=T0)])
    old, new = PATHS["3444010601"], PATHS["440111"] + "3444010601/"
    moved = identity_events.OrgMoved(
        org_code="3444010601", old_parent_code="440106", new_parent_code="440111",
        old_path=old, new_path=new,
    )  # fmt: skip
    await funding.feed([("identity.org.moved", moved)])
    city = await summary(funding, "440100")
    tianhe, baiyun = row(city, "440106"), row(city, "440111")
    assert tianhe.executed_fen == 0 and baiyun.executed_fen == 300_000
    assert tianhe.school_funds_fen == 2_000_000 and baiyun.school_funds_fen == 1_400_000
    assert city.rows[0].executed_fen == 300_000
    baiyun_view = await summary(funding, "440111", expand_direct_schools=True)
    assert row(baiyun_view, "3444010601").received_fen == 1_400_000
    listed = await funding.stub.ListAllocations(
        funding_pb2.ListAllocationsRequest(to_org_code="3444010601"), metadata=md("440111")
    )
    assert {a.to_org_path for a in listed.allocations} == {new}
    exec_rows = await funding.stub.ListExecution(
        funding_pb2.ListExecutionRequest(), metadata=md("440111")
    )
    assert {(r.org.org_code, r.executed_fen) for r in exec_rows.rows} == {
        ("440111", 300_000),
        ("3444010601", 300_000),
    }


@pytest.mark.parametrize("caller", ["440106", "440000"])
async def test_unknown_project_in_a_summary_is_refused(funding: Harness, caller: str) -> None:
    code, err = await refused(
        funding.stub.FundSummary(
            funding_pb2.FundSummaryRequest(fiscal_year="2024", project_code="NOPE"),
            metadata=md(caller),
        )
    )
    assert (code, err["code"], err["field"]) == (
        grpc.StatusCode.INVALID_ARGUMENT, "PROJECT_NOT_FOUND", "project_code",
    )  # fmt: skip

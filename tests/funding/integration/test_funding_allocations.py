"""Allocations through the real gRPC API: down the hierarchy, limits, reversals, scope, lists,
exports and the events they publish."""

from __future__ import annotations

import asyncio
import io
import json

import grpc
import pytest
from funding_harness import (
    CENTRAL,
    CITY,
    COUNTY,
    PROVINCE,
    SOCIAL,
    Harness,
    allocate_request,
    line,
    md,
)
from funding_service import tables
from openpyxl import load_workbook
from sqlalchemy import func, select
from zizhu_common.errors import ERROR_TRAILER
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.funding.v1 import events_pb2, funding_pb2


def error_of(exc: grpc.aio.AioRpcError) -> dict:
    """The JSON error trailer of a refused call."""
    for key, value in exc.trailing_metadata() or ():
        if key == ERROR_TRAILER:
            return json.loads(value)
    raise AssertionError("no error trailer")


async def refused(call) -> tuple[grpc.StatusCode, dict]:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value.code(), error_of(info.value)


async def fund_chain(f: Harness, project: str = "PG01") -> dict[str, list[funding_pb2.Allocation]]:
    """Nation → province → city → both counties → Tianhe's schools, as each level's operator."""
    out = {}
    out["000000"] = (
        await f.stub.AllocateFunds(
            allocate_request(
                project,
                [line("000000", CENTRAL, 100_000), line("440000", CENTRAL, 60_000)],
                document="财教〔2024〕10号",
            ),
            metadata=md("000000"),
        )
    ).allocations
    out["440000"] = (
        await f.stub.AllocateFunds(
            allocate_request(
                project,
                [
                    line("440000", PROVINCE, 20_000),
                    line("440100", CENTRAL, 50_000),
                    line("440100", PROVINCE, 15_000),
                ],
                document="粤财教〔2024〕20号",
            ),  # fmt: skip
            metadata=md("440000"),
        )
    ).allocations
    out["440100"] = (
        await f.stub.AllocateFunds(
            allocate_request(
                project,
                [
                    line("440106", CENTRAL, 30_000),
                    line("440111", CENTRAL, 15_000),
                    line("440106", PROVINCE, 10_000),
                ],
                document="穗财教〔2024〕30号",
            ),  # fmt: skip
            metadata=md("440100"),
        )
    ).allocations
    out["440106"] = (
        await f.stub.AllocateFunds(
            allocate_request(
                project,
                [
                    line("440106", COUNTY, 5_000),
                    line("2144010601", CENTRAL, 20_000),
                    line("3444010601", CENTRAL, 10_000),
                    line("3444010601", COUNTY, 4_000),
                ],
                document="天财教〔2024〕40号",
            ),  # fmt: skip
            metadata=md("440106"),
        )
    ).allocations
    return out


async def row_count(f: Harness, table) -> int:  # type: ignore[no-untyped-def]
    async with f.db.read() as session:
        return (await session.execute(select(func.count()).select_from(table))).scalar_one()


async def test_funds_flow_down_the_hierarchy_and_each_level_sees_its_position(
    funding: Harness,
) -> None:
    made = await fund_chain(funding)
    assert [a.kind for a in made["000000"]] == [
        funding_pb2.ALLOCATION_KIND_CONTRIBUTION,
        funding_pb2.ALLOCATION_KIND_TRANSFER,
    ]
    first = made["440100"][0]
    assert (first.from_org_name, first.to_org_name, first.project_name) == (
        "广州市", "天河区", "普通高中国家助学金",
    )  # fmt: skip
    assert first.to_org_level == common_pb2.ORG_LEVEL_COUNTY
    assert first.status == funding_pb2.ALLOCATION_STATUS_ACTIVE
    assert first.entered_by == "acct-440100-operator"

    city = await funding.stub.FundSummary(
        funding_pb2.FundSummaryRequest(fiscal_year="2024"), metadata=md("440100")
    )
    total = city.rows[0]
    assert total.kind == common_pb2.STATS_ROW_KIND_TOTAL and total.org.org_code == "440100"
    assert total.received_fen == 6_500_000
    assert total.allocated_down_fen == 5_500_000
    assert total.retained_fen == 1_000_000
    assert total.funds_fen == 6_500_000 + 500_000  # Tianhe's own 5,000 yuan is in the subtree
    assert total.school_funds_fen == 3_400_000
    by_org = {r.org.org_code: r for r in city.rows[1:] if r.org.org_code}
    assert by_org["440106"].received_fen == 4_000_000
    assert by_org["440106"].own_contribution_fen == 500_000
    assert by_org["440106"].allocated_down_fen == 3_400_000
    assert by_org["440106"].retained_fen == 1_100_000
    assert by_org["440111"].received_fen == 1_500_000

    county = await funding.stub.FundSummary(
        funding_pb2.FundSummaryRequest(
            fiscal_year="2024", by_source=True, expand_direct_schools=True
        ),
        metadata=md("440106"),
    )
    schools = {r.org.org_code: r for r in county.rows if r.kind == common_pb2.STATS_ROW_KIND_SCHOOL}
    assert schools["3444010601"].received_fen == 1_400_000
    assert {(s.source, s.amount_fen) for s in schools["3444010601"].received_by_source} == {
        (CENTRAL, 1_000_000),
        (COUNTY, 400_000),
    }


async def test_over_allocation_is_refused_and_nothing_is_written(funding: Harness) -> None:
    await fund_chain(funding)
    before = (
        await row_count(funding, tables.allocation),
        await row_count(funding, tables.outbox_event),
    )
    # Tianhe received 30,000 central and passed 30,000 down; one more yuan of central is too much,
    # even inside a document whose other lines are fine.
    code, err = await refused(
        funding.stub.AllocateFunds(
            allocate_request(
                "PG01",
                [line("2144010601", COUNTY, 100), line("2144010601", CENTRAL, 1)],
                document="天财教〔2024〕41号",
            ),
            metadata=md("440106"),
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert err["code"] == "FUNDS_INSUFFICIENT" and err["field"] == "lines"
    assert "中央资金本次下达1.00元，可下达余额0.00元" in err["message"]
    after = (
        await row_count(funding, tables.allocation),
        await row_count(funding, tables.outbox_event),
    )
    assert after == before


async def test_pass_down_counts_the_documents_own_contribution_lines(funding: Harness) -> None:
    resp = await funding.stub.AllocateFunds(
        allocate_request(
            "TH-ZX",
            [
                line("440106", COUNTY, 800),
                line("440106", SOCIAL, 200),
                line("2144010601", COUNTY, 800),
                line("3444010601", SOCIAL, 200),
            ],
        ),  # fmt: skip
        metadata=md("440106"),
    )
    assert len(resp.allocations) == 4
    code, err = await refused(
        funding.stub.AllocateFunds(
            allocate_request("TH-ZX", [line("2144010601", SOCIAL, 1)], document="另一号"),
            metadata=md("440106"),
        )
    )
    assert (code, err["code"]) == (grpc.StatusCode.FAILED_PRECONDITION, "FUNDS_INSUFFICIENT")


BAD_ALLOCATIONS = [
    ("440100", allocate_request("PG01", [line("440100", CENTRAL, 1)]),
     grpc.StatusCode.INVALID_ARGUMENT, "CONTRIBUTION_SOURCE_INVALID", "lines[0].source"),
    ("440100", allocate_request("PG01", [line("2144010601", CITY, 1)]),
     grpc.StatusCode.INVALID_ARGUMENT, "ALLOCATION_NOT_CHILD", "lines[0].to_org_code"),
    ("440100", allocate_request("PG01", [line("9999999999", CITY, 1)]),
     grpc.StatusCode.NOT_FOUND, "ORG_NOT_FOUND", "lines[0].to_org_code"),
    ("440100", allocate_request("NOPE", [line("440106", CITY, 1)]),
     grpc.StatusCode.NOT_FOUND, "PROJECT_NOT_FOUND", "project_code"),
    ("440111", allocate_request("TH-ZX", [line("440111", COUNTY, 1)]),
     grpc.StatusCode.FAILED_PRECONDITION, "PROJECT_NOT_IN_CHAIN", "project_code"),
    ("440000", allocate_request("PG01", [line("440106", CITY, 1)], from_org="440100"),
     grpc.StatusCode.PERMISSION_DENIED, "ALLOCATION_OWN_LEVEL_ONLY", "from_org_code"),
    ("440106", allocate_request("PG01", [line("2144010601", CITY, 1)], from_org="440100"),
     grpc.StatusCode.NOT_FOUND, "ORG_NOT_FOUND", "from_org_code"),
    ("440106", allocate_request("PG01", [line("2144010601", COUNTY, 1)], year="二〇二四"),
     grpc.StatusCode.INVALID_ARGUMENT, "FISCAL_YEAR_INVALID", "fiscal_year"),
]  # fmt: skip


async def test_bad_allocations_are_refused_with_code_field_and_nothing_written(
    funding: Harness,
) -> None:
    for caller, req, status, code, field in BAD_ALLOCATIONS:
        got_status, err = await refused(funding.stub.AllocateFunds(req, metadata=md(caller)))
        assert (got_status, err["code"], err["field"]) == (status, code, field), code
        assert err["message"]
    assert await row_count(funding, tables.allocation) == 0
    assert await row_count(funding, tables.fund_rollup) == 0
    assert await row_count(funding, tables.outbox_event) == 0


async def test_only_operators_enter_allocations(funding: Harness) -> None:
    code, err = await refused(
        funding.stub.AllocateFunds(
            allocate_request("TH-ZX", [line("440106", COUNTY, 1)]), metadata=md("440106", "viewer")
        )
    )
    assert (code, err["code"]) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_ALLOWED")


async def test_the_same_document_line_cannot_be_entered_twice(funding: Harness) -> None:
    req = allocate_request("TH-ZX", [line("440106", COUNTY, 10)], document="天财〔2024〕9号")
    await funding.stub.AllocateFunds(req, metadata=md("440106"))
    code, err = await refused(funding.stub.AllocateFunds(req, metadata=md("440106")))
    assert (code, err["code"], err["field"]) == (
        grpc.StatusCode.ALREADY_EXISTS, "ALLOCATION_DUPLICATE", "lines[0].to_org_code",
    )  # fmt: skip


async def test_reversal_keeps_the_original_and_gives_the_money_back(funding: Harness) -> None:
    made = await fund_chain(funding)
    to_school = made["440106"][1]  # 20,000 central to 华阳小学
    resp = await funding.stub.ReverseAllocation(
        funding_pb2.ReverseAllocationRequest(
            allocation_id=to_school.allocation_id, reason="金额有误"
        ),
        metadata=md("440106"),
    )
    a = resp.allocation
    assert a.status == funding_pb2.ALLOCATION_STATUS_REVERSED
    assert (a.amount_fen, a.reversal_reason, a.reversed_by) == (
        2_000_000,
        "金额有误",
        "acct-440106-operator",
    )
    assert a.HasField("reversed_at")
    listed = await funding.stub.ListAllocations(
        funding_pb2.ListAllocationsRequest(include_reversed=True), metadata=md("440106")
    )
    assert to_school.allocation_id in {x.allocation_id for x in listed.allocations}
    active = await funding.stub.ListAllocations(
        funding_pb2.ListAllocationsRequest(), metadata=md("440106")
    )
    assert to_school.allocation_id not in {x.allocation_id for x in active.allocations}
    # The county can pass the money down again.
    await funding.stub.AllocateFunds(
        allocate_request(
            "PG01", [line("2144010601", CENTRAL, 19_000)], document="天财教〔2024〕42号"
        ),
        metadata=md("440106"),
    )
    code, err = await refused(
        funding.stub.ReverseAllocation(
            funding_pb2.ReverseAllocationRequest(
                allocation_id=to_school.allocation_id, reason="再次"
            ),
            metadata=md("440106"),
        )
    )
    assert (code, err["code"]) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "ALLOCATION_ALREADY_REVERSED",
    )


async def test_reversal_is_refused_while_the_recipient_has_passed_the_money_on(
    funding: Harness,
) -> None:
    made = await fund_chain(funding)
    city_to_tianhe = made["440100"][0]  # 30,000 central, all passed on to schools
    code, err = await refused(
        funding.stub.ReverseAllocation(
            funding_pb2.ReverseAllocationRequest(
                allocation_id=city_to_tianhe.allocation_id, reason="撤回"
            ),
            metadata=md("440100"),
        )
    )
    assert (code, err["code"]) == (grpc.StatusCode.FAILED_PRECONDITION, "ALLOCATION_PASSED_DOWN")
    assert err["details"]["org_code"] == "440106"
    code, err = await refused(
        funding.stub.ReverseAllocation(
            funding_pb2.ReverseAllocationRequest(
                allocation_id=city_to_tianhe.allocation_id, reason="撤回"
            ),
            metadata=md("440106"),
        )
    )
    assert (code, err["code"]) == (grpc.StatusCode.PERMISSION_DENIED, "ALLOCATION_OWN_LEVEL_ONLY")
    code, err = await refused(
        funding.stub.ReverseAllocation(
            funding_pb2.ReverseAllocationRequest(
                allocation_id=city_to_tianhe.allocation_id, reason=" "
            ),
            metadata=md("440100"),
        )
    )
    assert (code, err["code"], err["field"]) == (
        grpc.StatusCode.INVALID_ARGUMENT, "REASON_REQUIRED", "reason",
    )  # fmt: skip


async def test_a_county_never_sees_its_neighbours_allocations(funding: Harness) -> None:
    made = await fund_chain(funding)
    tianhe_line = made["440106"][1]
    code, err = await refused(
        funding.stub.GetAllocation(
            funding_pb2.GetAllocationRequest(allocation_id=tianhe_line.allocation_id),
            metadata=md("440111"),
        )
    )
    assert (code, err["code"]) == (grpc.StatusCode.NOT_FOUND, "ALLOCATION_NOT_FOUND")
    got = await funding.stub.GetAllocation(
        funding_pb2.GetAllocationRequest(allocation_id=tianhe_line.allocation_id),
        metadata=md("440100"),
    )
    assert got.allocation.amount_fen == 2_000_000
    baiyun = await funding.stub.ListAllocations(
        funding_pb2.ListAllocationsRequest(), metadata=md("440111")
    )
    # Only what the city sent to Baiyun.
    assert [(a.from_org_code, a.to_org_code) for a in baiyun.allocations] == [("440100", "440111")]
    assert baiyun.total_amount_fen == 1_500_000
    code, err = await refused(
        funding.stub.ListAllocations(
            funding_pb2.ListAllocationsRequest(org_code="440106"), metadata=md("440111")
        )
    )
    assert (code, err["code"]) == (grpc.StatusCode.NOT_FOUND, "ORG_NOT_FOUND")
    code, _ = await refused(
        funding.stub.ReverseAllocation(
            funding_pb2.ReverseAllocationRequest(
                allocation_id=tianhe_line.allocation_id, reason="x"
            ),
            metadata=md("440111"),
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND


async def test_lists_filter_page_and_total_over_every_page(funding: Harness) -> None:
    await fund_chain(funding)
    req = funding_pb2.ListAllocationsRequest(
        fiscal_year="2024", sources=[CENTRAL], page=common_pb2.PageRequest(page_size=2)
    )
    first = await funding.stub.ListAllocations(req, metadata=md("440100"))
    # In the city's subtree: province→city (50,000), city→two counties, Tianhe→two schools.
    assert first.page.total == 5 and len(first.allocations) == 2
    assert first.total_amount_fen == (50_000 + 30_000 + 15_000 + 20_000 + 10_000) * 100
    seen = [a.allocation_id for a in first.allocations]
    token = first.page.next_page_token
    while token:
        req.page.page_token = token
        nxt = await funding.stub.ListAllocations(req, metadata=md("440100"))
        seen += [a.allocation_id for a in nxt.allocations]
        token = nxt.page.next_page_token
    assert len(set(seen)) == 5
    req.fiscal_year = "2023"
    code, err = await refused(funding.stub.ListAllocations(req, metadata=md("440100")))
    assert err["code"] == "PAGE_TOKEN_INVALID"
    by_doc = await funding.stub.ListAllocations(
        funding_pb2.ListAllocationsRequest(
            document_number="天财教〔2024〕40号", to_org_code="3444010601"
        ),
        metadata=md("440100"),
    )
    assert sorted(a.source for a in by_doc.allocations) == [CENTRAL, COUNTY]


async def test_export_holds_the_same_rows_as_the_list(funding: Harness) -> None:
    await fund_chain(funding)
    resp = await funding.stub.ExportAllocations(
        funding_pb2.ExportAllocationsRequest(
            filter=funding_pb2.ListAllocationsRequest(fiscal_year="2024")
        ),
        metadata=md("440106"),
    )
    assert resp.file.file_name.endswith(".xlsx") and resp.row_count == 6
    sheet = load_workbook(io.BytesIO(resp.file.content), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:5] == ("下达编号", "项目代码", "项目名称", "财政年度", "类型")
    assert len(rows) == 7
    amounts = sorted(r[11] for r in rows[1:])
    assert amounts == [4_000.0, 5_000.0, 10_000.0, 10_000.0, 20_000.0, 30_000.0]
    assert {r[8] for r in rows[1:]} <= {"天河区", "广州市天河区华阳小学", "广州市天河中学"}


async def test_allocations_publish_made_and_reversed_events(funding: Harness) -> None:
    sub = await funding.js.pull_subscribe(
        "funding.allocation.>", durable="t-alloc", stream="FUNDING"
    )
    resp = await funding.stub.AllocateFunds(
        allocate_request("TH-ZX", [line("440106", COUNTY, 100), line("2144010601", COUNTY, 60)]),
        metadata=md("440106"),
    )
    await funding.stub.ReverseAllocation(
        funding_pb2.ReverseAllocationRequest(
            allocation_id=resp.allocations[1].allocation_id, reason="重录"
        ),
        metadata=md("440106"),
    )
    assert await funding.relay_all() == 3
    msgs = await sub.fetch(3, timeout=5)
    made = [events_pb2.AllocationMade.FromString(m.data) for m in msgs[:2]]
    assert [m.to_org_code for m in made] == ["440106", "2144010601"]
    assert made[1].meta.org_path == "/000000/440000/440100/440106/2144010601/"
    assert made[1].kind == funding_pb2.ALLOCATION_KIND_TRANSFER
    assert made[1].meta.actor_account_id == "acct-440106-operator"
    reversed_ = events_pb2.AllocationReversed.FromString(msgs[2].data)
    assert (reversed_.allocation_id, reversed_.amount_fen, reversed_.reason) == (
        resp.allocations[1].allocation_id, 6_000, "重录",
    )  # fmt: skip
    assert msgs[0].headers["Nats-Msg-Id"] == made[0].meta.event_id


async def test_concurrent_documents_never_pass_down_more_than_was_received(
    funding: Harness,
) -> None:
    await funding.stub.AllocateFunds(
        allocate_request("TH-ZX", [line("440106", COUNTY, 1_000)], document="本级"),
        metadata=md("440106"),
    )
    calls = [
        funding.stub.AllocateFunds(
            allocate_request("TH-ZX", [line("2144010601", COUNTY, 300)], document=f"并发{i}号"),
            metadata=md("440106"),
        )
        for i in range(5)
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    ok = [r for r in results if not isinstance(r, Exception)]
    assert len(ok) == 3
    assert all(
        isinstance(r, grpc.aio.AioRpcError) and error_of(r)["code"] == "FUNDS_INSUFFICIENT"
        for r in results
        if isinstance(r, Exception)
    )

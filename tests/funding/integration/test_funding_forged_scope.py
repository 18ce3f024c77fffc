"""The service's own half of the scope rule, over a real gRPC channel with a forged county caller
(as if the gateway were bypassed): every list, statistic and export of another county answers
404 ORG_NOT_FOUND, the default ones hold only the caller's subtree, and an allocation line
naming an org outside the caller's subtree answers 404 without the org's name, while an org inside
it that is not a direct child keeps ALLOCATION_NOT_CHILD."""

from __future__ import annotations

import grpc
from funding_harness import (
    CENTRAL,
    CITY,
    COUNTY,
    PATHS,
    PROVINCE,
    Harness,
    allocate_request,
    line,
    md,
)
from funding_service import tables
from test_funding_allocations import fund_chain, refused, row_count
from test_funding_cost_shares import share_request
from zizhu_contracts.funding.v1 import funding_pb2

TIANHE, BAIYUN = "440106", "440111"
BAIYUN_SCHOOL = "1144011101"  # 广州市白云区实验幼儿园
BAIYUN_NAMES = ("白云区", "广州市白云区实验幼儿园")


def forged_requests(org_code: str) -> list[tuple[str, object]]:
    """Every list, statistic and export of funding aimed at org_code."""
    allocations = funding_pb2.ListAllocationsRequest(org_code=org_code)
    summary = funding_pb2.FundSummaryRequest(fiscal_year="2024", org_code=org_code)
    return [
        ("ListAllocations", allocations),
        ("ExportAllocations", funding_pb2.ExportAllocationsRequest(filter=allocations)),
        ("FundSummary", summary),
        ("ExportFundSummary", funding_pb2.ExportFundSummaryRequest(summary=summary)),
        ("ListExecution", funding_pb2.ListExecutionRequest(org_code=org_code)),
        ("ListOverspending", funding_pb2.ListOverspendingRequest(org_code=org_code)),
        ("ListCostShares", funding_pb2.ListCostSharesRequest(org_code=org_code)),
    ]


async def test_a_forged_county_caller_cannot_list_another_county(funding: Harness) -> None:
    await fund_chain(funding)
    await funding.stub.SetCostShare(
        share_request(BAIYUN, (CENTRAL, 3000), (PROVINCE, 3000), (CITY, 2000), (COUNTY, 2000)),
        metadata=md("440100"),
    )
    for method, request in forged_requests(BAIYUN):
        code, err = await refused(getattr(funding.stub, method)(request, metadata=md(TIANHE)))
        assert (code, err["code"], err["field"]) == (
            grpc.StatusCode.NOT_FOUND, "ORG_NOT_FOUND", "org_code",
        ), method  # fmt: skip
        assert not any(name in err["message"] for name in BAIYUN_NAMES), (method, err)
        # The owner of the subtree (and those above it) are served the same request.
        await getattr(funding.stub, method)(request, metadata=md(BAIYUN))
        await getattr(funding.stub, method)(request, metadata=md("440100"))
    # Without an org, every answer holds only the caller's subtree (and the shares governing it).
    allocations = await funding.stub.ListAllocations(
        funding_pb2.ListAllocationsRequest(), metadata=md(TIANHE)
    )
    assert allocations.allocations
    for a in allocations.allocations:
        assert a.to_org_path.startswith(PATHS[TIANHE]) or a.from_org_path.startswith(PATHS[TIANHE])
    execution = await funding.stub.ListExecution(
        funding_pb2.ListExecutionRequest(), metadata=md(TIANHE)
    )
    assert all(r.org.org_path.startswith(PATHS[TIANHE]) for r in execution.rows)
    shares = await funding.stub.ListCostShares(
        funding_pb2.ListCostSharesRequest(), metadata=md(TIANHE)
    )
    assert BAIYUN not in {s.region_org_code for s in shares.cost_shares}


async def test_a_line_outside_the_subtree_is_not_found_without_its_name(funding: Harness) -> None:
    await fund_chain(funding)
    before = await row_count(funding, tables.allocation)
    outside = allocate_request(
        "PG01",
        [line("2144010601", CENTRAL, 1), line(BAIYUN_SCHOOL, CENTRAL, 1)],
        document="越权1号",
    )
    code, err = await refused(funding.stub.AllocateFunds(outside, metadata=md(TIANHE)))
    assert (code, err["code"], err["field"]) == (
        grpc.StatusCode.NOT_FOUND, "ORG_NOT_FOUND", "lines[1].to_org_code",
    )  # fmt: skip
    assert (
        not any(name in err["message"] for name in BAIYUN_NAMES)
        and BAIYUN_SCHOOL not in err["message"]
    )
    unknown = allocate_request("PG01", [line("9999999999", CENTRAL, 1)], document="越权2号")
    _, unknown_err = await refused(funding.stub.AllocateFunds(unknown, metadata=md(TIANHE)))
    assert unknown_err["code"] == "ORG_NOT_FOUND"
    assert unknown_err["message"].split("：", 1)[1] == err["message"].split("：", 1)[1]
    # A sibling county from a county: also outside.
    code, err = await refused(
        funding.stub.AllocateFunds(
            allocate_request("PG01", [line(BAIYUN, CENTRAL, 1)], document="越权3号"),
            metadata=md(TIANHE),
        )
    )
    assert (code, err["code"]) == (grpc.StatusCode.NOT_FOUND, "ORG_NOT_FOUND")
    # Inside the subtree but not a direct child: still ALLOCATION_NOT_CHILD, and it may be named.
    code, err = await refused(
        funding.stub.AllocateFunds(
            allocate_request("PG01", [line(BAIYUN_SCHOOL, CENTRAL, 1)], document="越级1号"),
            metadata=md("440100"),
        )
    )
    assert (code, err["code"], err["field"]) == (
        grpc.StatusCode.INVALID_ARGUMENT, "ALLOCATION_NOT_CHILD", "lines[0].to_org_code",
    )  # fmt: skip
    assert await row_count(funding, tables.allocation) == before

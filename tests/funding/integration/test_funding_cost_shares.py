"""Cost shares (分担比例): set per project, year and region within scope; parts fixed above the
caller stay; listing shows the ancestors' shares and those below."""

from __future__ import annotations

import grpc
from funding_harness import CENTRAL, CITY, COUNTY, PROVINCE, Harness, md
from test_funding_allocations import refused
from zizhu_contracts.funding.v1 import funding_pb2


def share_request(
    region: str, *parts: tuple[int, int], project: str = "PG01"
) -> funding_pb2.SetCostShareRequest:
    return funding_pb2.SetCostShareRequest(
        project_code=project,
        fiscal_year="2024",
        region_org_code=region,
        shares=[funding_pb2.ShareLine(source=s, basis_points=bp) for s, bp in parts],  # type: ignore[arg-type]
        document_number="国办发〔2019〕27号",
    )


async def test_shares_are_set_replaced_and_listed_within_scope(funding: Harness) -> None:
    first = await funding.stub.SetCostShare(
        share_request("440000", (CENTRAL, 3000), (PROVINCE, 7000)), metadata=md("000000")
    )
    assert first.cost_share.region_org_path == "/000000/440000/"
    assert first.cost_share.set_by == "acct-000000-operator"
    await funding.stub.SetCostShare(
        share_request("440100", (CENTRAL, 3000), (PROVINCE, 4000), (CITY, 1500), (COUNTY, 1500)),
        metadata=md("440000"),
    )
    await funding.stub.SetCostShare(
        share_request("440100", (CENTRAL, 3000), (PROVINCE, 5000), (CITY, 1000), (COUNTY, 1000)),
        metadata=md("440000", "admin"),
    )
    county_view = await funding.stub.ListCostShares(
        funding_pb2.ListCostSharesRequest(fiscal_year="2024"), metadata=md("440106")
    )
    assert [
        (s.region_org_code, [x.basis_points for x in s.shares]) for s in county_view.cost_shares
    ] == [
        ("440000", [3000, 7000]),
        ("440100", [3000, 5000, 1000, 1000]),
    ]
    other_province = await funding.stub.ListCostShares(
        funding_pb2.ListCostSharesRequest(), metadata=md("450000")
    )
    assert other_province.page.total == 0


async def test_a_province_cannot_change_the_central_part_set_by_the_nation(
    funding: Harness,
) -> None:
    await funding.stub.SetCostShare(
        share_request("440000", (CENTRAL, 3000), (PROVINCE, 7000)), metadata=md("000000")
    )
    code, err = await refused(
        funding.stub.SetCostShare(
            share_request("440100", (CENTRAL, 5000), (PROVINCE, 5000)), metadata=md("440000")
        )
    )
    assert (code, err["code"], err["details"]["source"]) == (
        grpc.StatusCode.FAILED_PRECONDITION, "COST_SHARE_FIXED_ABOVE", "CENTRAL",
    )  # fmt: skip


async def test_bad_cost_shares_are_refused_with_code_and_field(funding: Harness) -> None:
    cases = [
        ("440000", share_request("440000", (CENTRAL, 3000), (PROVINCE, 6000)),
         grpc.StatusCode.INVALID_ARGUMENT, "COST_SHARE_SUM", "shares"),
        ("440106", share_request("2144010601", (COUNTY, 10000)),
         grpc.StatusCode.INVALID_ARGUMENT, "COST_SHARE_REGION_INVALID", "region_org_code"),
        ("440106", share_request("440111", (COUNTY, 10000)),
         grpc.StatusCode.NOT_FOUND, "ORG_NOT_FOUND", "region_org_code"),
        ("440100", share_request("440100", (CENTRAL, 5000), (CITY, 5000)),
         grpc.StatusCode.PERMISSION_DENIED, "COST_SHARE_OWN_REGION", "region_org_code"),
        ("440106", share_request("440106", (COUNTY, 10000), project="NOPE"),
         grpc.StatusCode.NOT_FOUND, "PROJECT_NOT_FOUND", "project_code"),
        ("440106", share_request("440106", (COUNTY, 10000)).__class__(
            project_code="PG01", fiscal_year="2024",
            shares=[funding_pb2.ShareLine(source=COUNTY, basis_points=10001)]),
         grpc.StatusCode.INVALID_ARGUMENT, "COST_SHARE_OUT_OF_RANGE", "shares[0].basis_points"),
    ]  # fmt: skip
    for caller, req, status, code, field in cases:
        got, err = await refused(funding.stub.SetCostShare(req, metadata=md(caller)))
        assert (got, err["code"], err["field"]) == (status, code, field)
    code, err = await refused(
        funding.stub.SetCostShare(
            share_request("440106", (COUNTY, 10000)), metadata=md("440106", "viewer")
        )
    )
    assert (code, err["code"]) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_ALLOWED")
    listed = await funding.stub.ListCostShares(
        funding_pb2.ListCostSharesRequest(), metadata=md("000000")
    )
    assert listed.page.total == 0

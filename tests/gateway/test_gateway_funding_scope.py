"""Funding through the gateway: an allocation line naming an org outside the caller's subtree is
404 ORG_NOT_FOUND (field lines[i].to_org_code) exactly as for an unknown org, with nothing of
that org in the answer; inside the subtree but not a direct child it stays ALLOCATION_NOT_CHILD.
Cost-share lists show the shares governing the caller and those below it, never a sibling's."""

from __future__ import annotations

from gateway.policy import OPERATOR
from gateway_harness import Api
from gateway_world import HOME, SIBLING, World, next_serial
from scope_targets import PROJECT, fiscal_year, open_period

SIBLING_NAMES = ("一市乙县", "甲省二市", "乙省")


def document(*lines: tuple[str, str]) -> dict:
    year = fiscal_year()
    return {
        "project_code": PROJECT,
        "fiscal_year": year,
        "document_number": f"范围负例〔{year}〕{next_serial()}号",
        "document_date": f"{year}-03-15",
        "lines": [{"to_org_code": org, "source": source, "amount_fen": 100}
                  for org, source in lines],
    }  # fmt: skip


def test_a_line_outside_the_subtree_is_404_without_the_orgs_name(api: Api, world: World) -> None:
    open_period(api, world)
    county = world.user_of(HOME["county"], OPERATOR)
    for outside in (SIBLING["county"], SIBLING["city"], SIBLING["province"]):
        resp = api.request("POST", "/funding/allocations", county,
                           json=document((HOME["school"], "county"), (outside, "county")))  # fmt: skip
        assert resp.status_code == 404, resp.text
        error = resp.json()["error"]
        assert (error["code"], error["field"]) == ("ORG_NOT_FOUND", "lines[1].to_org_code")
        assert not any(name in resp.text for name in SIBLING_NAMES), resp.text
    unknown = api.request("POST", "/funding/allocations", county,
                          json=document((HOME["school"], "county"), ("139998", "county")))  # fmt: skip
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"] == error["message"]
    # The city reaches the county's school, inside its subtree but not its direct child.
    city = world.user_of(HOME["city"], OPERATOR)
    resp = api.request("POST", "/funding/allocations", city,
                       json=document((HOME["school"], "city")))  # fmt: skip
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert (error["code"], error["field"]) == ("ALLOCATION_NOT_CHILD", "lines[0].to_org_code")


def test_cost_share_lists_hold_the_governing_shares_and_none_of_a_sibling(
    api: Api, world: World
) -> None:
    open_period(api, world)
    year = fiscal_year()

    def share(by: str, region: str) -> None:
        api.ok("POST", "/funding/cost-shares", world.user_of(by, OPERATOR), json={
            "project_code": PROJECT, "fiscal_year": year, "region_org_code": region,
            "shares": [{"source": "central", "basis_points": 5000},
                       {"source": "province", "basis_points": 5000}],
        })  # fmt: skip

    # Set by the nation (no part of it is fixed from above).
    share(HOME["national"], HOME["province"])  # governs the whole home branch
    share(HOME["national"], SIBLING["county"])
    share(HOME["national"], HOME["county"])
    county = world.user_of(HOME["county"], OPERATOR)
    items = api.ok("GET", "/funding/cost-shares", county,
                   params={"fiscal_year": year, "project_code": PROJECT})["items"]  # fmt: skip
    regions = {s["region_org_code"] for s in items}
    assert {HOME["province"], HOME["county"]} <= regions
    assert SIBLING["county"] not in regions
    resp = api.request("GET", "/funding/cost-shares", county,
                       params={"org_code": SIBLING["county"]})  # fmt: skip
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "ORG_NOT_FOUND"

"""Rules of the funding ledger without I/O: input checks, the pass-down limit, cost shares,
periods and fiscal years, and the summary layout."""

from __future__ import annotations

import pytest
from funding_service.domain.model import (
    AllocationInput,
    AllocationKind,
    AllocationLineInput,
    Balance,
    Figures,
    FundSource,
    Level,
    OrgNode,
    Period,
    ShareLine,
    Term,
    periods_of_fiscal_year,
)
from funding_service.domain.rules import (
    check_date,
    check_pass_down,
    check_reversal_keeps_cover,
    check_shares_fixed_above,
    expected_split,
    line_kind,
    split_by_share,
    subtree_upper,
    validate_allocation,
    validate_shares,
)
from funding_service.domain.summary import (
    CHILD_REGION,
    DIRECT_SCHOOLS,
    SCHOOL,
    TOTAL,
    assemble,
)
from zizhu_common.errors import FailedPrecondition, InvalidArgument

CITY = OrgNode("440100", "广州市", Level.CITY, "440000", "/000000/440000/440100/")
TIANHE = OrgNode("440106", "天河区", Level.COUNTY, "440100", "/000000/440000/440100/440106/")
BAIYUN = OrgNode("440111", "白云区", Level.COUNTY, "440100", "/000000/440000/440100/440111/")
CITY_SCHOOL = OrgNode("3644010001", "轻工职校", Level.SCHOOL, "440100", CITY.path + "3644010001/")
TIANHE_SCHOOL = OrgNode(
    "2144010601", "华阳小学", Level.SCHOOL, "440106", TIANHE.path + "2144010601/"
)


def request(*lines: AllocationLineInput, **kw: str) -> AllocationInput:
    base = dict(
        project_code="PG01",
        fiscal_year="2024",
        from_org_code="",
        document_number="粤财教〔2024〕8号",
        document_date="2024-03-01",
        allocated_on="",
        note="",
    )
    base.update(kw)
    return AllocationInput(lines=tuple(lines), **base)  # type: ignore[arg-type]


def test_period_counts_towards_the_year_its_term_starts_in() -> None:
    assert Period("2024-2025", Term.AUTUMN).fiscal_year == "2024"
    assert Period("2024-2025", Term.SPRING).fiscal_year == "2025"
    assert periods_of_fiscal_year("2025") == [
        Period("2024-2025", Term.SPRING),
        Period("2025-2026", Term.AUTUMN),
    ]


def test_valid_document_is_normalised() -> None:
    req = validate_allocation(
        request(AllocationLineInput(" 440106 ", 1, 500), document_date="20240301")
    )
    assert req.document_date == "2024-03-01"
    assert req.allocated_on == "2024-03-01"
    assert req.lines[0].to_org_code == "440106"


@pytest.mark.parametrize(
    ("req", "code", "field"),
    [
        (request(), "LINES_REQUIRED", "lines"),
        (request(AllocationLineInput("440106", 1, 1), fiscal_year="24"), "FISCAL_YEAR_INVALID", "fiscal_year"),
        (request(AllocationLineInput("440106", 1, 1), document_number=" "), "DOCUMENT_NUMBER_REQUIRED", "document_number"),
        (request(AllocationLineInput("440106", 1, 1), document_date="2024-02-30"), "DATE_INVALID", "document_date"),
        (request(AllocationLineInput("440106", 1, 0)), "AMOUNT_NOT_POSITIVE", "lines[0].amount_fen"),
        (request(AllocationLineInput("440106", 9, 100)), "FUND_SOURCE_INVALID", "lines[0].source"),
        (request(AllocationLineInput("", 1, 100)), "TO_ORG_REQUIRED", "lines[0].to_org_code"),
        (
            request(AllocationLineInput("440106", 1, 100), AllocationLineInput("440106", 1, 5)),
            "LINE_DUPLICATE",
            "lines[1].to_org_code",
        ),
        (request(AllocationLineInput("440106", 1, 10**15)), "AMOUNT_TOO_LARGE", "lines[0].amount_fen"),
    ],
)  # fmt: skip
def test_malformed_documents_are_refused_with_code_and_field(
    req: AllocationInput, code: str, field: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        validate_allocation(req)
    assert (err.value.code, err.value.field) == (code, field)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in err.value.message)


def test_more_than_a_thousand_lines_are_refused() -> None:
    lines = [AllocationLineInput(f"S{i}", 1, 1) for i in range(1001)]
    with pytest.raises(InvalidArgument, match="最多1000条"):
        validate_allocation(request(*lines))


def test_dates_accept_iso_and_template_forms_only() -> None:
    assert check_date("2024-1-5".replace("-1-5", "-01-05"), field="d") == "2024-01-05"
    for bad in ("2024/01/05", "05-01-2024", "2024-13-01"):
        with pytest.raises(InvalidArgument):
            check_date(bad, field="d")


def test_line_to_itself_is_a_contribution_of_its_own_level_or_social() -> None:
    assert line_kind(CITY, CITY, FundSource.CITY, 0) is AllocationKind.CONTRIBUTION
    assert line_kind(CITY, CITY, FundSource.SOCIAL, 0) is AllocationKind.CONTRIBUTION
    with pytest.raises(InvalidArgument) as err:
        line_kind(CITY, CITY, FundSource.CENTRAL, 2)
    assert err.value.code == "CONTRIBUTION_SOURCE_INVALID"
    assert err.value.field == "lines[2].source"


def test_transfers_go_only_to_direct_children_that_are_active() -> None:
    assert line_kind(CITY, TIANHE, FundSource.CENTRAL, 0) is AllocationKind.TRANSFER
    assert line_kind(CITY, CITY_SCHOOL, FundSource.CITY, 0) is AllocationKind.TRANSFER
    with pytest.raises(InvalidArgument) as err:
        line_kind(CITY, TIANHE_SCHOOL, FundSource.CENTRAL, 1)
    assert err.value.code == "ALLOCATION_NOT_CHILD"
    retired = OrgNode(BAIYUN.code, BAIYUN.name, BAIYUN.level, CITY.code, BAIYUN.path, active=False)
    with pytest.raises(InvalidArgument) as err:
        line_kind(CITY, retired, FundSource.CENTRAL, 0)
    assert err.value.code == "ORG_RETIRED"


def test_pass_down_is_limited_per_source_by_received_plus_contribution() -> None:
    balances = {FundSource.CENTRAL: Balance(received_fen=1000, allocated_down_fen=300)}
    check_pass_down(balances, {}, {FundSource.CENTRAL: 700})
    check_pass_down(balances, {FundSource.CITY: 50}, {FundSource.CITY: 50})
    with pytest.raises(FailedPrecondition) as err:
        check_pass_down(
            balances, {FundSource.CITY: 50}, {FundSource.CENTRAL: 701, FundSource.CITY: 60}
        )
    assert err.value.code == "FUNDS_INSUFFICIENT"
    short = err.value.details["shortfalls"]
    assert [(s["source"], s["requested_fen"], s["available_fen"]) for s in short] == [
        ("CENTRAL", 701, 700),
        ("CITY", 60, 50),
    ]
    assert "中央资金本次下达7.01元，可下达余额7.00元" in err.value.message


def test_reversal_must_leave_the_holder_covering_what_it_passed_down() -> None:
    check_reversal_keeps_cover(TIANHE, FundSource.CENTRAL, Balance(1000, 0, 400), 600)
    with pytest.raises(FailedPrecondition) as err:
        check_reversal_keeps_cover(TIANHE, FundSource.CENTRAL, Balance(1000, 0, 401), 600)
    assert err.value.code == "ALLOCATION_PASSED_DOWN"


def test_cost_shares_must_sum_to_one_hundred_percent() -> None:
    ok = validate_shares(
        [ShareLine(FundSource.PROVINCE, 7000), ShareLine(FundSource.CENTRAL, 3000)]
    )
    assert [s.source for s in ok] == [FundSource.CENTRAL, FundSource.PROVINCE]
    with pytest.raises(InvalidArgument) as err:
        validate_shares([ShareLine(FundSource.CENTRAL, 3000), ShareLine(FundSource.PROVINCE, 6000)])
    assert err.value.code == "COST_SHARE_SUM"
    with pytest.raises(InvalidArgument) as err:
        validate_shares([ShareLine(FundSource.CENTRAL, 5000), ShareLine(FundSource.CENTRAL, 5000)])
    assert err.value.code == "COST_SHARE_DUPLICATE"


def test_parts_fixed_above_the_caller_cannot_change() -> None:
    fixed = [ShareLine(FundSource.CENTRAL, 3000), ShareLine(FundSource.PROVINCE, 7000)]
    refined = [
        ShareLine(FundSource.CENTRAL, 3000),
        ShareLine(FundSource.PROVINCE, 4000),
        ShareLine(FundSource.COUNTY, 3000),
    ]
    check_shares_fixed_above(refined, fixed, Level.PROVINCE)
    with pytest.raises(FailedPrecondition) as err:
        check_shares_fixed_above(refined, fixed, Level.CITY)
    assert err.value.code == "COST_SHARE_FIXED_ABOVE"


def test_split_by_share_sums_exactly_to_the_amount() -> None:
    parts = split_by_share(
        1001, [ShareLine(FundSource.CENTRAL, 3333), ShareLine(FundSource.PROVINCE, 6667)]
    )
    assert sum(parts.values()) == 1001
    assert parts == {FundSource.CENTRAL: 334, FundSource.PROVINCE: 667}


def test_expected_split_uses_the_nearest_share_of_each_subtree() -> None:
    province = "/000000/440000/"
    shares = {
        province: (ShareLine(FundSource.CENTRAL, 5000), ShareLine(FundSource.PROVINCE, 5000)),
        TIANHE.path: (
            ShareLine(FundSource.CENTRAL, 5000),
            ShareLine(FundSource.PROVINCE, 2000),
            ShareLine(FundSource.COUNTY, 3000),
        ),
    }
    executed = {CITY.path: 1000, TIANHE.path: 600, province: 1000}
    assert expected_split(CITY.path, executed, shares) == {
        FundSource.CENTRAL: 500,
        FundSource.PROVINCE: 320,
        FundSource.COUNTY: 180,
    }
    assert expected_split("/000000/450000/", {"/000000/450000/": 10}, shares) == {}


def test_subtree_range_excludes_longer_sibling_codes() -> None:
    upper = subtree_upper("/000000/440000/")
    assert "/000000/440000/440100/" < upper
    assert not ("/000000/4400001/" < upper)


def test_figures_derive_balance_rate_and_overspending() -> None:
    f = Figures(received_fen=1000, own_contribution_fen=200, allocated_down_fen=900,
                subtree_contributed_fen=300, executed_fen=650)  # fmt: skip
    assert (f.funds_fen, f.retained_fen, f.balance_fen) == (1300, 300, 650)
    assert f.execution_rate_bp == 5000 and not f.overspent
    f.executed_fen = 1301
    assert f.overspent and f.balance_fen == -1
    assert Figures(executed_fen=5).execution_rate_bp == 0


def test_summary_lists_total_direct_schools_then_child_regions() -> None:
    figures = {
        CITY.code: Figures(received_fen=10),
        CITY_SCHOOL.code: Figures(received_fen=3, executed_fen=2),
        TIANHE.code: Figures(received_fen=5),
    }
    rows = assemble(CITY, [CITY_SCHOOL, TIANHE, BAIYUN], figures, expand_direct_schools=False)
    assert [r.kind for r in rows] == [TOTAL, DIRECT_SCHOOLS, CHILD_REGION, CHILD_REGION]
    assert rows[1].org is None and rows[1].figures.executed_fen == 2
    assert rows[3].figures.received_fen == 0
    expanded = assemble(CITY, [CITY_SCHOOL, TIANHE], figures, expand_direct_schools=True)
    assert [r.kind for r in expanded] == [TOTAL, SCHOOL, CHILD_REGION]
    assert [r.kind for r in assemble(TIANHE_SCHOOL, [], figures, expand_direct_schools=False)] == [
        TOTAL
    ]

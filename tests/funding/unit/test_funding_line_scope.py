"""An allocation line's recipient outside the allocating org's subtree is not found (404, no
name); inside it but not a direct child it is ALLOCATION_NOT_CHILD."""

from __future__ import annotations

import pytest
from funding_service.domain.model import FundSource, Level, OrgNode
from funding_service.domain.rules import line_kind
from zizhu_common.errors import InvalidArgument, NotFound

CITY = OrgNode("440100", "广州市", Level.CITY, "440000", "/000000/440000/440100/")
TIANHE = OrgNode("440106", "天河区", Level.COUNTY, "440100", "/000000/440000/440100/440106/")
BAIYUN = OrgNode("440111", "白云区", Level.COUNTY, "440100", "/000000/440000/440100/440111/")
BAIYUN_SCHOOL = OrgNode(
    "1144011101", "白云区实验幼儿园", Level.SCHOOL, "440111",
    "/000000/440000/440100/440111/1144011101/",
)  # fmt: skip


@pytest.mark.parametrize("to_org", [BAIYUN, BAIYUN_SCHOOL, CITY])
def test_a_recipient_outside_the_subtree_is_not_found_and_not_named(to_org: OrgNode) -> None:
    with pytest.raises(NotFound) as err:
        line_kind(TIANHE, to_org, FundSource.COUNTY, 3)
    assert (err.value.code, err.value.field) == ("ORG_NOT_FOUND", "lines[3].to_org_code")
    assert to_org.name not in err.value.message and to_org.code not in err.value.message


def test_a_recipient_inside_the_subtree_below_a_child_is_not_a_child() -> None:
    with pytest.raises(InvalidArgument) as err:
        line_kind(CITY, BAIYUN_SCHOOL, FundSource.CITY, 0)
    assert err.value.code == "ALLOCATION_NOT_CHILD"
    assert err.value.field == "lines[0].to_org_code"

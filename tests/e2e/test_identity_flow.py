"""E2E through the gateway over HTTP, with the real identity service: the national admin creates a
province admin, who creates a county admin, who creates a school operator and a school auditor;
each logs in (changing the temporary password, enrolling and then using TOTP where required) and
sees exactly its own subtree."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from zizhu_common.crypto import generate_sm2_keypair

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests/gateway" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


h = _load("gateway_harness")

PROVINCE, OTHER_PROVINCE = "510000", "520000"
CITY, COUNTY, OTHER_COUNTY = "510100", "510104", "510105"
SCHOOL, OTHER_SCHOOL = "2151010401", "2151010402"


@pytest.fixture(scope="module")
def api(nats_server, redis_server, tmp_path_factory) -> Iterator[object]:
    tmp = tmp_path_factory.mktemp("identity-flow")
    identity_addr, identity = h.start_identity(
        nats_url=nats_server.url, redis_url=redis_server.url, tmp=tmp,
        env={"TOKEN_SIGNING_KEY": generate_sm2_keypair()[0]},
    )  # fmt: skip
    try:
        url, gateway = h.start_gateway(identity_addr=identity_addr, nats_url=nats_server.url,
                                       redis_url=redis_server.url, tmp=tmp)  # fmt: skip
        client = h.Api(url)
        yield client
        client.close()
        gateway.stop()
    finally:
        identity.stop()


def subtree_codes(api, user) -> set[str]:
    data = api.ok("GET", f"/orgs/{user.org_code}/subtree", user,
                  params={"max_depth": 0, "include_root": True, "page_size": 1000})  # fmt: skip
    return {o["org_code"] for o in data["items"]}


def account_names(api, user) -> set[str]:
    data = api.ok("GET", "/accounts", user, params={"page_size": 1000})
    return {a["username"] for a in data["items"]}


def test_five_level_account_chain_sees_exactly_its_own_subtree(api) -> None:
    national = h.bootstrap_admin()
    api.login(national)
    assert national.level == "national"
    resp = api.import_orgs(national, [
        {"机构代码": PROVINCE, "名称": "四川省", "级别": "省", "上级代码": h.NATIONAL_CODE},
        {"机构代码": OTHER_PROVINCE, "名称": "贵州省", "级别": "省", "上级代码": h.NATIONAL_CODE},
    ])  # fmt: skip
    assert resp.status_code == 200 and resp.json()["created_count"] == 2, resp.text

    # national → province admin (must change its password and enrol TOTP at first login)
    province = api.create_account(national, username="sc_admin", org_code=PROVINCE,
                                  roles=["admin"], id_number=h.resident_id(1))  # fmt: skip
    first = api.login(province, expect_restricted=True)
    assert first["status"] == "password_change_required"
    api.login(province)
    assert province.totp_secret, "admins must enrol TOTP"
    without_code = api.request(
        "POST", "/auth/login", json={"username": province.username, "password": province.password}
    )
    assert without_code.json()["status"] == "totp_required"

    resp = api.import_orgs(province, [
        {"机构代码": CITY, "名称": "成都市", "级别": "市", "上级代码": PROVINCE},
        {"机构代码": COUNTY, "名称": "锦江区", "级别": "县", "上级代码": CITY},
        {"机构代码": OTHER_COUNTY, "名称": "青羊区", "级别": "县", "上级代码": CITY},
    ])  # fmt: skip
    assert resp.status_code == 200, resp.text
    refused = api.import_orgs(province, [
        {"机构代码": "520100", "名称": "贵阳市", "级别": "市", "上级代码": OTHER_PROVINCE}
    ])  # fmt: skip
    assert refused.status_code == 422
    assert refused.json()["error"]["details"]["errors"][0]["code"] == "PARENT_NOT_FOUND"

    # province → county admin
    county = api.create_account(province, username="jj_admin", org_code=COUNTY, roles=["admin"],
                                id_number=h.resident_id(2))  # fmt: skip
    api.login(county)
    resp = api.import_orgs(county, [
        {"机构代码": SCHOOL, "名称": "锦江小学", "级别": "学校", "上级代码": COUNTY,
         "学段": "义务教育"},
    ])  # fmt: skip
    assert resp.status_code == 200, resp.text
    other_school = api.import_orgs(national, [
        {"机构代码": OTHER_SCHOOL, "名称": "青羊小学", "级别": "学校", "上级代码": OTHER_COUNTY},
    ])  # fmt: skip
    assert other_school.status_code == 200, other_school.text

    # county → school operator and auditor
    operator = api.create_account(county, username="jjxx_operator", org_code=SCHOOL,
                                  roles=["operator"], id_number=h.resident_id(3))  # fmt: skip
    auditor = api.create_account(county, username="jjxx_auditor", org_code=SCHOOL,
                                 roles=["auditor"], id_number=h.resident_id(4))  # fmt: skip
    api.login(operator)
    api.login(auditor)
    assert auditor.totp_secret, "auditors must use TOTP"
    assert not operator.totp_secret, "operators need no TOTP by default"

    # Each sees exactly its own subtree.
    assert subtree_codes(api, province) == {PROVINCE, CITY, COUNTY, OTHER_COUNTY, SCHOOL,
                                            OTHER_SCHOOL}  # fmt: skip
    assert subtree_codes(api, county) == {COUNTY, SCHOOL}
    assert subtree_codes(api, operator) == {SCHOOL}
    assert subtree_codes(api, auditor) == {SCHOOL}
    assert {PROVINCE, OTHER_PROVINCE} <= subtree_codes(api, national)

    assert account_names(api, province) == {"sc_admin", "jj_admin", "jjxx_operator",
                                            "jjxx_auditor"}  # fmt: skip
    assert account_names(api, county) == {"jj_admin", "jjxx_operator", "jjxx_auditor"}
    assert {"sc_admin", "jj_admin"} <= account_names(api, national)

    # Outside the subtree: 404, never the object; the policy table keeps operators out of
    # account management.
    for user, outside in ((province, OTHER_PROVINCE), (county, OTHER_COUNTY),
                          (county, CITY), (operator, OTHER_SCHOOL), (auditor, COUNTY)):  # fmt: skip
        resp = api.request("GET", f"/orgs/{outside}", user)
        assert resp.status_code == 404, (user.username, outside, resp.text)
    assert api.request("GET", f"/accounts/{province.account_id}", county).status_code == 404
    assert api.request("GET", "/accounts", operator).status_code == 403

    for user in (province, county, operator, auditor):
        me = api.ok("GET", "/me", user)
        assert me["org_code"] == user.org_code and me["restricted"] is False
        assert me["id_number_masked"] != h.resident_id(1)

"""Submitting or auditing records of another school or a sibling subtree through the gateway:
404 with the record-not-found code, exactly as for ids that do not exist, naming only the ids."""

from __future__ import annotations

from gateway.policy import AUDITOR, OPERATOR
from gateway_harness import Api
from gateway_world import HOME, SIBLING, World
from scope_targets import new_aid_record

SIBLING_NAMES = ("一市乙县", "甲县第二小学")


def test_records_outside_the_subtree_are_not_found_like_unknown_ids(api: Api, world: World) -> None:
    record_id = new_aid_record(api, world, SIBLING["school"])
    unknown_id = "AR00000000000000000000000000000000"
    school_operator = world.user_of(HOME["school"], OPERATOR)
    outside = api.request("POST", "/aid/records:submit", school_operator,
                          json={"record_ids": [record_id]})  # fmt: skip
    unknown = api.request("POST", "/aid/records:submit", school_operator,
                          json={"record_ids": [unknown_id]})  # fmt: skip
    assert outside.status_code == unknown.status_code == 404, outside.text
    assert outside.json()["error"]["code"] == unknown.json()["error"]["code"] == "NOT_FOUND"
    assert outside.json()["error"]["message"] == unknown.json()["error"]["message"]
    assert outside.json()["error"]["details"]["not_found_ids"] == [record_id]
    # The school's auditor on the sibling school's record; the county's on a sibling county's.
    county_record_id = new_aid_record(api, world, SIBLING["county"])
    for auditor, rid in ((world.user_of(HOME["school"], AUDITOR), record_id),
                         (world.user_of(HOME["county"], AUDITOR), county_record_id)):  # fmt: skip
        resp = api.request("POST", "/aid/records:audit", auditor, json={
            "record_ids": [rid, unknown_id], "decision": "approve", "opinion": "同意"})  # fmt: skip
        assert resp.status_code == 404, resp.text
        error = resp.json()["error"]
        assert error["code"] == "NOT_FOUND" and error["field"] == "record_ids"
        assert error["details"] == {"not_found_ids": [rid, unknown_id], "not_found_count": 2}
        assert not any(name in resp.text for name in SIBLING_NAMES), resp.text

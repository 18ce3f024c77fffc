"""Submit and audit with record ids outside the caller's subtree: 404 with the record-not-found
code, exactly as for ids that do not exist; a batch names which ids were not found and nothing
about them, and changes nothing."""

from __future__ import annotations

import grpc
from aid_harness import BYPS_OP, HY_AUD, MS, MS_AUD, MS_OP, Env, refused, who
from zizhu_contracts.aid.v1 import aid_pb2
from zizhu_contracts.common.v1 import common_pb2

HIGH = common_pb2.STAGE_GENERAL_HIGH_SCHOOL
DIFFICULT = common_pb2.HARDSHIP_LEVEL_DIFFICULT
BY_AUDITOR = who("/000000/440000/440100/440111/", "auditor")  # the sibling county of 天河
UNKNOWN = "AR-no-such-record"


async def _drafts(env: Env, n: int) -> list[str]:
    kids = await env.kids(MS, HIGH, n, hardship=DIFFICULT)
    return [(await env.enter(MS_OP, "GJ-PG-ZXJ", k, tier_code="2")).record_id for k in kids]


def _leaks(body: dict, record: aid_pb2.AidRecord) -> bool:
    text = str(body)
    return any(v and v in text for v in (record.student_name, record.school_org_code,
                                         record.school_name, record.school_org_path))  # fmt: skip


async def test_submit_of_another_schools_record_is_404_like_an_unknown_id(env: Env) -> None:
    [rid] = await _drafts(env, 1)
    record = await env.record(MS_OP, rid)
    outside = await refused(env.submit(BYPS_OP, [rid]), grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
    unknown = await refused(env.submit(BYPS_OP, [UNKNOWN]), grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
    assert outside["field"] == unknown["field"] == "record_ids"
    assert outside["details"] == {"not_found_ids": [rid], "not_found_count": 1}
    assert outside["message"] == unknown["message"]
    assert not _leaks(outside, record)
    # Nothing moved: the record is still a draft its school may submit.
    assert (await env.record(MS_OP, rid)).status == aid_pb2.RECORD_STATUS_DRAFT
    await env.submit(MS_OP, [rid])


async def test_audit_outside_the_subtree_is_404_and_the_batch_names_only_the_ids(
    env: Env,
) -> None:
    ids = await _drafts(env, 2)
    await env.submit(MS_OP, ids)
    record = await env.record(MS_AUD, ids[0])
    # Another school's auditor and a sibling county's: not found, as an unknown id would be.
    for auditor in (HY_AUD, BY_AUDITOR):
        body = await refused(env.approve(auditor, ids), grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
        assert body["details"] == {"not_found_ids": ids, "not_found_count": 2}
        assert not _leaks(body, record)
    # A mixed batch: the school's own auditor with one unknown id. Nothing is decided.
    body = await refused(
        env.approve(MS_AUD, [*ids, UNKNOWN]), grpc.StatusCode.NOT_FOUND, "NOT_FOUND"
    )
    assert body["details"] == {"not_found_ids": [UNKNOWN], "not_found_count": 1}
    for rid in ids:
        assert (await env.record(MS_AUD, rid)).status == (
            aid_pb2.RECORD_STATUS_PENDING_SCHOOL_AUDIT
        )
    out = await env.approve(MS_AUD, ids)
    assert out.forwarded_count == 2

"""The multi-level audit: school audit → county → city → province → approved; returns with a
mandatory reason go back to the school; four-eyes; bulk decisions all or nothing; revocation."""

from __future__ import annotations

import grpc
from aid_harness import (
    GD_AUD,
    GZ_AUD,
    GZ_OP,
    HY,
    HY_AUD,
    HY_OP,
    MS,
    MS_AUD,
    MS_OP,
    NATION_AUD,
    PERIOD,
    SYSU,
    SYSU_AUD,
    SYSU_OP,
    TH_AUD,
    ZZ,
    ZZ_AUD,
    ZZ_OP,
    Env,
    refused,
    who,
)
from zizhu_contracts.aid.v1 import aid_pb2, events_pb2
from zizhu_contracts.common.v1 import common_pb2

COMPULSORY = common_pb2.STAGE_COMPULSORY
HIGH = common_pb2.STAGE_GENERAL_HIGH_SCHOOL
DIFFICULT = common_pb2.HARDSHIP_LEVEL_DIFFICULT
SCHOOL, COUNTY, CITY, PROVINCE, NATIONAL = (
    common_pb2.ORG_LEVEL_SCHOOL, common_pb2.ORG_LEVEL_COUNTY, common_pb2.ORG_LEVEL_CITY,
    common_pb2.ORG_LEVEL_PROVINCE, common_pb2.ORG_LEVEL_NATIONAL,
)  # fmt: skip
PENDING_AUTHORITY = aid_pb2.RECORD_STATUS_PENDING_AUTHORITY_AUDIT


async def _submitted(env: Env, n: int = 1) -> list[str]:
    kids = await env.kids(MS, HIGH, n, hardship=DIFFICULT)
    ids = [(await env.enter(MS_OP, "GJ-PG-ZXJ", k, tier_code="2")).record_id for k in kids]
    await env.submit(MS_OP, ids)
    return ids


async def test_record_climbs_county_city_province_and_is_approved_once(env: Env) -> None:
    [rid] = await _submitted(env)
    rec = await env.record(MS_AUD, rid)
    assert rec.status == aid_pb2.RECORD_STATUS_PENDING_SCHOOL_AUDIT
    assert list(rec.audit_chain) == [COUNTY, CITY, PROVINCE]
    steps = [(MS_AUD, COUNTY, "440106"), (TH_AUD, CITY, "440100"), (GZ_AUD, PROVINCE, "440000")]
    for auditor, next_level, next_org in steps:
        out = await env.approve(auditor, [rid])
        assert out.forwarded_count == 1 and out.approved_count == 0
        rec = await env.record(auditor, rid)
        assert (rec.status, rec.pending_level, rec.pending_org_code) == (
            PENDING_AUTHORITY,
            next_level,
            next_org,
        )
    out = await env.approve(GD_AUD, [rid], opinion="省级复核通过")
    assert out.approved_count == 1
    rec = await env.record(GD_AUD, rid)
    assert rec.status == aid_pb2.RECORD_STATUS_APPROVED and rec.approved_at.seconds
    approved = [
        e
        for e in await env.events("aid.record.approved", events_pb2.RecordApproved)
        if e.record_id == rid
    ]
    assert len(approved) == 1
    e = approved[0]
    assert e.student_name and e.student_name == rec.student_name
    assert (e.student_id, e.amount_fen, e.approved_level, e.school_org_path) == (
        rec.student_id,
        115000,
        PROVINCE,
        MS + "",
    )
    assert e.meta.event_id and e.meta.producer == "aid" and e.meta.org_path == MS
    history = await env.call(
        "GetRecordHistory", aid_pb2.GetRecordHistoryRequest(record_id=rid), GD_AUD
    )
    assert [(t.action, t.level, t.org_code) for t in history.transitions] == [
        (aid_pb2.RECORD_ACTION_ENTERED, SCHOOL, "3444010601"),
        (aid_pb2.RECORD_ACTION_SUBMITTED, SCHOOL, "3444010601"),
        (aid_pb2.RECORD_ACTION_APPROVED, SCHOOL, "3444010601"),
        (aid_pb2.RECORD_ACTION_APPROVED, COUNTY, "440106"),
        (aid_pb2.RECORD_ACTION_APPROVED, CITY, "440100"),
        (aid_pb2.RECORD_ACTION_APPROVED, PROVINCE, "440000"),
    ]
    assert history.transitions[-1].opinion == "省级复核通过"
    assert history.transitions[2].org_name == "广州市天河中学"
    assert [t.seq for t in history.transitions] == [1, 2, 3, 4, 5, 6]


async def test_return_needs_a_reason_and_resubmission_climbs_again(env: Env) -> None:
    [rid] = await _submitted(env)
    for auditor in (MS_AUD, TH_AUD, GZ_AUD):
        await env.approve(auditor, [rid])
    await refused(
        env.give_back(GD_AUD, [rid], ""), grpc.StatusCode.INVALID_ARGUMENT, "REASON_REQUIRED"
    )
    out = await env.give_back(GD_AUD, [rid], "银行卡号与本人不符")
    assert out.returned_count == 1
    rec = await env.record(MS_OP, rid)
    assert rec.status == aid_pb2.RECORD_STATUS_RETURNED and rec.last_opinion == "银行卡号与本人不符"
    returned = [
        e
        for e in await env.events("aid.record.returned", events_pb2.RecordReturned)
        if e.record_id == rid
    ]
    assert returned[-1].returned_level == PROVINCE and returned[-1].reason == "银行卡号与本人不符"
    fixed = await env.call("UpdateRecord", aid_pb2.UpdateRecordRequest(
        record_id=rid, bank_card_number="6217001234567890123"), MS_OP)  # fmt: skip
    assert fixed.record.status == aid_pb2.RECORD_STATUS_RETURNED
    await env.submit(MS_OP, [rid])
    rec = await env.record(MS_OP, rid)
    assert rec.status == aid_pb2.RECORD_STATUS_PENDING_SCHOOL_AUDIT
    for auditor in (MS_AUD, TH_AUD, GZ_AUD, GD_AUD):
        await env.approve(auditor, [rid])
    assert (await env.record(MS_OP, rid)).status == aid_pb2.RECORD_STATUS_APPROVED


async def test_only_the_awaited_org_may_decide(env: Env) -> None:
    [rid] = await _submitted(env)
    body = await refused(
        env.approve(TH_AUD, [rid]), grpc.StatusCode.FAILED_PRECONDITION, "NOT_AWAITING_CALLER"
    )
    assert body["details"]["items"][0]["record_id"] == rid
    await env.approve(MS_AUD, [rid])
    await refused(
        env.approve(MS_AUD, [rid]), grpc.StatusCode.FAILED_PRECONDITION, "NOT_AWAITING_CALLER"
    )
    await refused(
        env.approve(GZ_AUD, [rid]), grpc.StatusCode.FAILED_PRECONDITION, "NOT_AWAITING_CALLER"
    )
    # An operator is no auditor.
    await refused(env.approve(GZ_OP, [rid]), grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED")
    # Outside the subtree the record does not exist (404, as for an unknown id).
    await refused(
        env.approve(who("/000000/440000/440300/", "auditor"), [rid]),
        grpc.StatusCode.NOT_FOUND,
        "NOT_FOUND",
    )


async def test_an_account_never_audits_what_it_entered(env: Env) -> None:
    both = who(MS, "operator", "auditor", account="ms-both")
    [kid] = await env.kids(MS, HIGH, hardship=DIFFICULT)
    rec = await env.enter(both, "GJ-PG-ZXJ", kid, tier_code="1")
    await env.submit(both, [rec.record_id])
    await refused(
        env.approve(both, [rec.record_id]), grpc.StatusCode.FAILED_PRECONDITION, "FOUR_EYES"
    )
    await env.approve(MS_AUD, [rec.record_id])


async def test_bulk_decision_is_all_or_nothing(env: Env) -> None:
    ids = await _submitted(env, 3)
    [draft_kid] = await env.kids(MS, HIGH, hardship=DIFFICULT)
    draft = await env.enter(MS_OP, "GJ-PG-ZXJ", draft_kid, tier_code="3")
    body = await refused(
        env.approve(MS_AUD, [*ids, draft.record_id]),
        grpc.StatusCode.FAILED_PRECONDITION,
        "RECORD_NOT_PENDING",
    )
    assert [i["record_id"] for i in body["details"]["items"]] == [draft.record_id]
    for rid in ids:
        assert (await env.record(MS_AUD, rid)).status == aid_pb2.RECORD_STATUS_PENDING_SCHOOL_AUDIT
    out = await env.approve(MS_AUD, ids)
    assert out.forwarded_count == 3 and {r.status for r in out.results} == {PENDING_AUTHORITY}


async def test_bulk_decision_over_a_filter_awaiting_the_caller(env: Env) -> None:
    ids = await _submitted(env, 4)
    await env.approve(MS_AUD, ids)
    flt = aid_pb2.ListRecordsRequest(project_code="GJ-PG-ZXJ", period=PERIOD, org_code="3444010601")
    queue = await env.call("ListRecords", aid_pb2.ListRecordsRequest(
        project_code="GJ-PG-ZXJ", period=PERIOD, pending_org_code="440106"), TH_AUD)  # fmt: skip
    waiting = queue.page.total
    assert waiting >= 4
    await refused(env.call("AuditRecords", aid_pb2.AuditRecordsRequest(
        filter=flt, decision=aid_pb2.AUDIT_DECISION_APPROVE, expected_count=waiting + 7), TH_AUD),
        grpc.StatusCode.ABORTED, "COUNT_CHANGED")  # fmt: skip
    out = await env.call("AuditRecords", aid_pb2.AuditRecordsRequest(
        filter=flt, decision=aid_pb2.AUDIT_DECISION_APPROVE, opinion="批量通过"), TH_AUD)  # fmt: skip
    assert out.forwarded_count >= 4
    for rid in ids:
        rec = await env.record(TH_AUD, rid)
        assert (rec.pending_level, rec.pending_org_code) == (CITY, "440100")


async def test_school_and_social_projects_stop_after_the_school_audit(env: Env) -> None:
    project = await env.project(
        MS_OP, project_code="MS-SH", name="爱心企业助学金", owner_type=aid_pb2.PROJECT_OWNER_TYPE_SOCIAL,
        stage=HIGH, category=common_pb2.AID_CATEGORY_NEED_BASED,
        tiers=[aid_pb2.AmountTier(amount_fen=50000)],
    )  # fmt: skip
    assert list(project.audit_levels) == []
    [kid] = await env.kids(MS, HIGH)
    rec = await env.enter(MS_OP, project.project_code, kid)
    await env.submit(MS_OP, [rec.record_id])
    out = await env.approve(MS_AUD, [rec.record_id])
    assert out.approved_count == 1
    approved = [
        e
        for e in await env.events("aid.record.approved", events_pb2.RecordApproved)
        if e.record_id == rec.record_id
    ]
    assert approved[0].approved_level == SCHOOL


async def test_schools_run_by_a_city_or_the_nation_have_shorter_chains(env: Env) -> None:
    [zz_kid] = await env.kids(ZZ, common_pb2.STAGE_SECONDARY_VOCATIONAL, hardship=DIFFICULT)
    rec = await env.enter(ZZ_OP, "GJ-ZZ-ZXJ", zz_kid, tier_code="2")
    await env.submit(ZZ_OP, [rec.record_id])
    assert list((await env.record(ZZ_OP, rec.record_id)).audit_chain) == [CITY, PROVINCE]
    await env.approve(ZZ_AUD, [rec.record_id])
    assert (await env.record(GZ_AUD, rec.record_id)).pending_org_code == "440100"
    [uni_kid] = await env.kids(SYSU, common_pb2.STAGE_UNDERGRADUATE, hardship=DIFFICULT)
    rec = await env.enter(SYSU_OP, "GJ-BZK-ZXJ", uni_kid, tier_code="1")
    await env.submit(SYSU_OP, [rec.record_id])
    # A 部属高校 is audited by the nation, its managing authority.
    assert list((await env.record(SYSU_OP, rec.record_id)).audit_chain) == [NATIONAL]
    await env.approve(SYSU_AUD, [rec.record_id])
    out = await env.approve(NATION_AUD, [rec.record_id])
    assert out.approved_count == 1


async def test_an_authority_revokes_an_approved_record_with_a_reason(env: Env) -> None:
    [rid] = await _submitted(env)
    for auditor in (MS_AUD, TH_AUD, GZ_AUD, GD_AUD):
        await env.approve(auditor, [rid])
    await refused(env.call("RevokeRecord", aid_pb2.RevokeRecordRequest(record_id=rid, reason="重复发放"), MS_AUD),
                  grpc.StatusCode.PERMISSION_DENIED, "REVOKE_NOT_ALLOWED")  # fmt: skip
    await refused(env.call("RevokeRecord", aid_pb2.RevokeRecordRequest(record_id=rid), TH_AUD),
                  grpc.StatusCode.INVALID_ARGUMENT, "REASON_REQUIRED")  # fmt: skip
    out = await env.call(
        "RevokeRecord", aid_pb2.RevokeRecordRequest(record_id=rid, reason="重复发放"), TH_AUD
    )
    assert out.record.status == aid_pb2.RECORD_STATUS_REVOKED
    revoked = [
        e
        for e in await env.events("aid.record.revoked", events_pb2.RecordRevoked)
        if e.record_id == rid
    ]
    assert revoked[0].reason == "重复发放" and revoked[0].amount_fen == 115000
    await refused(env.call("RevokeRecord", aid_pb2.RevokeRecordRequest(record_id=rid, reason="再次"), TH_AUD),
                  grpc.StatusCode.FAILED_PRECONDITION, "RECORD_NOT_APPROVED")  # fmt: skip


async def test_listing_by_pending_org_is_an_auditors_queue(env: Env) -> None:
    [kid] = await env.kids(HY, COMPULSORY, hardship=DIFFICULT)
    rec = await env.enter(HY_OP, "GJ-YW-JSSBZ-XX", kid)
    await env.submit(HY_OP, [rec.record_id])
    queue = await env.call("ListRecords", aid_pb2.ListRecordsRequest(
        pending_org_code="2144010601", statuses=[aid_pb2.RECORD_STATUS_PENDING_SCHOOL_AUDIT]), HY_AUD)  # fmt: skip
    assert rec.record_id in {r.record_id for r in queue.records}
    await env.approve(HY_AUD, [rec.record_id])
    queue = await env.call(
        "ListRecords", aid_pb2.ListRecordsRequest(pending_org_code="440106"), TH_AUD
    )
    assert rec.record_id in {r.record_id for r in queue.records}
    assert all(r.pending_org_code == "440106" for r in queue.records)

"""Record entry (资助名单录入): validation against roster and the project's rules, edits and
deletes of drafts, reads and lists inside the caller's subtree only."""

from __future__ import annotations

import grpc
from aid_harness import (
    BY_AUD,
    BYPS_OP,
    GZ_AUD,
    HY,
    HY_AUD,
    HY_OP,
    KG,
    KG_OP,
    MS,
    MS_OP,
    PERIOD,
    SPRING,
    SZ_OP,
    TH_AUD,
    TH_VIEWER,
    Env,
    refused,
)
from zizhu_contracts.aid.v1 import aid_pb2
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.roster.v1 import roster_pb2 as rpb

COMPULSORY = common_pb2.STAGE_COMPULSORY
HIGH = common_pb2.STAGE_GENERAL_HIGH_SCHOOL
DIFFICULT = common_pb2.HARDSHIP_LEVEL_DIFFICULT
NOT_DIFFICULT = common_pb2.HARDSHIP_LEVEL_NOT_DIFFICULT
BOARDER_PRIMARY = "GJ-YW-JSSBZ-XX"  # 寄宿生生活补助（小学）, 625 元/学期, needs recognition
HIGH_GRANT = "GJ-PG-ZXJ"  # 普通高中国家助学金, tiers 1750/1150/750


async def test_enter_record_validates_with_roster_and_keeps_what_aid_needs(env: Env) -> None:
    [kid] = await env.kids(HY, COMPULSORY, hardship=DIFFICULT)
    rec = await env.enter(HY_OP, BOARDER_PRIMARY, kid, bank_card_number="6222020200112233445")
    assert rec.status == aid_pb2.RECORD_STATUS_DRAFT
    assert (rec.amount_fen, rec.tier_code) == (62500, "1")
    assert rec.student_id == kid.student_id and rec.student_name == kid.name
    assert rec.id_number_masked == kid.id_number[:6] + "********" + kid.id_number[-4:]
    assert rec.id_number == "" and rec.bank_card_masked == "6222***********3445"
    assert rec.hardship_level == DIFFICULT and rec.school_org_code == "2144010601"
    # The blind index is roster's person key: aid finds the record by the full ID number.
    found = await env.call(
        "ListRecords", aid_pb2.ListRecordsRequest(id_number=kid.id_number), HY_OP
    )
    assert [r.record_id for r in found.records] == [rec.record_id]


async def test_enter_refuses_students_roster_does_not_confirm_and_writes_nothing(env: Env) -> None:
    [kid] = await env.kids(HY, COMPULSORY, hardship=DIFFICULT)
    [left] = await env.kids(
        HY, COMPULSORY, status=rpb.STUDENT_STATUS_SUSPENDED, enrolled_on="2020-09-01",
        status_date="2026-07-10",
    )  # fmt: skip
    [elsewhere] = await env.kids(MS, COMPULSORY, hardship=DIFFICULT)
    before = await env.call("ListRecords", aid_pb2.ListRecordsRequest(), HY_OP)
    req = aid_pb2.EnterRecordRequest(project_code=BOARDER_PRIMARY, period=PERIOD,
                                     id_number=kid.id_number, student_name="不是这个名字")  # fmt: skip
    body = await refused(
        env.call("EnterRecord", req, HY_OP), grpc.StatusCode.INVALID_ARGUMENT, "NAME_MISMATCH"
    )
    assert body["field"] == "student_name"
    await refused(
        env.enter(HY_OP, BOARDER_PRIMARY, left),
        grpc.StatusCode.INVALID_ARGUMENT,
        "STUDENT_NOT_IN_SCHOOL",
    )
    # Roster does not tell a school where else a student is enrolled: not found here.
    await refused(
        env.enter(HY_OP, BOARDER_PRIMARY, elsewhere),
        grpc.StatusCode.INVALID_ARGUMENT,
        "STUDENT_NOT_FOUND",
    )
    bad = aid_pb2.EnterRecordRequest(project_code=BOARDER_PRIMARY, period=PERIOD,
                                     id_number=kid.id_number[:-1] + ("1" if kid.id_number[-1] != "1" else "2"),
                                     student_name=kid.name)  # fmt: skip
    body = await refused(
        env.call("EnterRecord", bad, HY_OP), grpc.StatusCode.INVALID_ARGUMENT, "ID_NUMBER_CHECKSUM"
    )
    assert body["field"] == "id_number"
    after = await env.call("ListRecords", aid_pb2.ListRecordsRequest(), HY_OP)
    assert after.page.total == before.page.total


async def test_project_stage_must_be_taught_at_the_school(env: Env) -> None:
    [kid] = await env.kids(HY, COMPULSORY, hardship=DIFFICULT)
    await refused(
        env.enter(HY_OP, HIGH_GRANT, kid),
        grpc.StatusCode.FAILED_PRECONDITION,
        "STAGE_NOT_AT_SCHOOL",
    )


async def test_recognition_is_required_for_need_based_projects(env: Env) -> None:
    [none] = await env.kids(HY, COMPULSORY)
    [not_difficult] = await env.kids(HY, COMPULSORY, hardship=NOT_DIFFICULT)
    body = await refused(
        env.enter(HY_OP, BOARDER_PRIMARY, none),
        grpc.StatusCode.FAILED_PRECONDITION,
        "RECOGNITION_REQUIRED",
    )
    assert "尚未认定" in body["message"]
    body = await refused(
        env.enter(HY_OP, BOARDER_PRIMARY, not_difficult),
        grpc.StatusCode.FAILED_PRECONDITION,
        "RECOGNITION_REQUIRED",
    )
    assert "不困难" in body["message"]


async def test_amount_must_be_a_tier_of_the_project(env: Env) -> None:
    [kid] = await env.kids(MS, HIGH, hardship=DIFFICULT)
    rec = await env.enter(MS_OP, HIGH_GRANT, kid, amount_fen=75000)
    assert rec.tier_code == "3"
    [other] = await env.kids(MS, HIGH, hardship=DIFFICULT)
    body = await refused(
        env.enter(MS_OP, HIGH_GRANT, other, amount_fen=100000),
        grpc.StatusCode.INVALID_ARGUMENT,
        "AMOUNT_NOT_IN_TIERS",
    )
    assert "1750" in body["message"] and body["field"] == "amount_fen"
    await refused(
        env.enter(MS_OP, HIGH_GRANT, other, tier_code="9"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "TIER_UNKNOWN",
    )
    await refused(
        env.enter(MS_OP, HIGH_GRANT, other), grpc.StatusCode.INVALID_ARGUMENT, "AMOUNT_REQUIRED"
    )
    await refused(
        env.enter(MS_OP, HIGH_GRANT, other, tier_code="1", amount_fen=75000),
        grpc.StatusCode.INVALID_ARGUMENT,
        "AMOUNT_TIER_MISMATCH",
    )


async def test_one_record_per_student_project_and_period(env: Env) -> None:
    [kid] = await env.kids(HY, COMPULSORY, hardship=DIFFICULT)
    first = await env.enter(HY_OP, BOARDER_PRIMARY, kid)
    body = await refused(
        env.enter(HY_OP, BOARDER_PRIMARY, kid), grpc.StatusCode.ALREADY_EXISTS, "DUPLICATE_RECORD"
    )
    assert first.record_id in body["message"]
    # The spring term is another period: refused only because it is not open yet.
    await refused(
        env.enter(HY_OP, BOARDER_PRIMARY, kid, period=SPRING),
        grpc.StatusCode.FAILED_PRECONDITION,
        "PERIOD_NOT_OPEN",
    )


async def test_boarder_and_non_boarder_subsidies_exclude_each_other_in_a_term(env: Env) -> None:
    [kid] = await env.kids(HY, COMPULSORY, hardship=DIFFICULT)
    await env.enter(HY_OP, BOARDER_PRIMARY, kid)
    body = await refused(
        env.enter(HY_OP, "GJ-YW-FJSSBZ-XX", kid),
        grpc.StatusCode.FAILED_PRECONDITION,
        "EXCLUSIVE_PROJECT",
    )
    assert BOARDER_PRIMARY in body["message"]


async def test_quota_per_school_is_enforced(env: Env) -> None:
    project = await env.project(
        MS_OP, project_code="MS-JXJ", name="天河中学校长奖学金", owner_type=aid_pb2.PROJECT_OWNER_TYPE_SCHOOL,
        stage=HIGH, category=common_pb2.AID_CATEGORY_MERIT,
        tiers=[aid_pb2.AmountTier(tier_code="A", name="一等", amount_fen=100000)], quota_per_school=2,
    )  # fmt: skip
    kids = await env.kids(MS, HIGH, 3)
    await env.enter(MS_OP, project.project_code, kids[0])
    await env.enter(MS_OP, project.project_code, kids[1])
    body = await refused(
        env.enter(MS_OP, project.project_code, kids[2]),
        grpc.StatusCode.FAILED_PRECONDITION,
        "QUOTA_EXCEEDED",
    )
    assert "名额2" in body["message"]


async def test_draft_can_be_edited_and_deleted_but_not_after_submission(env: Env) -> None:
    kids = await env.kids(MS, HIGH, 2, hardship=DIFFICULT)
    rec = await env.enter(MS_OP, HIGH_GRANT, kids[0], tier_code="3")
    upd = await env.call("UpdateRecord", aid_pb2.UpdateRecordRequest(
        record_id=rec.record_id, tier_code="1", remark="家庭特别困难", expected_version=rec.version), MS_OP)  # fmt: skip
    assert (upd.record.amount_fen, upd.record.remark, upd.record.version) == (
        175000,
        "家庭特别困难",
        2,
    )
    await refused(env.call("UpdateRecord", aid_pb2.UpdateRecordRequest(
        record_id=rec.record_id, tier_code="2", expected_version=1), MS_OP), grpc.StatusCode.ABORTED, "VERSION_CONFLICT")  # fmt: skip
    await refused(env.call("UpdateRecord", aid_pb2.UpdateRecordRequest(
        record_id=rec.record_id, amount_fen=123), MS_OP), grpc.StatusCode.INVALID_ARGUMENT, "AMOUNT_NOT_IN_TIERS")  # fmt: skip
    await env.submit(MS_OP, [rec.record_id])
    await refused(env.call("UpdateRecord", aid_pb2.UpdateRecordRequest(
        record_id=rec.record_id, remark="x"), MS_OP), grpc.StatusCode.FAILED_PRECONDITION, "RECORD_NOT_EDITABLE")  # fmt: skip
    await refused(env.call("DeleteRecord", aid_pb2.DeleteRecordRequest(record_id=rec.record_id), MS_OP),
                  grpc.StatusCode.FAILED_PRECONDITION, "RECORD_NOT_EDITABLE")  # fmt: skip
    other = await env.enter(MS_OP, HIGH_GRANT, kids[1], tier_code="2")
    await env.call("DeleteRecord", aid_pb2.DeleteRecordRequest(record_id=other.record_id), MS_OP)
    await refused(env.record(MS_OP, other.record_id), grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
    history = await env.call(
        "GetRecordHistory", aid_pb2.GetRecordHistoryRequest(record_id=other.record_id), MS_OP
    )
    assert [t.action for t in history.transitions] == [
        aid_pb2.RECORD_ACTION_ENTERED,
        aid_pb2.RECORD_ACTION_DELETED,
    ]
    # Deleting frees the slot: the student can be entered again.
    again = await env.enter(MS_OP, HIGH_GRANT, kids[1], tier_code="2")
    assert again.record_id != other.record_id


async def test_only_the_school_operator_enters_and_edits(env: Env) -> None:
    [kid] = await env.kids(HY, COMPULSORY, hardship=DIFFICULT)
    await refused(
        env.enter(HY_AUD, BOARDER_PRIMARY, kid), grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED"
    )
    await refused(env.enter(TH_AUD, BOARDER_PRIMARY, kid), grpc.StatusCode.PERMISSION_DENIED)
    req = aid_pb2.EnterRecordRequest(project_code=BOARDER_PRIMARY, period=PERIOD, school_org_code="2144011102",
                                     id_number=kid.id_number, student_name=kid.name)  # fmt: skip
    await refused(
        env.call("EnterRecord", req, HY_OP), grpc.StatusCode.PERMISSION_DENIED, "NOT_OWN_SCHOOL"
    )


async def test_reads_lists_and_counts_stay_inside_the_callers_subtree(env: Env) -> None:
    [kid] = await env.kids(HY, COMPULSORY, hardship=DIFFICULT)
    rec = await env.enter(HY_OP, BOARDER_PRIMARY, kid)
    [kid2] = await env.kids(KG, common_pb2.STAGE_PRESCHOOL, hardship=DIFFICULT)
    kg_rec = await env.enter(KG_OP, "GJ-XQ-ZFZZ", kid2, tier_code="1")
    # Another county's auditor, another school, another city: the record does not exist for them.
    for outsider in (BY_AUD, BYPS_OP, SZ_OP):
        await refused(env.record(outsider, rec.record_id), grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
        await refused(env.call("GetRecordHistory", aid_pb2.GetRecordHistoryRequest(record_id=rec.record_id), outsider),
                      grpc.StatusCode.NOT_FOUND)  # fmt: skip
    listed = await env.call("ListRecords", aid_pb2.ListRecordsRequest(), BY_AUD)
    ids = {r.record_id for r in listed.records}
    assert rec.record_id not in ids and kg_rec.record_id in ids
    assert all(r.school_org_path.startswith(BY_AUD.org_path) for r in listed.records)
    # Asking for another county's subtree answers NOT_FOUND rather than an empty list.
    await refused(env.call("ListRecords", aid_pb2.ListRecordsRequest(org_code="440106"), BY_AUD),
                  grpc.StatusCode.NOT_FOUND)  # fmt: skip
    # Inside: the county, the city and a viewer see it.
    for insider in (TH_AUD, GZ_AUD, TH_VIEWER):
        assert (await env.record(insider, rec.record_id)).record_id == rec.record_id


async def test_lists_filter_and_page_and_carry_the_windows(env: Env) -> None:
    kids = await env.kids(MS, HIGH, 5, hardship=DIFFICULT, class_name="9班")
    for k in kids:
        await env.enter(MS_OP, HIGH_GRANT, k, tier_code="2")
    req = aid_pb2.ListRecordsRequest(project_code=HIGH_GRANT, period=PERIOD, class_name="9班",
                                     page=common_pb2.PageRequest(page_size=2))  # fmt: skip
    first = await env.call("ListRecords", req, MS_OP)
    assert first.page.total == 5 and len(first.records) == 2 and first.page.next_page_token
    assert {w.phase for w in first.windows} == {1, 2, 3}
    entry = next(w for w in first.windows if w.phase == aid_pb2.WINDOW_PHASE_ENTRY)
    assert entry.open_now and entry.window.is_default
    req.page.page_token = first.page.next_page_token
    second = await env.call("ListRecords", req, MS_OP)
    assert len(second.records) == 2
    assert not {r.record_id for r in first.records} & {r.record_id for r in second.records}
    req.class_name = "8班"
    await refused(
        env.call("ListRecords", req, MS_OP), grpc.StatusCode.INVALID_ARGUMENT, "PAGE_TOKEN_INVALID"
    )


async def test_full_id_number_is_revealed_only_to_school_staff_and_audited(env: Env) -> None:
    [kid] = await env.kids(HY, COMPULSORY, hardship=DIFFICULT)
    rec = await env.enter(HY_OP, BOARDER_PRIMARY, kid)
    await refused(env.call("GetRecord", aid_pb2.GetRecordRequest(record_id=rec.record_id, reveal_id_number=True), TH_AUD),
                  grpc.StatusCode.PERMISSION_DENIED, "REVEAL_NOT_ALLOWED")  # fmt: skip
    before = (await env.subjects()).count("aid.audit.recorded")
    got = await env.call(
        "GetRecord",
        aid_pb2.GetRecordRequest(record_id=rec.record_id, reveal_id_number=True),
        HY_AUD,
    )
    assert got.record.id_number == kid.id_number
    assert (await env.subjects()).count("aid.audit.recorded") == before + 1
    plain = await env.record(HY_AUD, rec.record_id)
    assert plain.id_number == ""


async def test_export_returns_the_filtered_records_as_xlsx(env: Env) -> None:
    import io

    from python_calamine import CalamineWorkbook

    kids = await env.kids(MS, HIGH, 3, hardship=DIFFICULT, class_name="导出班")
    for k in kids:
        await env.enter(MS_OP, HIGH_GRANT, k, tier_code="1")
    resp = await env.call("ExportRecords", aid_pb2.ExportRecordsRequest(
        filter=aid_pb2.ListRecordsRequest(class_name="导出班")), MS_OP)  # fmt: skip
    assert resp.row_count == 3
    rows = (
        CalamineWorkbook.from_filelike(io.BytesIO(resp.file.content))
        .get_sheet_by_index(0)
        .to_python()
    )
    assert rows[0][:3] == ["记录号", "项目代码", "项目名称"]
    assert sorted(r[7] for r in rows[1:]) == sorted(k.name for k in kids)
    assert all("*" in r[8] for r in rows[1:])  # ID numbers masked

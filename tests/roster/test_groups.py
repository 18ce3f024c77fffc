"""Special groups: central issue matched to the roster, school verification, self-collection,
progress by region, changes against the previous issue, and the period listing."""

from __future__ import annotations

import grpc
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.roster.v1 import events_pb2
from zizhu_contracts.roster.v1 import roster_pb2 as pb

from tests.roster.conftest import (
    COUNTY_BY,
    COUNTY_TH,
    NATION,
    PROVINCE,
    SCHOOL_BYPS,
    SCHOOL_HY,
    SCHOOL_MS,
    SCHOOL_SZ,
    md,
)
from tests.roster.helpers import (
    expect_error,
    issued_entries,
    make_id,
    row,
    sync,
    wait_committed,
)

YEAR = "2024-2025"
DIBAO = common_pb2.SPECIAL_GROUP_DIBAO
ORPHAN = common_pb2.SPECIAL_GROUP_ORPHAN


async def seed_students(roster) -> None:
    """Students 1-4 at 华阳小学, 5 graduated there, 6-7 at 白云区第二小学, 8 in 深圳."""
    await sync(
        roster.stub,
        md(NATION),
        [
            row(1), row(2), row(3), row(4),
            row(5, status=pb.STUDENT_STATUS_GRADUATED, status_date="2024-07-01"),
            row(6, school_org_code="2144011102"), row(7, school_org_code="2144011102"),
            row(8, school_org_code="2144030001"),
        ],
    )  # fmt: skip


def issued(n: int, group: int = DIBAO, **kw) -> pb.IssuedRowInput:
    return pb.IssuedRowInput(
        id_type=common_pb2.ID_TYPE_RESIDENT_ID,
        id_number=kw.pop("id_number", make_id(n)),
        name=kw.pop("name", f"学生{n}"),
        group=group,
        **kw,
    )


async def issue(roster, rows, *, who=NATION, mode=pb.ISSUE_MODE_FULL, groups=(DIBAO,), chunks=None):
    batch = (
        await roster.stub.IssueSpecialGroupBatch(
            pb.IssueSpecialGroupBatchRequest(
                title="2024年秋季低保学生名单",
                source_system="民政部",
                groups=list(groups),
                mode=mode,
                as_of_date="2024-09-15",
            ),
            metadata=md(who),
        )
    ).batch
    parts = chunks or [rows]
    for i, part in enumerate(parts, start=1):
        await roster.stub.AddIssuedRows(
            pb.AddIssuedRowsRequest(batch_id=batch.batch_id, chunk_number=i, rows=part),
            metadata=md(who),
        )
    await roster.stub.CommitSpecialGroupBatch(
        pb.CommitSpecialGroupBatchRequest(batch_id=batch.batch_id, chunk_count=len(parts)),
        metadata=md(who),
    )
    return await wait_committed(roster.stub, md(who), batch.batch_id)


async def test_national_issue_matches_rows_and_reports_unmatched(roster):
    await national_issue_matches_rows_and_reports_unmatched(roster)


async def national_issue_matches_rows_and_reports_unmatched(roster):
    await seed_students(roster)
    batch = await issue(
        roster,
        [
            issued(1), issued(2), issued(6),
            issued(5),  # graduated
            issued(99),  # unknown
            issued(3, name="别名"),  # name differs
            issued(1),  # repeated in the batch
            issued(0, id_number="440106201209010011"),  # bad checksum
            issued(4, group=ORPHAN),  # group not in the batch
        ],
    )  # fmt: skip
    assert batch.status == pb.ISSUE_BATCH_STATUS_COMMITTED, batch.error_message
    assert batch.school_year == YEAR and batch.row_count == 9
    assert (batch.matched_count, batch.not_found_count, batch.not_enrolled_count) == (3, 1, 1)
    assert (batch.ambiguous_count, batch.invalid_count, batch.memberships_added) == (1, 3, 3)
    rows = await roster.stub.ListIssuedRows(
        pb.ListIssuedRowsRequest(batch_id=batch.batch_id), metadata=md(NATION)
    )
    assert rows.page.total == 9
    notes = {r.row_number: (r.match_status, r.match_note) for r in rows.rows}
    assert notes[5][0] == pb.MATCH_STATUS_NOT_FOUND and "无此" in notes[5][1]
    assert notes[4][0] == pb.MATCH_STATUS_NOT_ENROLLED
    assert notes[6][0] == pb.MATCH_STATUS_AMBIGUOUS and "姓名" in notes[6][1]
    assert notes[7] == (pb.MATCH_STATUS_INVALID, "同一批次内重复的证件号码和类别")
    assert all("*" in r.id_number_masked for r in rows.rows)
    # The batch's memberships are published per school (roster.membership.issued), none one by
    # one.
    assert await roster.outbox_events("roster.membership.added") == []
    added = [entry for _, entry in await issued_entries(roster)]
    assert len(added) == 3 and all(e.source == common_pb2.MEMBERSHIP_SOURCE_ISSUED for e in added)
    # Each event carries its student's blind index (the person key other services join on).
    deps = roster.services.deps
    assert {e.id_number_blind_index for e in added} == {
        deps.id_index(common_pb2.ID_TYPE_RESIDENT_ID, make_id(n)) for n in (1, 2, 6)
    }
    assert all(
        e.verification_status == pb.VERIFICATION_STATUS_PENDING and e.school_year == YEAR
        for e in added
    )
    committed = await roster.outbox_events("roster.membership.batch_committed")
    assert len(committed) == 1
    assert (await roster.outbox_subjects())[-1] == "roster.membership.batch_committed"


async def test_add_rows_reports_bad_rows_and_refuses_closed_batches(roster):
    await add_rows_reports_bad_rows_and_refuses_closed_batches(roster)


async def add_rows_reports_bad_rows_and_refuses_closed_batches(roster):
    batch = (
        await roster.stub.IssueSpecialGroupBatch(
            pb.IssueSpecialGroupBatchRequest(title="t", groups=[DIBAO], mode=pb.ISSUE_MODE_DELTA),
            metadata=md(NATION),
        )
    ).batch
    resp = await roster.stub.AddIssuedRows(
        pb.AddIssuedRowsRequest(
            batch_id=batch.batch_id,
            chunk_number=1,
            rows=[
                issued(1, action=pb.ISSUED_ROW_ACTION_ADD),
                issued(2, id_number="123", action=pb.ISSUED_ROW_ACTION_ADD),
                issued(3),
            ],
        ),
        metadata=md(NATION),
    )
    assert [(e.row, e.code) for e in resp.errors] == [
        (2, "ID_NUMBER_FORMAT"),
        (3, "ACTION_REQUIRED"),
    ]
    assert resp.row_count == 3
    # Resending a chunk replaces it.
    again = await roster.stub.AddIssuedRows(
        pb.AddIssuedRowsRequest(
            batch_id=batch.batch_id,
            chunk_number=1,
            rows=[issued(1, action=pb.ISSUED_ROW_ACTION_ADD)],
        ),
        metadata=md(NATION),
    )
    assert again.row_count == 1 and not again.errors
    await expect_error(
        roster.stub.CommitSpecialGroupBatch(
            pb.CommitSpecialGroupBatchRequest(batch_id=batch.batch_id, chunk_count=2),
            metadata=md(NATION),
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "CHUNKS_INCOMPLETE",
    )
    cancelled = await roster.stub.CancelSpecialGroupBatch(
        pb.CancelSpecialGroupBatchRequest(batch_id=batch.batch_id, reason="数据有误"),
        metadata=md(NATION),
    )
    assert cancelled.batch.status == pb.ISSUE_BATCH_STATUS_CANCELLED
    await expect_error(
        roster.stub.AddIssuedRows(
            pb.AddIssuedRowsRequest(batch_id=batch.batch_id, chunk_number=2, rows=[issued(1)]),
            metadata=md(NATION),
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "BATCH_NOT_RECEIVING",
    )


async def test_only_nation_or_province_issues_and_only_in_its_territory(roster):
    await expect_error(
        roster.stub.IssueSpecialGroupBatch(
            pb.IssueSpecialGroupBatchRequest(title="t", groups=[DIBAO], mode=1),
            metadata=md(COUNTY_TH),
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        "LEVEL_NOT_ALLOWED",
    )
    await expect_error(
        roster.stub.IssueSpecialGroupBatch(
            pb.IssueSpecialGroupBatchRequest(title="", groups=[DIBAO], mode=1), metadata=md(NATION)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "TITLE_REQUIRED",
    )
    await expect_error(
        roster.stub.IssueSpecialGroupBatch(
            pb.IssueSpecialGroupBatchRequest(title="t", groups=[99], mode=1), metadata=md(NATION)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "GROUP_UNKNOWN",
    )
    await seed_students(roster)
    batch = await issue(roster, [issued(1), issued(8)], who=PROVINCE)
    assert batch.issuing_org_code == "440000"
    assert (batch.matched_count, batch.not_found_count) == (2, 0)
    # A school sees the batches of its ancestors but cannot touch them.
    listed = await roster.stub.ListSpecialGroupBatches(
        pb.ListSpecialGroupBatchesRequest(), metadata=md(SCHOOL_HY)
    )
    assert [b.batch_id for b in listed.batches] == [batch.batch_id]
    await expect_error(
        roster.stub.CancelSpecialGroupBatch(
            pb.CancelSpecialGroupBatchRequest(batch_id=batch.batch_id), metadata=md(SCHOOL_HY)
        ),
        grpc.StatusCode.NOT_FOUND,
        "BATCH_NOT_FOUND",
    )


async def test_school_verifies_its_rows_and_county_sees_progress_of_its_schools_only(roster):
    await seed_students(roster)
    batch = await issue(roster, [issued(1), issued(2), issued(3), issued(6), issued(7)])
    mine = await roster.stub.ListIssuedRows(
        pb.ListIssuedRowsRequest(batch_id=batch.batch_id), metadata=md(SCHOOL_HY)
    )
    assert sorted(r.name for r in mine.rows) == ["学生1", "学生2", "学生3"]
    assert all(
        r.verification_status == pb.VERIFICATION_STATUS_PENDING and r.membership_id
        for r in mine.rows
    )
    ids = {r.name: r.membership_id for r in mine.rows}
    confirmed = await roster.stub.VerifyMembership(
        pb.VerifyMembershipRequest(
            membership_ids=[ids["学生1"]], result=pb.VERIFICATION_STATUS_CONFIRMED
        ),
        metadata=md(SCHOOL_HY),
    )
    assert confirmed.memberships[0].verification_status == pb.VERIFICATION_STATUS_CONFIRMED
    await expect_error(
        roster.stub.VerifyMembership(
            pb.VerifyMembershipRequest(
                membership_ids=[ids["学生2"]], result=pb.VERIFICATION_STATUS_REJECTED
            ),
            metadata=md(SCHOOL_HY),
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "NOTE_REQUIRED",
    )
    disputed = await roster.stub.VerifyMembership(
        pb.VerifyMembershipRequest(
            membership_ids=[ids["学生2"]],
            result=pb.VERIFICATION_STATUS_REJECTED,
            note="已转学至外省",
        ),
        metadata=md(SCHOOL_HY),
    )
    assert disputed.memberships[0].verification_note == "已转学至外省"
    # Another county's school cannot verify these rows: nothing changes.
    await expect_error(
        roster.stub.VerifyMembership(
            pb.VerifyMembershipRequest(
                membership_ids=[ids["学生3"]], result=pb.VERIFICATION_STATUS_CONFIRMED
            ),
            metadata=md(SCHOOL_BYPS),
        ),
        grpc.StatusCode.NOT_FOUND,
        "MEMBERSHIP_NOT_FOUND",
    )
    added = await roster.stub.AddSelfCollectedMembership(
        pb.AddSelfCollectedMembershipRequest(
            id_type=common_pb2.ID_TYPE_RESIDENT_ID, id_number=make_id(4), group=ORPHAN,
            evidence_note="民政局孤儿证明", school_year=YEAR,
        ),
        metadata=md(SCHOOL_HY),
    )  # fmt: skip
    m = added.membership
    assert (m.source, m.verification_status, m.school_year) == (
        common_pb2.MEMBERSHIP_SOURCE_SELF_COLLECTED, pb.VERIFICATION_STATUS_CONFIRMED, YEAR,
    )  # fmt: skip
    await expect_error(
        roster.stub.AddSelfCollectedMembership(
            pb.AddSelfCollectedMembershipRequest(
                student_id=m.student_id, group=ORPHAN, evidence_note="x", school_year=YEAR
            ),
            metadata=md(SCHOOL_HY),
        ),
        grpc.StatusCode.ALREADY_EXISTS,
        "MEMBERSHIP_EXISTS",
    )
    await expect_error(
        roster.stub.AddSelfCollectedMembership(
            pb.AddSelfCollectedMembershipRequest(
                id_number=make_id(6), group=ORPHAN, evidence_note="x", school_year=YEAR
            ),
            metadata=md(SCHOOL_HY),
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    await expect_error(
        roster.stub.VerifyMembership(
            pb.VerifyMembershipRequest(
                membership_ids=[m.membership_id], result=pb.VERIFICATION_STATUS_CONFIRMED
            ),
            metadata=md(SCHOOL_HY),
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "NOT_ISSUED",
    )
    progress = await roster.stub.GetVerificationProgress(
        pb.GetVerificationProgressRequest(school_year=YEAR), metadata=md(COUNTY_TH)
    )
    total, *children = progress.rows
    assert total.kind == common_pb2.STATS_ROW_KIND_TOTAL and total.org.org_code == "440106"
    assert (
        total.issued_count,
        total.pending_count,
        total.confirmed_count,
        total.rejected_count,
        total.self_collected_count,
    ) == (3, 1, 1, 1, 1)
    assert [c.org.org_code for c in children] == ["2144010601", "3444010601"]
    assert children[0].kind == common_pb2.STATS_ROW_KIND_SCHOOL and children[0].issued_count == 3
    assert children[1].issued_count == 0
    other = await roster.stub.GetVerificationProgress(
        pb.GetVerificationProgressRequest(school_year=YEAR), metadata=md(COUNTY_BY)
    )
    assert other.rows[0].issued_count == 2 and other.rows[0].confirmed_count == 0
    await expect_error(
        roster.stub.GetVerificationProgress(
            pb.GetVerificationProgressRequest(org_code="440106", school_year=YEAR),
            metadata=md(COUNTY_BY),
        ),
        grpc.StatusCode.NOT_FOUND,
        "ORG_NOT_FOUND",
    )
    city = await roster.stub.GetVerificationProgress(
        pb.GetVerificationProgressRequest(org_code="440100", school_year=YEAR),
        metadata=md(PROVINCE),
    )
    assert [(r.org.org_code, r.kind, r.issued_count) for r in city.rows] == [
        ("440100", common_pb2.STATS_ROW_KIND_TOTAL, 5),
        ("440106", common_pb2.STATS_ROW_KIND_CHILD_REGION, 3),
        ("440111", common_pb2.STATS_ROW_KIND_CHILD_REGION, 2),
    ]
    subjects = await roster.outbox_subjects()
    assert subjects.count("roster.membership.verified") == 2
    verified = [
        events_pb2.MembershipVerified.FromString(p)
        for p in await roster.outbox_events("roster.membership.verified")
    ]
    assert {v.verification_status for v in verified} == {
        pb.VERIFICATION_STATUS_CONFIRMED,
        pb.VERIFICATION_STATUS_REJECTED,
    }


async def test_full_reissue_ends_absent_members_keeps_verification_and_lists_changes(roster):
    await seed_students(roster)
    first = await issue(roster, [issued(1), issued(2), issued(3)])
    mine = await roster.stub.ListIssuedRows(
        pb.ListIssuedRowsRequest(batch_id=first.batch_id), metadata=md(SCHOOL_HY)
    )
    one = next(r.membership_id for r in mine.rows if r.name == "学生1")
    await roster.stub.VerifyMembership(
        pb.VerifyMembershipRequest(membership_ids=[one], result=pb.VERIFICATION_STATUS_CONFIRMED),
        metadata=md(SCHOOL_HY),
    )
    second = await issue(roster, [issued(1), issued(3, household_region_code="440106"), issued(4)])
    assert second.previous_batch_id == first.batch_id
    assert (second.added_count, second.removed_count, second.changed_count) == (1, 1, 1)
    assert (second.memberships_added, second.memberships_ended) == (1, 1)
    changes = await roster.stub.ListIssueChanges(
        pb.ListIssueChangesRequest(batch_id=second.batch_id), metadata=md(NATION)
    )
    got = {(c.kind, c.name): list(c.changed_fields) for c in changes.changes}
    assert got == {
        (pb.ISSUE_CHANGE_KIND_ADDED, "学生4"): [],
        (pb.ISSUE_CHANGE_KIND_REMOVED, "学生2"): [],
        (pb.ISSUE_CHANGE_KIND_CHANGED, "学生3"): ["household_region_code"],
    }
    only_removed = await roster.stub.ListIssueChanges(
        pb.ListIssueChangesRequest(batch_id=second.batch_id, kinds=[pb.ISSUE_CHANGE_KIND_REMOVED]),
        metadata=md(NATION),
    )
    assert [c.name for c in only_removed.changes] == ["学生2"] and only_removed.page.total == 1
    members = await roster.stub.ListMemberships(
        pb.ListMembershipsRequest(school_year=YEAR, statuses=[pb.MEMBERSHIP_STATUS_ACTIVE]),
        metadata=md(SCHOOL_HY),
    )
    state = {m.student_name: m.verification_status for m in members.memberships}
    assert state == {
        "学生1": pb.VERIFICATION_STATUS_CONFIRMED,  # kept across issues
        "学生3": pb.VERIFICATION_STATUS_PENDING,
        "学生4": pb.VERIFICATION_STATUS_PENDING,
    }
    ended = [
        events_pb2.MembershipEnded.FromString(p)
        for p in await roster.outbox_events("roster.membership.ended")
    ]
    assert len(ended) == 1 and ended[0].batch_id == second.batch_id


async def test_delta_issue_removes_named_members(roster):
    await seed_students(roster)
    await issue(roster, [issued(1), issued(2)])
    delta = await issue(
        roster,
        [issued(2, action=pb.ISSUED_ROW_ACTION_REMOVE), issued(3, action=pb.ISSUED_ROW_ACTION_ADD)],
        mode=pb.ISSUE_MODE_DELTA,
    )
    assert (delta.memberships_added, delta.memberships_ended) == (1, 1)
    assert (delta.added_count, delta.removed_count) == (1, 1)
    members = await roster.stub.ListMemberships(
        pb.ListMembershipsRequest(school_year=YEAR, statuses=[pb.MEMBERSHIP_STATUS_ACTIVE]),
        metadata=md(SCHOOL_HY),
    )
    assert sorted(m.student_name for m in members.memberships) == ["学生1", "学生3"]


async def test_ended_membership_stays_as_history(roster):
    await seed_students(roster)
    await issue(roster, [issued(1)])
    m = (
        await roster.stub.ListMemberships(
            pb.ListMembershipsRequest(school_year=YEAR), metadata=md(SCHOOL_HY)
        )
    ).memberships[0]
    await expect_error(
        roster.stub.EndMembership(
            pb.EndMembershipRequest(membership_id=m.membership_id), metadata=md(SCHOOL_HY)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "REASON_REQUIRED",
    )
    await expect_error(
        roster.stub.EndMembership(
            pb.EndMembershipRequest(membership_id=m.membership_id, reason="x"),
            metadata=md(SCHOOL_BYPS),
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    ended = await roster.stub.EndMembership(
        pb.EndMembershipRequest(
            membership_id=m.membership_id, ended_on="2025-03-01", reason="家庭收入已超过低保线"
        ),
        metadata=md(SCHOOL_HY),
    )
    assert ended.membership.status == pb.MEMBERSHIP_STATUS_ENDED and ended.membership.end_reason
    listed = await roster.stub.ListMemberships(
        pb.ListMembershipsRequest(school_year=YEAR), metadata=md(SCHOOL_HY)
    )
    assert listed.memberships[0].status == pb.MEMBERSHIP_STATUS_ENDED
    # Ended in March: it still counts for the autumn term, not for spring.
    autumn = await roster.stub.ListMembershipsForPeriod(
        pb.ListMembershipsForPeriodRequest(
            period=common_pb2.AidPeriod(school_year=YEAR, term=common_pb2.TERM_AUTUMN)
        ),
        metadata=md(NATION),
    )
    assert [p.name for p in autumn.members] == ["学生1"]


async def test_period_listing_pages_by_cursor_and_respects_scope(roster):
    await seed_students(roster)
    await issue(roster, [issued(1), issued(2), issued(5), issued(6), issued(7), issued(8)])
    await roster.stub.AddSelfCollectedMembership(
        pb.AddSelfCollectedMembershipRequest(
            id_number=make_id(1), group=ORPHAN, evidence_note="证明", school_year=YEAR
        ),
        metadata=md(SCHOOL_HY),
    )
    period = common_pb2.AidPeriod(school_year=YEAR, term=common_pb2.TERM_AUTUMN)
    seen, cursor = [], ""
    while True:
        resp = await roster.stub.ListMembershipsForPeriod(
            pb.ListMembershipsForPeriodRequest(period=period, cursor=cursor, limit=2),
            metadata=md(NATION),
        )
        seen.extend(resp.members)
        cursor = resp.next_cursor
        if not cursor:
            break
    assert sorted(m.name for m in seen) == ["学生1", "学生2", "学生6", "学生7", "学生8"]
    assert [m.student_id for m in seen] == sorted(m.student_id for m in seen)
    one = next(m for m in seen if m.name == "学生1")
    assert sorted(g.group for g in one.groups) == [DIBAO, ORPHAN] and one.id_number_blind_index
    county = await roster.stub.ListMembershipsForPeriod(
        pb.ListMembershipsForPeriodRequest(period=period), metadata=md(COUNTY_BY)
    )
    assert sorted(m.name for m in county.members) == ["学生6", "学生7"]
    await expect_error(
        roster.stub.ListMembershipsForPeriod(
            pb.ListMembershipsForPeriodRequest(period=period, org_code="440106"),
            metadata=md(COUNTY_BY),
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    # A rejected membership no longer counts.
    rows = await roster.stub.ListIssuedRows(
        pb.ListIssuedRowsRequest(batch_id=(await _last_batch(roster)).batch_id),
        metadata=md(SCHOOL_BYPS),
    )
    six = next(r for r in rows.rows if r.name == "学生6")
    await roster.stub.VerifyMembership(
        pb.VerifyMembershipRequest(
            membership_ids=[six.membership_id],
            result=pb.VERIFICATION_STATUS_REJECTED,
            note="查无此人",
        ),
        metadata=md(SCHOOL_BYPS),
    )
    county = await roster.stub.ListMembershipsForPeriod(
        pb.ListMembershipsForPeriodRequest(period=period), metadata=md(COUNTY_BY)
    )
    assert [m.name for m in county.members] == ["学生7"]


async def _last_batch(roster):
    listed = await roster.stub.ListSpecialGroupBatches(
        pb.ListSpecialGroupBatchesRequest(), metadata=md(NATION)
    )
    return listed.batches[0]


async def test_school_sees_rows_of_its_students_only(roster):
    await seed_students(roster)
    batch = await issue(roster, [issued(1), issued(6), issued(99)])
    other = await roster.stub.ListIssuedRows(
        pb.ListIssuedRowsRequest(batch_id=batch.batch_id), metadata=md(SCHOOL_MS)
    )
    assert other.page.total == 0
    sz = await roster.stub.ListIssuedRows(
        pb.ListIssuedRowsRequest(batch_id=batch.batch_id), metadata=md(SCHOOL_SZ)
    )
    assert sz.page.total == 0
    unmatched = await roster.stub.ListIssuedRows(
        pb.ListIssuedRowsRequest(
            batch_id=batch.batch_id, match_statuses=[pb.MATCH_STATUS_NOT_FOUND]
        ),
        metadata=md(NATION),
    )
    assert [r.row_number for r in unmatched.rows] == [3]
    await expect_error(
        roster.stub.ListIssueChanges(
            pb.ListIssueChangesRequest(batch_id=batch.batch_id), metadata=md(SCHOOL_HY)
        ),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_commit_rematches_students_that_changed_after_their_rows_arrived(roster):
    await seed_students(roster)
    batch = (
        await roster.stub.IssueSpecialGroupBatch(
            pb.IssueSpecialGroupBatchRequest(title="t", groups=[DIBAO], mode=pb.ISSUE_MODE_FULL),
            metadata=md(NATION),
        )
    ).batch
    await roster.stub.AddIssuedRows(
        pb.AddIssuedRowsRequest(
            batch_id=batch.batch_id, chunk_number=1, rows=[issued(1), issued(2), issued(30)]
        ),
        metadata=md(NATION),
    )
    # After the rows arrived: student 30 is registered, student 2 graduates.
    await sync(
        roster.stub,
        md(NATION),
        [row(30), row(2, status=pb.STUDENT_STATUS_GRADUATED, status_date="2024-07-01")],
    )
    await roster.stub.CommitSpecialGroupBatch(
        pb.CommitSpecialGroupBatchRequest(batch_id=batch.batch_id, chunk_count=1),
        metadata=md(NATION),
    )
    done = await wait_committed(roster.stub, md(NATION), batch.batch_id)
    rows = await roster.stub.ListIssuedRows(
        pb.ListIssuedRowsRequest(batch_id=batch.batch_id), metadata=md(NATION)
    )
    assert {r.name: r.match_status for r in rows.rows} == {
        "学生1": pb.MATCH_STATUS_MATCHED,
        "学生2": pb.MATCH_STATUS_NOT_ENROLLED,
        "学生30": pb.MATCH_STATUS_MATCHED,
    }
    assert done.memberships_added == 2

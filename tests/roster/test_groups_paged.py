"""The matching inserts a batch's memberships a page of whole schools at a time, building each
page's per-school MembershipsIssued events while the next page is inserted: with pages of two
rows and events of one entry, the flows of test_groups give the same results, and every
membership is named by exactly one entry of one event of its school."""

from __future__ import annotations

import logging

import pytest
from roster_service.service.batches import matching
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.roster.v1 import events_pb2
from zizhu_contracts.roster.v1 import roster_pb2 as pb

import tests.roster.test_groups as flows
from tests.roster.conftest import NATION, SCHOOL_HY, md
from tests.roster.helpers import issued_entries, make_id


@pytest.fixture
def small_pages(monkeypatch) -> None:
    monkeypatch.setattr(matching, "MEMBERSHIP_PAGE", 2)
    monkeypatch.setattr(matching, "ISSUED_PER_EVENT", 1)


async def self_collect_student_4(roster) -> None:
    """学生4 at 华阳小学 joins the 低保 group as the school's own (self-collected) member."""
    await roster.stub.AddSelfCollectedMembership(
        pb.AddSelfCollectedMembershipRequest(
            id_type=common_pb2.ID_TYPE_RESIDENT_ID, id_number=make_id(4), group=flows.DIBAO,
            evidence_note="民政局低保证明", school_year=flows.YEAR,
        ),
        metadata=md(SCHOOL_HY),
    )  # fmt: skip


async def test_issue_in_pages_matches_the_same(roster, small_pages):
    await flows.national_issue_matches_rows_and_reports_unmatched(roster)


async def test_reissue_in_pages_ends_and_keeps_the_same(roster, small_pages):
    await flows.test_full_reissue_ends_absent_members_keeps_verification_and_lists_changes(roster)


async def test_every_membership_of_a_paged_issue_has_one_event_naming_it(roster, small_pages):
    await flows.seed_students(roster)
    # 学生4 is already in the group (self-collected): the issue keeps that membership, so its
    # row creates none and no event.
    await self_collect_student_4(roster)
    numbers = (1, 2, 3, 4, 6, 7)
    batch = await flows.issue(
        roster,
        [flows.issued(n) for n in numbers] + [flows.issued(2)],  # 2 again: a duplicate row
        chunks=[[flows.issued(n) for n in numbers[:4]], [flows.issued(n) for n in (6, 7, 2)]],
    )
    assert batch.status == pb.ISSUE_BATCH_STATUS_COMMITTED, batch.error_message
    assert (batch.matched_count, batch.invalid_count, batch.memberships_added) == (6, 1, 5)
    members = await roster.stub.ListMemberships(
        pb.ListMembershipsRequest(school_year=flows.YEAR), metadata=md(NATION)
    )
    issued = {
        m.membership_id: m
        for m in members.memberships
        if m.source == common_pb2.MEMBERSHIP_SOURCE_ISSUED
    }
    assert len(issued) == 5 and all(m.batch_id == batch.batch_id for m in issued.values())
    # Only the self-collected membership was published on its own.
    assert [
        events_pb2.MembershipAdded.FromString(p).source
        for p in await roster.outbox_events("roster.membership.added")
    ] == [common_pb2.MEMBERSHIP_SOURCE_SELF_COLLECTED]
    entries = await issued_entries(roster)
    assert sorted(e.membership_id for _, e in entries) == sorted(issued)
    events = {ev.meta.event_id: ev for ev, _ in entries}
    parts: dict[str, list[int]] = {}
    for ev in events.values():
        # One event per school and part, its meta's org path the school's.
        assert ev.batch_id == batch.batch_id and ev.meta.org_path == ev.school_org_path
        assert all(e.school_org_code == ev.school_org_code for e in ev.memberships)
        parts.setdefault(ev.school_org_code, []).append(ev.part)
    assert all(sorted(p) == list(range(1, len(p) + 1)) for p in parts.values())
    assert len(events) == len(entries)  # ISSUED_PER_EVENT is 1 here
    deps = roster.services.deps
    for _, e in entries:
        m = issued[e.membership_id]
        assert not e.HasField("meta")
        assert (e.student_id, e.school_org_code, e.school_org_path, e.stage) == (
            m.student_id, m.school_org_code, m.school_org_path, m.stage,
        )  # fmt: skip
        assert e.batch_id == batch.batch_id and e.school_year == flows.YEAR
        assert e.group == flows.DIBAO and e.source == common_pb2.MEMBERSHIP_SOURCE_ISSUED
        assert e.verification_status == pb.VERIFICATION_STATUS_PENDING
    assert {e.id_number_blind_index for _, e in entries} == {
        deps.id_index(common_pb2.ID_TYPE_RESIDENT_ID, make_id(n)) for n in (1, 2, 3, 6, 7)
    }


# PostgreSQL only: SQLite always inserts skipping conflicts.
@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_a_membership_that_appears_during_the_insert_is_kept_once(
    roster, monkeypatch, caplog
):
    """On PostgreSQL the memberships go in without ON CONFLICT under a savepoint: a conflicting
    membership (here: students already in the group are not linked first, as if a school's
    self-collected membership had committed after the linking) sends the whole insert round
    again, skipping conflicts."""
    assert roster.db.dialect == "postgresql"
    from roster_service.repository.groups import GroupRepository

    async def link_nothing(self, session, batch_id, school_year, now) -> None:
        return None

    monkeypatch.setattr(GroupRepository, "link_existing", link_nothing)
    await flows.seed_students(roster)
    await self_collect_student_4(roster)
    with caplog.at_level(logging.INFO, logger="roster_service.service.batches"):
        batch = await flows.issue(roster, [flows.issued(n) for n in (1, 2, 4)])
    assert any("skipping conflicts" in r.getMessage() for r in caplog.records)
    assert batch.status == pb.ISSUE_BATCH_STATUS_COMMITTED, batch.error_message
    assert (batch.matched_count, batch.memberships_added) == (3, 2)
    members = await roster.stub.ListMemberships(
        pb.ListMembershipsRequest(school_year=flows.YEAR), metadata=md(NATION)
    )
    sources = sorted(m.source for m in members.memberships)
    assert sources == [
        common_pb2.MEMBERSHIP_SOURCE_ISSUED,
        common_pb2.MEMBERSHIP_SOURCE_ISSUED,
        common_pb2.MEMBERSHIP_SOURCE_SELF_COLLECTED,
    ]
    # The first round's events went with its savepoint: one entry per membership made.
    entries = await issued_entries(roster)
    issued = {
        m.membership_id
        for m in members.memberships
        if m.source == common_pb2.MEMBERSHIP_SOURCE_ISSUED
    }
    assert sorted(e.membership_id for _, e in entries) == sorted(issued)

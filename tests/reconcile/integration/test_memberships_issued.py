"""roster.membership.issued: the memberships a central issue batch created, one event per school
(several parts for a big one), applied by the roster consumer as their MembershipAdded would be —
same rows, added at the outer event's time, idempotent on replay, and open to the verifications
and ends that follow."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from reconcile_service import tables
from reconcile_world import (
    AUTUMN_2024,
    BAIYUN_PS,
    HUAYANG,
    ISSUED,
    TIANHE,
    Student,
    World,
    id_number,
)
from sqlalchemy import select
from zizhu_contracts.reconcile.v1 import reconcile_pb2 as pb
from zizhu_contracts.roster.v1 import events_pb2 as roster_events
from zizhu_contracts.roster.v1 import roster_pb2

OPEN, NOT_ELIGIBLE = 1, 3
PENDING = roster_pb2.VERIFICATION_STATUS_PENDING
CONFIRMED = roster_pb2.VERIFICATION_STATUS_CONFIRMED
REJECTED = roster_pb2.VERIFICATION_STATUS_REJECTED
SEPT_2 = datetime(2024, 9, 2, 8, 0, tzinfo=UTC)
SEPT_3 = datetime(2024, 9, 3, 8, 0, tzinfo=UTC)
BATCH = "B-2024-0001"
BORN = "20140505"  # no other student of these tests has this ID number


def _utc(value: Any) -> Any:
    # SQLite hands timestamps back naive (stored as UTC).
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


async def _memberships(w: World) -> dict[str, dict[str, Any]]:
    """The read copy's membership rows by id, every column but the id."""
    m = tables.membership
    async with w.db.read() as s:
        rows = (await s.execute(select(m))).mappings().all()
    out = {}
    for r in rows:
        out[r["membership_id"]] = {k: _utc(v) for k, v in r.items() if k != "membership_id"}
    return out


async def _students(w: World) -> dict[str, tuple[int, str]]:
    """student id → (student key, blind index) in the read copy."""
    st = tables.student
    async with w.db.read() as s:
        rows = await s.execute(
            select(st.c.student_id, st.c.student_key, st.c.id_number_blind_index)
        )
        return {sid: (key, blind) for sid, key, blind in rows}


async def _dirty(w: World) -> set[int]:
    async with w.db.read() as s:
        return set((await s.execute(select(tables.dirty_student.c.student_key))).scalars())


def _unregistered(w: World, n: int, school: tuple) -> Student:
    """A student roster has not announced yet (its registration comes after the membership)."""
    number = id_number(n, BORN)
    return Student(f"S{n:06d}", number, f"学生{n}", school, 2, w.feed.blind(number))


async def _unfunded_ids(w: World, status: int) -> set[str]:
    return {e.student_id for e in await w.unfunded(TIANHE[0], statuses=[status])}


async def test_issued_entries_make_the_rows_their_membership_added_events_would(
    world: World,
) -> None:
    f = world.feed
    await f.org_tree()
    await f.period(AUTUMN_2024, deadline_on="2025-01-31")
    a = await f.student(HUAYANG, name="张一")
    b = await f.student(HUAYANG, name="李二")
    c = await f.student(BAIYUN_PS, name="王三")
    d = _unregistered(world, 990001, BAIYUN_PS)
    # Two schools of one batch; the second in two parts, c in both (two groups).
    issued = [
        await f.memberships_issued(BATCH, HUAYANG, [(a, 1), (b, 5)], at=SEPT_2),
        await f.memberships_issued(BATCH, BAIYUN_PS, [(c, 7)], part=1, at=SEPT_3),
        await f.memberships_issued(BATCH, BAIYUN_PS, [(d, 2), (c, 2)], part=2, at=SEPT_3),
    ]
    # The same memberships as one MembershipAdded each (ids prefixed "A"), at the same times.
    for msg in issued:
        for entry in msg.memberships:
            added = roster_events.MembershipAdded()
            added.CopyFrom(entry)
            added.membership_id = "A" + entry.membership_id
            await f.publish(
                "roster.membership.added", added, msg.meta.occurred_at.ToDatetime(tzinfo=UTC)
            )
    await world.sync()

    rows = await _memberships(world)
    students = await _students(world)
    entries = [(msg, e) for msg in issued for e in msg.memberships]
    assert len(rows) == 2 * len(entries) == 10
    for msg, e in entries:
        row = rows[e.membership_id]
        assert row == rows["A" + e.membership_id], "the same row as its MembershipAdded"
        school = HUAYANG if msg.school_org_code == HUAYANG[0] else BAIYUN_PS
        assert row["student_key"] == students[e.student_id][0]
        assert (row["school_org_code"], row["school_org_path"]) == (school[0], school[4])
        assert (row["special_group"], row["source"], row["batch_id"]) == (e.group, ISSUED, BATCH)
        assert (row["verification"], row["verified_at"], row["ended_on"]) == (PENDING, None, None)
        assert row["added_at"] == (SEPT_2 if school is HUAYANG else SEPT_3), "the outer meta's"
    # The student roster has not announced yet has a key, found by the entry's blind index.
    assert students[d.student_id][1] == d.blind_index
    assert {students[s.student_id][0] for s in (a, b, c, d)} <= await _dirty(world)

    # Registered later, the placeholder becomes the student; all four are unfunded members.
    await f.student(BAIYUN_PS, name="赵四", n=990001, birth=BORN)
    run = await world.run("440000")
    assert run.status == pb.RUN_STATUS_SUCCEEDED
    assert await _unfunded_ids(world, OPEN) == {a.student_id, b.student_id}  # 华阳小学's
    by_student = {e.student_id: e for e in await world.unfunded("440000")}
    assert set(by_student) == {s.student_id for s in (a, b, c, d)}
    groups = {(g.group, g.source) for g in by_student[c.student_id].groups}
    assert groups == {(7, ISSUED), (2, ISSUED)}


async def test_a_replayed_issued_event_changes_nothing_and_keeps_a_verification(
    world: World,
) -> None:
    f = world.feed
    await f.org_tree()
    a = await f.student(HUAYANG)
    b = await f.student(HUAYANG)
    c = await f.student(HUAYANG)
    # c's verification reaches the copy before the part that adds its membership.
    await f.verify(c, "M-pre-c", 3, CONFIRMED)
    await world.sync()
    msg = await f.memberships_issued(
        BATCH, HUAYANG, [(a, 1), (b, 3), (c, 3)], at=SEPT_2, ids=["M-a", "M-b", "M-pre-c"]
    )
    await world.sync()
    await f.verify(a, "M-a", 1, CONFIRMED)
    await world.sync()
    before = await _memberships(world)
    assert set(before) == {"M-a", "M-b", "M-pre-c"}
    assert [before[m]["verification"] for m in ("M-a", "M-b", "M-pre-c")] == [
        CONFIRMED,
        PENDING,
        CONFIRMED,
    ], "a verification seen before the addition is kept"
    assert before["M-pre-c"]["school_org_code"] == HUAYANG[0]
    assert before["M-pre-c"]["added_at"] == SEPT_2

    # The same event delivered again: its id is known, the stream keeps it once.
    ack = await f.js.publish(
        "roster.membership.issued",
        msg.SerializeToString(),
        headers={"Nats-Msg-Id": msg.meta.event_id},
    )
    assert ack.duplicate
    # The same bytes under another id (a replay the processed-event table cannot recognise):
    # applied again, the copy does not change.
    await f.js.publish(
        "roster.membership.issued",
        msg.SerializeToString(),
        headers={"Nats-Msg-Id": "replay-" + msg.meta.event_id},
    )
    await world.sync()
    assert await _memberships(world) == before


async def test_verifications_and_ends_apply_to_issued_memberships(world: World) -> None:
    f = world.feed
    await f.org_tree()
    await f.period(AUTUMN_2024)
    a = await f.student(HUAYANG)
    b = await f.student(HUAYANG)
    c = await f.student(HUAYANG)
    msg = await f.memberships_issued(BATCH, HUAYANG, [(a, 1), (b, 3), (c, 5)], at=SEPT_2)
    mid = {e.student_id: e.membership_id for e in msg.memberships}
    first = await world.run("440000")
    assert first.unfunded_opened == 3
    assert await _unfunded_ids(world, OPEN) == {a.student_id, b.student_id, c.student_id}

    await f.end_membership(a, mid[a.student_id], 1, "2024-10-01")
    await f.verify(b, mid[b.student_id], 3, REJECTED)
    await world.sync()
    rows = await _memberships(world)
    assert rows[mid[a.student_id]]["ended_on"] == "2024-10-01"
    assert rows[mid[b.student_id]]["verification"] == REJECTED
    assert rows[mid[b.student_id]]["verified_at"] is not None
    assert rows[mid[c.student_id]]["ended_on"] is None
    assert rows[mid[c.student_id]]["verification"] == PENDING

    second = await world.run("440000")
    assert second.unfunded_closed == 2
    assert await _unfunded_ids(world, OPEN) == {c.student_id}
    assert await _unfunded_ids(world, NOT_ELIGIBLE) == {a.student_id, b.student_id}

"""StudentRegistered payloads assembled from pre-serialised parts are byte-for-byte the message
protobuf serialises (long org paths and names included: multi-byte lengths)."""

from __future__ import annotations

from datetime import UTC, datetime

from roster_service.event_parts import registered_row_parts, school_part
from roster_service.events import (
    REGISTERED_TYPE,
    STUDENT_REGISTERED,
    RegisteredEvents,
    meta,
)
from zizhu_common.rpc import CallerContext
from zizhu_contracts.roster.v1 import events_pb2, roster_pb2

CALLER = CallerContext(
    account_id="acc-1",
    org_code="440106",
    org_path="/000000/440000/440100/440106/",
    level="county",
    roles=frozenset({"operator"}),
    request_id="req-123",
)
SYSTEM = CallerContext(
    account_id="system:sync", org_code="", org_path="/", level="national", roles=frozenset()
)


def _expected(event_id: str, occurred, caller, sid, school, row) -> bytes:
    code, name, path = school
    m = meta(caller, path)
    m.event_id = event_id
    m.occurred_at.CopyFrom(occurred)
    m.producer = "roster"
    return events_pb2.StudentRegistered(
        meta=m,
        student_id=sid,
        id_number_blind_index=row["bi"],
        name=row["name"],
        id_number_masked=row["id_number_masked"],
        gender=row["gender"],
        birth_date=row["birth_date"],
        enrollment=roster_pb2.Enrollment(
            school_org_code=code,
            school_name=name,
            school_org_path=path,
            **{k: row[k] for k in _ENROLMENT_KEYS},
        ),
    ).SerializeToString()


_ENROLMENT_KEYS = (
    "stage", "student_number", "grade", "class_name", "major_name", "status", "enrolled_on",
    "left_on", "boarder", "status_date",
)  # fmt: skip


def test_registered_rows_equal_protobuf_serialisation() -> None:
    rows = [
        dict(
            bi="ab" * 32, name="张三", id_number_masked="440106********0011", gender=1,
            birth_date="2012-09-01", stage=2, student_number="G440106********0011", grade="七年级",
            class_name="1班", major_name="", status=1, enrolled_on="2024-09-01", left_on="",
            boarder=True, status_date="",
        ),
        # Empty optional fields, no blind index (a J number student), a long major.
        dict(
            bi="", name="欧阳" * 20, id_number_masked="", gender=2, birth_date="2008-01-31",
            stage=4, student_number="J" + "1" * 18, grade="2023级", class_name="", major_name="数控"
            * 30, status=2, enrolled_on="", left_on="2024-07-01", boarder=False,
            status_date="2024-07-01",
        ),
    ]  # fmt: skip
    schools = [
        ("2144010601", "广州市天河区华阳小学", "/000000/440000/440100/440106/2144010601/"),
        ("3" * 10, "很长的学校名称" * 12, "/000000/" + "440000/" * 30 + "3333333333/"),
    ]
    for caller in (CALLER, SYSTEM):
        builder = RegisteredEvents(caller, "roster", "created-at")
        items = []
        for i, (row, school) in enumerate(zip(rows, schools, strict=True)):
            person, enrolment = registered_row_parts(**row)
            items.append((f"S{i:024d}", school[2], person, school_part(*school), enrolment))
        out = builder.rows_of(items)
        assert len({r[0] for r in out}) == len(out)
        for (event_id, subject, kind, payload, created, attempts), row, school, item in zip(
            out, rows, schools, items, strict=True
        ):
            assert (subject, kind, created, attempts) == (
                STUDENT_REGISTERED,
                REGISTERED_TYPE,
                "created-at",
                0,
            )
            assert payload == _expected(event_id, builder.occurred, caller, item[0], school, row)
            parsed = events_pb2.StudentRegistered.FromString(payload)
            assert parsed.meta.event_id == event_id and parsed.enrollment.school_name == school[1]


def test_created_at_defaults_to_now() -> None:
    before = datetime.now(UTC)
    assert RegisteredEvents(None, "roster", None).created_at >= before


def test_membership_added_rows_equal_stamped_events() -> None:
    from roster_service.events import MEMBERSHIP_ADDED, PrebuiltEvents
    from roster_service.repository.memberships import NewMembership
    from roster_service.service.group_views import ADDED_TYPE, AddedBodies, added_event

    rows = [
        NewMembership(
            7, "S1", "2144010601", "/000000/440000/2144010601/", 2, 3, 1, "B1", "2024-09-01", "",
            1, "2024-2025", 11,
        ),
        NewMembership(
            123456789, "S2", "3" * 10, "/000000/" + "440000/" * 30, 3, 13, 1, None, "", "", 1,
            "2024-2025", None,
        ),
        # The first one's school and group again: its fields 5–14 come from the cache.
        NewMembership(
            8, "S3", "2144010601", "/000000/440000/2144010601/", 2, 3, 1, "B1", "2024-09-01", "",
            1, "2024-2025", 12,
        ),
    ]  # fmt: skip
    for caller in (CALLER, SYSTEM, None):
        builder = PrebuiltEvents(caller, "roster", None)
        bodies = AddedBodies()
        out = builder.rows(
            MEMBERSHIP_ADDED,
            ADDED_TYPE,
            [(r.school_org_path, bodies.body(r, f"bi{r.id}" if r.id != 8 else "")) for r in rows],
        )
        for (event_id, subject, kind, payload, _created, _attempts), r in zip(
            out, rows, strict=True
        ):
            expected = added_event(r, f"bi{r.id}" if r.id != 8 else "", caller)
            expected.meta.event_id = event_id
            expected.meta.occurred_at.CopyFrom(builder.occurred)
            expected.meta.producer = "roster"
            assert (subject, kind) == (MEMBERSHIP_ADDED, ADDED_TYPE)
            assert payload == expected.SerializeToString()


def test_memberships_issued_rows_equal_stamped_events() -> None:
    from roster_service.events import MEMBERSHIPS_ISSUED, PrebuiltEvents
    from roster_service.repository.memberships import NewMembership
    from roster_service.service.group_views import (
        ISSUED_TYPE,
        AddedBodies,
        added_event,
        issued_events,
    )

    a, b = ("2144010601", "/000000/440000/2144010601/"), ("3" * 10, "/000000/" + "440000/" * 30)

    def new(mid: int, school: tuple[str, str], stage: int = 2) -> NewMembership:
        return NewMembership(
            mid, f"S{mid}", school[0], school[1], stage, 3, 1, "B1", "2024-09-01", "", 1,
            "2024-2025", mid + 100,
        )  # fmt: skip

    # Sorted by school path as the matching returns them: school a has five (two parts of two
    # and one of one), school b one; entries with and without a blind index.
    page = [(new(i, a, 2 + i % 2), f"bi{i}" if i != 3 else "") for i in range(1, 6)]
    page.append((new(9, b), "bi9"))
    for caller in (CALLER, SYSTEM, None):
        builder = PrebuiltEvents(caller, "roster", None)
        out = builder.rows(MEMBERSHIPS_ISSUED, ISSUED_TYPE, issued_events(page, AddedBodies(), 2))
        expected_parts = [(a, 1, [1, 2]), (a, 2, [3, 4]), (a, 3, [5]), (b, 1, [9])]
        assert len(out) == len(expected_parts)
        by_id = {r.id: (r, bi) for r, bi in page}
        for (event_id, subject, kind, payload, _c, _a), (school, part, ids) in zip(
            out, expected_parts, strict=True
        ):
            expected = events_pb2.MembershipsIssued(
                meta=meta(caller, school[1]),
                batch_id="B1",
                school_org_code=school[0],
                school_org_path=school[1],
                part=part,
            )
            for i in ids:
                entry = added_event(*by_id[i], caller)
                entry.ClearField("meta")
                expected.memberships.append(entry)
            expected.meta.event_id = event_id
            expected.meta.occurred_at.CopyFrom(builder.occurred)
            expected.meta.producer = "roster"
            assert (subject, kind) == (MEMBERSHIPS_ISSUED, ISSUED_TYPE)
            assert payload == expected.SerializeToString()

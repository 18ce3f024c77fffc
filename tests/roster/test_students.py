"""学籍 sync, reads, search, scope and the enrolment check, over a real gRPC channel."""

from __future__ import annotations

import grpc
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.roster.v1 import events_pb2
from zizhu_contracts.roster.v1 import roster_pb2 as pb

from tests.roster.conftest import (
    COUNTY_BY,
    COUNTY_TH,
    NATION,
    SCHOOL_BYPS,
    SCHOOL_HY,
    SCHOOL_HY_AUDITOR,
    SCHOOL_MS,
    VIEWER_TH,
    md,
)
from tests.roster.helpers import expect_error, make_id, row, sync


async def test_sync_registers_students_with_encrypted_id_and_events(roster):
    resp = await sync(roster.stub, md(SCHOOL_HY), [row(1), row(2)], source_system="学籍系统")
    assert (resp.created_count, resp.updated_count, resp.unchanged_count) == (2, 0, 0)
    assert all(resp.student_ids)
    got = await roster.stub.GetStudent(
        pb.GetStudentRequest(student_id=resp.student_ids[0]), metadata=md(SCHOOL_HY)
    )
    s = got.student
    assert s.id_number_masked == make_id(1)[:6] + "********" + make_id(1)[-4:]
    assert s.id_number == "" and s.phone == "" and s.phone_masked == "138****8000"
    assert s.enrollment.school_name == "广州市天河区华阳小学"
    async with roster.db.read() as session:
        from sqlalchemy import text

        stored = (await session.execute(text("SELECT id_number_enc, phone_enc FROM student"))).all()
    assert all(make_id(1) not in (r[0] or "") and r[0].startswith("sm4g1:") for r in stored)
    assert all(r[1].startswith("sm4g1:") for r in stored)
    events = [
        events_pb2.StudentRegistered.FromString(p)
        for p in await roster.outbox_events("roster.student.registered")
    ]
    assert len(events) == 2
    assert events[0].meta.org_path.endswith("/2144010601/")
    assert make_id(1) not in bytes(events[0].SerializeToString()).decode("latin-1")


async def test_resync_of_same_rows_changes_nothing(roster):
    await sync(roster.stub, md(SCHOOL_HY), [row(1), row(2)])
    before = await roster.count("outbox_event")
    again = await sync(roster.stub, md(SCHOOL_HY), [row(1), row(2)])
    assert (again.created_count, again.updated_count, again.unchanged_count) == (0, 0, 2)
    assert await roster.count("outbox_event") == before


async def test_changed_grade_and_name_keep_history(roster):
    first = await sync(roster.stub, md(SCHOOL_HY), [row(1)])
    sid = first.student_ids[0]
    resp = await sync(roster.stub, md(SCHOOL_HY), [row(1, name="李四", grade="七年级")])
    assert resp.updated_count == 1
    got = await roster.stub.GetStudent(
        pb.GetStudentRequest(student_id=sid, include_history=True), metadata=md(SCHOOL_HY)
    )
    assert got.student.name == "李四" and got.student.enrollment.grade == "七年级"
    kinds = {c.kind: c for c in got.changes}
    assert kinds["updated"].before["name"] == "学生1" and kinds["updated"].after["name"] == "李四"
    assert kinds["enrollment_changed"].after["grade"] == "七年级"
    assert "roster.student.updated" in await roster.outbox_subjects()


async def test_transfer_moves_student_and_both_schools_see_it(roster):
    first = await sync(roster.stub, md(SCHOOL_HY), [row(5)])
    sid = first.student_ids[0]
    moved = await sync(
        roster.stub,
        md(NATION),
        [row(5, school_org_code="2144011102", enrolled_on="2024-03-01", class_name="3班")],
    )
    assert moved.updated_count == 1 and moved.student_ids[0] == sid
    # The new school sees the student in school.
    new = await roster.stub.SearchStudents(pb.SearchStudentsRequest(), metadata=md(SCHOOL_BYPS))
    assert [s.enrollment.status for s in new.students] == [pb.STUDENT_STATUS_IN_SCHOOL]
    # The old school still sees the student, transferred out, with the date.
    old = await roster.stub.SearchStudents(pb.SearchStudentsRequest(), metadata=md(SCHOOL_HY))
    assert [s.enrollment.status for s in old.students] == [pb.STUDENT_STATUS_TRANSFERRED_OUT]
    assert old.students[0].enrollment.left_on == "2024-03-01"
    got = await roster.stub.GetStudent(
        pb.GetStudentRequest(student_id=sid, include_history=True), metadata=md(SCHOOL_HY)
    )
    assert got.student.enrollment.school_org_code == "2144010601"
    assert {c.kind for c in got.changes} >= {"transferred_out"}
    assert "transferred_in" not in {c.kind for c in got.changes}  # the other school's record
    payloads = await roster.outbox_events("roster.student.enrollment_changed")
    changes = [events_pb2.StudentEnrollmentChanged.FromString(p) for p in payloads]
    assert {c.enrollment.school_org_code for c in changes} == {"2144010601", "2144011102"}
    into = next(c for c in changes if c.enrollment.school_org_code == "2144011102")
    assert into.previous.school_org_code == "2144010601"


async def test_batch_with_bad_row_writes_nothing_unless_skipping(roster):
    bad = row(2, id_number="440106201209010011")  # wrong check digit
    resp = await sync(roster.stub, md(SCHOOL_HY), [row(1), bad])
    assert resp.created_count == 0 and list(resp.student_ids) == ["", ""]
    assert [(e.row, e.column, e.code) for e in resp.errors] == [
        (2, "身份证件号码", "ID_NUMBER_CHECKSUM")
    ]
    assert "*" in resp.errors[0].value
    assert await roster.count("student") == 0 and await roster.count("outbox_event") == 0
    skipped = await sync(roster.stub, md(SCHOOL_HY), [row(1), bad], skip_invalid_rows=True)
    assert skipped.created_count == 1 and skipped.student_ids[1] == ""
    assert len(skipped.errors) == 1


async def test_rows_for_schools_outside_scope_or_unknown_are_refused(roster):
    resp = await sync(
        roster.stub,
        md(SCHOOL_HY),
        [
            row(1, school_org_code="2144011102"),
            row(2, school_org_code="9999999999"),
            row(3, stage=common_pb2.STAGE_PRESCHOOL),
        ],
    )
    assert [e.code for e in resp.errors] == [
        "SCHOOL_NOT_FOUND",
        "SCHOOL_NOT_FOUND",
        "STAGE_NOT_SERVED",
    ]
    assert await roster.count("student") == 0


async def test_replayed_batch_id_answers_first_result(roster):
    first = await sync(roster.stub, md(SCHOOL_HY), [row(1)], batch_id="xj-2024-0001")
    again = await sync(roster.stub, md(SCHOOL_HY), [row(1, name="改名")], batch_id="xj-2024-0001")
    assert list(again.student_ids) == list(first.student_ids) and again.created_count == 1
    got = await roster.stub.GetStudent(
        pb.GetStudentRequest(student_id=first.student_ids[0]), metadata=md(SCHOOL_HY)
    )
    assert got.student.name == "学生1"
    await expect_error(
        sync(roster.stub, md(SCHOOL_MS), [row(1)], batch_id="xj-2024-0001"),
        grpc.StatusCode.FAILED_PRECONDITION,
        "BATCH_ID_TAKEN",
    )


async def test_student_without_id_is_keyed_by_j_number(roster):
    j = "J440106201209010123"
    resp = await sync(roster.stub, md(SCHOOL_HY), [row(1, id_number="", student_number=j)])
    assert resp.created_count == 1, resp.errors
    again = await sync(
        roster.stub, md(SCHOOL_HY), [row(1, id_number="", student_number=j, grade="七年级")]
    )
    assert again.updated_count == 1 and again.student_ids[0] == resp.student_ids[0]
    # The ID number arrives later: attached to the same student.
    later = await sync(roster.stub, md(SCHOOL_HY), [row(1, student_number=j)])
    assert later.student_ids[0] == resp.student_ids[0]
    got = await roster.stub.GetStudent(
        pb.GetStudentRequest(id_number=make_id(1)), metadata=md(SCHOOL_HY)
    )
    assert got.student.student_id == resp.student_ids[0]


async def test_other_county_cannot_read_or_find_student(roster):
    resp = await sync(roster.stub, md(SCHOOL_HY), [row(1)])
    sid = resp.student_ids[0]
    await expect_error(
        roster.stub.GetStudent(pb.GetStudentRequest(student_id=sid), metadata=md(COUNTY_BY)),
        grpc.StatusCode.NOT_FOUND,
        "STUDENT_NOT_FOUND",
    )
    await expect_error(
        roster.stub.GetStudent(
            pb.GetStudentRequest(id_number=make_id(1)), metadata=md(SCHOOL_BYPS)
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    found = await roster.stub.SearchStudents(
        pb.SearchStudentsRequest(id_number=make_id(1)), metadata=md(COUNTY_BY)
    )
    assert found.page.total == 0 and not found.students
    await expect_error(
        roster.stub.SearchStudents(
            pb.SearchStudentsRequest(org_code="440106"), metadata=md(COUNTY_BY)
        ),
        grpc.StatusCode.NOT_FOUND,
        "ORG_NOT_FOUND",
    )
    batch = await roster.stub.BatchGetStudents(
        pb.BatchGetStudentsRequest(student_ids=[sid, "nope"]), metadata=md(COUNTY_BY)
    )
    assert not batch.students and list(batch.missing_ids) == [sid, "nope"]
    mine = await roster.stub.BatchGetStudents(
        pb.BatchGetStudentsRequest(student_ids=[sid]), metadata=md(COUNTY_TH)
    )
    assert [s.student_id for s in mine.students] == [sid]


async def test_search_filters_and_pages(roster):
    rows = [row(i, name=f"王{i:02d}", class_name=f"{i % 2 + 1}班") for i in range(1, 8)]
    rows.append(
        row(
            50,
            name="张三",
            school_org_code="3444010601",
            stage=common_pb2.STAGE_GENERAL_HIGH_SCHOOL,
            grade="高一",
            class_name="高一(1)班",
            student_number="G" + make_id(50),
        )
    )
    await sync(roster.stub, md(COUNTY_TH), rows)
    page1 = await roster.stub.SearchStudents(
        pb.SearchStudentsRequest(name="王", page=common_pb2.PageRequest(page_size=5)),
        metadata=md(COUNTY_TH),
    )
    assert page1.page.total == 7 and len(page1.students) == 5 and page1.page.next_page_token
    page2 = await roster.stub.SearchStudents(
        pb.SearchStudentsRequest(
            name="王",
            page=common_pb2.PageRequest(page_size=5, page_token=page1.page.next_page_token),
        ),
        metadata=md(COUNTY_TH),
    )
    assert len(page2.students) == 2 and not page2.page.next_page_token
    assert {s.student_id for s in page1.students}.isdisjoint({s.student_id for s in page2.students})
    await expect_error(
        roster.stub.SearchStudents(
            pb.SearchStudentsRequest(
                name="张", page=common_pb2.PageRequest(page_token=page1.page.next_page_token)
            ),
            metadata=md(COUNTY_TH),
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "PAGE_TOKEN_INVALID",
    )
    by_class = await roster.stub.SearchStudents(
        pb.SearchStudentsRequest(class_name="1班"), metadata=md(COUNTY_TH)
    )
    assert by_class.page.total == 3
    by_stage = await roster.stub.SearchStudents(
        pb.SearchStudentsRequest(stage=common_pb2.STAGE_GENERAL_HIGH_SCHOOL), metadata=md(COUNTY_TH)
    )
    assert [s.name for s in by_stage.students] == ["张三"]
    by_number = await roster.stub.SearchStudents(
        pb.SearchStudentsRequest(student_number="G" + make_id(3)), metadata=md(COUNTY_TH)
    )
    assert [s.name for s in by_number.students] == ["王03"]
    school = await roster.stub.SearchStudents(pb.SearchStudentsRequest(), metadata=md(SCHOOL_MS))
    assert [s.name for s in school.students] == ["张三"]


async def test_full_id_number_only_in_audited_read_by_allowed_role(roster):
    resp = await sync(roster.stub, md(SCHOOL_HY), [row(1)])
    sid = resp.student_ids[0]
    await expect_error(
        roster.stub.GetStudent(
            pb.GetStudentRequest(student_id=sid, reveal_id_number=True), metadata=md(VIEWER_TH)
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        "REVEAL_NOT_ALLOWED",
    )
    assert "roster.audit.recorded" not in await roster.outbox_subjects()
    got = await roster.stub.GetStudent(
        pb.GetStudentRequest(student_id=sid, reveal_id_number=True), metadata=md(SCHOOL_HY_AUDITOR)
    )
    assert got.student.id_number == make_id(1) and got.student.phone == "13800138000"
    audits = [
        common_pb2.ActionAudited.FromString(p)
        for p in await roster.outbox_events("roster.audit.recorded")
    ]
    assert len(audits) == 1 and audits[0].sensitive_read and audits[0].object_id == sid
    assert audits[0].meta.actor_account_id == SCHOOL_HY_AUDITOR.account_id


async def test_malformed_id_lookup_is_invalid_argument(roster):
    await expect_error(
        roster.stub.GetStudent(pb.GetStudentRequest(id_number="12345"), metadata=md(SCHOOL_HY)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "ID_NUMBER_FORMAT",
    )
    await expect_error(
        roster.stub.GetStudent(pb.GetStudentRequest(), metadata=md(SCHOOL_HY)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "STUDENT_KEY_REQUIRED",
    )


async def test_calls_without_caller_are_refused(roster):
    await expect_error(
        roster.stub.SearchStudents(pb.SearchStudentsRequest()), grpc.StatusCode.UNAUTHENTICATED
    )


async def test_check_enrollment_outcomes(roster):
    await sync(
        roster.stub,
        md(COUNTY_TH),
        [
            row(1),
            row(2, status=pb.STUDENT_STATUS_GRADUATED, status_date="2024-07-01"),
            row(
                3,
                school_org_code="3444010601",
                stage=common_pb2.STAGE_GENERAL_HIGH_SCHOOL,
                grade="高一",
            ),
        ],
    )
    await sync(roster.stub, md(COUNTY_BY), [row(4, school_org_code="2144011102")])
    autumn = common_pb2.AidPeriod(school_year="2024-2025", term=common_pb2.TERM_AUTUMN)
    spring_2024 = common_pb2.AidPeriod(school_year="2023-2024", term=common_pb2.TERM_SPRING)
    hy = "2144010601"
    compulsory = common_pb2.STAGE_COMPULSORY
    checks = [
        pb.EnrollmentCheck(
            id_number=make_id(1), name="学生1", school_org_code=hy, stage=compulsory, period=autumn
        ),
        pb.EnrollmentCheck(
            id_number="440106201209010011", school_org_code=hy, stage=compulsory, period=autumn
        ),
        pb.EnrollmentCheck(
            id_number=make_id(99), school_org_code=hy, stage=compulsory, period=autumn
        ),
        pb.EnrollmentCheck(
            id_number=make_id(1), name="别人", school_org_code=hy, stage=compulsory, period=autumn
        ),
        pb.EnrollmentCheck(
            id_number=make_id(3), school_org_code=hy, stage=compulsory, period=autumn
        ),
        pb.EnrollmentCheck(
            id_number=make_id(1),
            school_org_code=hy,
            stage=common_pb2.STAGE_GENERAL_HIGH_SCHOOL,
            period=autumn,
        ),
        pb.EnrollmentCheck(
            id_number=make_id(2), school_org_code=hy, stage=compulsory, period=autumn
        ),
        pb.EnrollmentCheck(
            id_number=make_id(2), school_org_code=hy, stage=compulsory, period=spring_2024
        ),
        pb.EnrollmentCheck(
            id_number=make_id(4), school_org_code="2144011102", stage=compulsory, period=autumn
        ),
    ]
    resp = await roster.stub.CheckEnrollment(
        pb.CheckEnrollmentRequest(checks=checks), metadata=md(COUNTY_TH)
    )
    assert [r.outcome for r in resp.results] == [
        pb.ENROLLMENT_CHECK_OUTCOME_ENROLLED,
        pb.ENROLLMENT_CHECK_OUTCOME_INVALID_ID_NUMBER,
        pb.ENROLLMENT_CHECK_OUTCOME_STUDENT_NOT_FOUND,
        pb.ENROLLMENT_CHECK_OUTCOME_NAME_MISMATCH,
        pb.ENROLLMENT_CHECK_OUTCOME_NOT_AT_SCHOOL,
        pb.ENROLLMENT_CHECK_OUTCOME_STAGE_MISMATCH,
        pb.ENROLLMENT_CHECK_OUTCOME_NOT_IN_SCHOOL,
        pb.ENROLLMENT_CHECK_OUTCOME_ENROLLED,
        # Another county's school: answered as unknown, never with its data.
        pb.ENROLLMENT_CHECK_OUTCOME_STUDENT_NOT_FOUND,
    ]
    first = resp.results[0]
    assert (
        first.student_id and first.id_number_blind_index and first.enrollment.school_org_code == hy
    )
    assert [r.index for r in resp.results] == list(range(len(checks)))
    assert not resp.results[8].student_id
    # A school asking about a student of another school learns nothing about it.
    other = await roster.stub.CheckEnrollment(
        pb.CheckEnrollmentRequest(checks=[checks[4]]), metadata=md(SCHOOL_HY)
    )
    assert other.results[0].outcome == pb.ENROLLMENT_CHECK_OUTCOME_STUDENT_NOT_FOUND
    assert not other.results[0].student_id and not other.results[0].enrollment.school_org_code
    # By blind index, as aid calls once it stored it.
    by_bi = await roster.stub.CheckEnrollment(
        pb.CheckEnrollmentRequest(
            checks=[
                pb.EnrollmentCheck(
                    id_number_blind_index=first.id_number_blind_index,
                    school_org_code=hy,
                    stage=compulsory,
                    period=autumn,
                )
            ]
        ),
        metadata=md(SCHOOL_HY),
    )
    assert by_bi.results[0].outcome == pb.ENROLLMENT_CHECK_OUTCOME_ENROLLED


async def test_check_enrollment_id_number_forms(roster):
    """ID numbers are looked up as typed (padded, lower-case x, explicit type) and only misses are
    validated: a malformed number is INVALID_ID_NUMBER, a valid unknown one STUDENT_NOT_FOUND."""
    with_x = next(make_id(s) for s in range(5, 500) if make_id(s).endswith("X"))
    await sync(roster.stub, md(COUNTY_TH), [row(1), row(5, id_number=with_x)])
    autumn = common_pb2.AidPeriod(school_year="2024-2025", term=common_pb2.TERM_AUTUMN)
    hy, compulsory = "2144010601", common_pb2.STAGE_COMPULSORY
    numbers = [
        f"  {make_id(1)} ",
        with_x.lower(),
        make_id(1)[:17] + ("0" if make_id(1)[17] != "0" else "1"),  # checksum wrong
        make_id(1)[:16],  # too short
        make_id(77),  # valid, unknown
    ]
    checks = [
        pb.EnrollmentCheck(
            id_type=common_pb2.ID_TYPE_RESIDENT_ID if i % 2 else 0,
            id_number=n,
            school_org_code=hy,
            stage=compulsory,
            period=autumn,
        )
        for i, n in enumerate(numbers)
    ]
    resp = await roster.stub.CheckEnrollment(
        pb.CheckEnrollmentRequest(checks=checks), metadata=md(COUNTY_TH)
    )
    assert [r.outcome for r in resp.results] == [
        pb.ENROLLMENT_CHECK_OUTCOME_ENROLLED,
        pb.ENROLLMENT_CHECK_OUTCOME_ENROLLED,
        pb.ENROLLMENT_CHECK_OUTCOME_INVALID_ID_NUMBER,
        pb.ENROLLMENT_CHECK_OUTCOME_INVALID_ID_NUMBER,
        pb.ENROLLMENT_CHECK_OUTCOME_STUDENT_NOT_FOUND,
    ]
    first, second = resp.results[0], resp.results[1]
    assert first.enrollment.school_name == "广州市天河区华阳小学"
    assert first.enrollment.school_org_code == hy and first.name == "学生1"
    assert second.id_number_masked.endswith("X") and second.student_id != first.student_id
    assert not resp.results[4].student_id and not resp.results[4].enrollment.school_org_code


async def test_registered_events_wake_the_relay_only_on_commit(roster):
    """New students' StudentRegistered rows are written ready-made (not through Outbox.add_many):
    the relay is still woken after the commit, and not by a sync that rolled back."""
    wakeup = roster.services.deps.outbox.wakeup
    wakeup.clear()
    bad = await sync(roster.stub, md(COUNTY_TH), [row(1), row(2, id_number="123")])
    assert bad.errors and not wakeup.is_set()
    assert await roster.count("outbox_event") == 0
    ok = await sync(roster.stub, md(COUNTY_TH), [row(1), row(2)])
    assert ok.created_count == 2 and wakeup.is_set()
    payloads = await roster.outbox_events("roster.student.registered")
    events = [events_pb2.StudentRegistered.FromString(p) for p in payloads]
    assert sorted(e.name for e in events) == ["学生1", "学生2"]
    assert all(e.meta.event_id and e.meta.producer == "roster" for e in events)
    assert {e.enrollment.school_name for e in events} == {"广州市天河区华阳小学"}

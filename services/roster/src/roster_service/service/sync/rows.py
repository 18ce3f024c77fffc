"""One row at a time: a new student or changes to a known one (person facts, enrolment changes,
transfers) planned into the chunk's write plan, with history records and events (mixed into
RowApplier)."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message
from zizhu_contracts.roster.v1 import events_pb2, roster_pb2

from roster_service.domain.common import ON_ROLL, new_id
from roster_service.domain.students import (
    RowOutcome,
    StoredEnrollment,
    StoredPerson,
    StudentRow,
    departure_for,
    enrollment_changes,
    person_changes,
    stored_number,
)
from roster_service.event_parts import school_part
from roster_service.events import (
    STUDENT_ENROLLMENT_CHANGED,
    STUDENT_REGISTERED,
    STUDENT_UPDATED,
    enrollment_message,
    meta,
)
from roster_service.prepare import Prepared
from roster_service.repository.orgs import OrgRef
from roster_service.repository.students import ENROLLMENT_COLUMNS
from roster_service.service.context import Deps
from roster_service.service.sync.context import SyncContext, _change, _enrollment_dict, _Plan


class _RowWriter:
    """Plans new students and changes to known ones (mixed into RowApplier)."""

    d: Deps

    # -- one row ---------------------------------------------------------------------------------

    def _enrollment_values(self, row: StudentRow) -> dict[str, Any]:
        return {
            "student_number": stored_number(row.student_number),
            "grade": row.grade,
            "class_name": row.class_name,
            "major_name": row.major_name,
            "status": int(row.status),
            "status_date": row.status_date,
            "enrolled_on": row.enrolled_on,
            "left_on": row.left_on,
            "boarder": row.boarder,
        }

    def _create(
        self,
        plan: _Plan,
        ctx: SyncContext,
        row: StudentRow,
        out: RowOutcome,
        school: OrgRef,
        p: Prepared,
    ) -> None:
        bi = p.bi
        sid, eid = new_id("S"), new_id("E")
        now = ctx.stamp
        number = row.stored_student_number
        stage, status = int(row.stage), int(row.status)
        plan.new_students.append(
            (
                sid, int(row.id_type), p.id_enc, bi or None, row.id_number_masked, row.name,
                int(row.gender), row.birth_date, row.ethnicity, row.household_type,
                row.household_region_code, p.phone_enc, row.phone_masked, eid,
                ctx.source_system, ctx.batch_id, ctx.batch_id, now, now, now, 1,
            )
        )  # fmt: skip
        plan.new_enrollments.append(
            (
                eid, sid, school.org_code, school.org_path, stage, number, row.grade,
                row.class_name, row.major_name, status, row.status_date, row.enrolled_on,
                row.left_on, row.boarder, True, now, now, 1,
            )
        )  # fmt: skip
        if p.person_part:
            part = ctx.school_parts.get(school.org_code)
            if part is None:
                part = ctx.school_parts[school.org_code] = school_part(
                    school.org_code, school.name, school.org_path
                )
            plan.registered.append((sid, school.org_path, p.person_part, part, p.enrolment_part))
        else:
            plan.events.append(
                (
                    STUDENT_REGISTERED,
                    events_pb2.StudentRegistered(
                        meta=meta(ctx.caller, school.org_path),
                        student_id=sid,
                        id_number_blind_index=bi,
                        name=row.name,
                        id_number_masked=row.id_number_masked,
                        gender=int(row.gender),
                        birth_date=row.birth_date,
                        enrollment=roster_pb2.Enrollment(
                            school_org_code=school.org_code,
                            school_name=school.name,
                            school_org_path=school.org_path,
                            stage=stage,
                            student_number=number,
                            grade=row.grade,
                            class_name=row.class_name,
                            major_name=row.major_name,
                            status=status,
                            enrolled_on=row.enrolled_on,
                            left_on=row.left_on,
                            boarder=row.boarder,
                            status_date=row.status_date,
                        ),
                    ),
                )
            )
        out.student_id = sid
        out.created = True
        ctx.created += 1

    def _update(
        self,
        plan: _Plan,
        ctx: SyncContext,
        row: StudentRow,
        out: RowOutcome,
        school: OrgRef,
        person: StoredPerson,
        p: Prepared,
        enrollments: list[StoredEnrollment],
    ) -> None:
        d = self.d
        bi = p.bi
        now = ctx.now
        sid = person.student_id
        out.student_id = sid
        stored_phone = d.decrypt_phone(person.phone_enc) if row.phone and person.phone_enc else ""
        changes = person_changes(person, row, stored_phone)
        id_values: dict[str, Any] = {}
        if bi and not person.has_id_number:
            changes["id_number"] = ("", row.id_number_masked)
            id_values = {
                "id_type": int(row.id_type),
                "id_number_enc": p.id_enc,
                "id_number_bi": bi,
                "id_number_masked": row.id_number_masked,
            }
        events: list[tuple[str, Message]] = []
        current_id = person.current_enrollment_id
        same = next(
            (
                e
                for e in enrollments
                if e.school_org_code == row.school_org_code and e.stage == int(row.stage)
            ),
            None,
        )
        others = [e for e in enrollments if e is not same and e.is_current]
        school_names = {c: (s.name if s else "") for c, s in ctx.schools.items()}

        def close_others() -> None:
            for other in others:
                before = _enrollment_dict(other)
                after = dict(before)
                after["is_current"] = False
                departure = departure_for(other, row, today=ctx.today)
                kind = "enrollment_changed"
                changed: dict[str, tuple[str, str]] = {}
                if departure is not None:
                    after["status"] = int(departure.status)
                    after["left_on"] = departure.left_on
                    after["status_date"] = departure.left_on
                    kind = "transferred_out"
                    changed = {
                        "status": (str(other.status), str(int(departure.status))),
                        "left_on": (other.left_on, departure.left_on),
                    }
                after["version"] = other.version + 1
                plan.update_enrollment(after, now)
                plan.changes.append(
                    _change(sid, other.enrollment_id, kind, changed, other.school_org_code, ctx)
                )
                if departure is not None:
                    events.append(
                        (
                            STUDENT_ENROLLMENT_CHANGED,
                            events_pb2.StudentEnrollmentChanged(
                                meta=meta(ctx.caller, other.school_org_path),
                                student_id=sid,
                                id_number_blind_index=bi or person.id_number_bi,
                                enrollment=enrollment_message(
                                    after, school_names.get(other.school_org_code, "")
                                ),
                                previous=enrollment_message(
                                    before, school_names.get(other.school_org_code, "")
                                ),
                            ),
                        )
                    )

        values = self._enrollment_values(row)
        if same is not None:
            before = _enrollment_dict(same)
            ech = enrollment_changes(same, row)
            becomes_current = not same.is_current and row.status in ON_ROLL
            path_moved = same.school_org_path != school.org_path
            if ech or becomes_current or path_moved:
                after = dict(before)
                after.update({k: v for k, v in values.items() if k in ech})
                after["school_org_path"] = school.org_path
                after["is_current"] = same.is_current or becomes_current
                after["version"] = same.version + 1
                plan.update_enrollment(after, now)
                if becomes_current:
                    close_others()
                    current_id = same.enrollment_id
                if ech or becomes_current:
                    plan.changes.append(
                        _change(
                            sid, same.enrollment_id, "enrollment_changed", ech, school.org_code, ctx
                        )
                    )
                    events.append(
                        (
                            STUDENT_ENROLLMENT_CHANGED,
                            events_pb2.StudentEnrollmentChanged(
                                meta=meta(ctx.caller, school.org_path),
                                student_id=sid,
                                id_number_blind_index=bi or person.id_number_bi,
                                enrollment=enrollment_message(after, school.name),
                                previous=enrollment_message(before, school.name),
                            ),
                        )
                    )
        else:
            previous = next((e for e in others), None)
            eid = new_id("E")
            enrollment = {
                "enrollment_id": eid,
                "student_id": sid,
                "school_org_code": school.org_code,
                "school_org_path": school.org_path,
                "stage": int(row.stage),
                **values,
                "is_current": True,
                "created_at": ctx.stamp,
                "updated_at": ctx.stamp,
                "version": 1,
            }
            plan.new_enrollments.append(tuple(enrollment[c] for c in ENROLLMENT_COLUMNS))
            close_others()
            current_id = eid
            moved_from = previous.school_org_code if previous else ""
            plan.changes.append(
                _change(
                    sid,
                    eid,
                    "transferred_in" if previous else "enrolled",
                    {"school_org_code": (moved_from, school.org_code)},
                    school.org_code,
                    ctx,
                )
            )
            msg = events_pb2.StudentEnrollmentChanged(
                meta=meta(ctx.caller, school.org_path),
                student_id=sid,
                id_number_blind_index=bi or person.id_number_bi,
                enrollment=enrollment_message(enrollment, school.name),
            )
            if previous is not None:
                msg.previous.CopyFrom(
                    enrollment_message(
                        _enrollment_dict(previous),
                        school_names.get(previous.school_org_code, ""),
                    )
                )
            events.append((STUDENT_ENROLLMENT_CHANGED, msg))

        if changes:
            plan.changes.append(_change(sid, None, "updated", changes, school.org_code, ctx))
            events.insert(
                0,
                (
                    STUDENT_UPDATED,
                    events_pb2.StudentUpdated(
                        meta=meta(ctx.caller, school.org_path),
                        student_id=sid,
                        id_number_blind_index=bi or person.id_number_bi,
                        name=row.name,
                        id_number_masked=id_values.get("id_number_masked", person.id_number_masked),
                        gender=int(row.gender),
                        birth_date=row.birth_date,
                        changed_fields=sorted(changes),
                    ),
                ),
            )
        if not changes and not events and current_id == person.current_enrollment_id:
            ctx.unchanged += 1
            return
        phone_enc = d.encrypt_phone(row.phone) if "phone" in changes else (person.phone_enc or None)
        plan.student_updates.append(
            {
                "student_id": sid,
                "id_type": id_values.get("id_type", person.id_type),
                "id_number_bi": id_values.get("id_number_bi", person.id_number_bi or None),
                "id_number_masked": id_values.get("id_number_masked", person.id_number_masked),
                "name": row.name,
                "gender": int(row.gender),
                "birth_date": row.birth_date,
                "ethnicity": row.ethnicity or person.ethnicity,
                "household_type": row.household_type or person.household_type,
                "household_region_code": row.household_region_code or person.household_region_code,
                "phone_enc": phone_enc,
                "phone_masked": row.phone_masked if "phone" in changes else person.phone_masked,
                "current_enrollment_id": current_id,
                "last_batch_id": ctx.batch_id,
                "updated_at": now,
                "synced_at": now,
                "version": person.version + 1,
            }
        )
        if id_values:
            plan.id_updates.append({"student_id": sid, "id_number_enc": id_values["id_number_enc"]})
        plan.events.extend(events)
        out.updated = True
        ctx.updated += 1

"""Views → protobuf by field name (the views follow the contract's names), and requests → the
plain values the use cases take."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.roster.v1 import roster_pb2

from roster_service.domain.common import RowError
from roster_service.service.views import CheckResult, EnrollmentView

_TIMESTAMP = "google.protobuf.Timestamp"


def to_proto(cls: type[Message], obj: Any) -> Any:
    """A `cls` message filled from obj's attributes of the same names (recursively)."""
    msg = cls()
    for f in cls.DESCRIPTOR.fields:
        if not hasattr(obj, f.name):
            continue
        value = getattr(obj, f.name)
        if value is None:
            continue
        _set(msg, f, value)
    return msg


def _set(msg: Any, f: FieldDescriptor, value: Any) -> None:
    target = getattr(msg, f.name)
    if f.message_type is not None:
        if f.message_type.GetOptions().map_entry:
            target.update({str(k): str(v) for k, v in value.items()})
        elif f.message_type.full_name == _TIMESTAMP:
            if isinstance(value, datetime):
                target.FromDatetime(value)
        elif f.is_repeated:
            sub = GetMessageClass(f.message_type)
            target.extend(to_proto(sub, v) for v in value)
        else:
            target.CopyFrom(to_proto(GetMessageClass(f.message_type), value))
        return
    if f.is_repeated:
        target.extend(int(v) if f.enum_type is not None else v for v in value)
        return
    if f.enum_type is not None:
        setattr(msg, f.name, int(value))
    else:
        setattr(msg, f.name, value)


def enrollment(e: EnrollmentView) -> roster_pb2.Enrollment:
    """An Enrollment message (built directly: batched checks answer thousands of them)."""
    return roster_pb2.Enrollment(
        school_org_code=e.school_org_code,
        school_name=e.school_name,
        school_org_path=e.school_org_path,
        stage=e.stage,  # type: ignore[arg-type]
        student_number=e.student_number,
        grade=e.grade,
        class_name=e.class_name,
        major_name=e.major_name,
        status=e.status,  # type: ignore[arg-type]
        enrolled_on=e.enrolled_on,
        left_on=e.left_on,
        boarder=e.boarder,
        status_date=e.status_date,
    )


def check_response(results: list[CheckResult]) -> roster_pb2.CheckEnrollmentResponse:
    """A CheckEnrollmentResponse: results appended in place (no intermediate messages to copy),
    only fields with a value set."""
    resp = roster_pb2.CheckEnrollmentResponse()
    add = resp.results.add
    for r in results:
        if r.student_id:
            msg = add(
                index=r.index,
                outcome=r.outcome,  # type: ignore[arg-type]
                student_id=r.student_id,
                id_number_blind_index=r.id_number_blind_index,
                name=r.name,
                id_number_masked=r.id_number_masked,
                hardship_level=r.hardship_level,  # type: ignore[arg-type]
            )
            e = r.enrollment
            if e is not None:
                m = msg.enrollment
                m.school_org_code = e.school_org_code
                m.school_name = e.school_name
                m.school_org_path = e.school_org_path
                m.stage = e.stage  # type: ignore[assignment]
                m.student_number = e.student_number
                m.grade = e.grade
                m.class_name = e.class_name
                m.major_name = e.major_name
                m.status = e.status  # type: ignore[assignment]
                m.enrolled_on = e.enrolled_on
                m.left_on = e.left_on
                m.boarder = e.boarder
                m.status_date = e.status_date
        else:
            msg = add(index=r.index, outcome=r.outcome)  # type: ignore[arg-type]
            if r.enrollment is not None:
                msg.enrollment.CopyFrom(enrollment(r.enrollment))
            if r.hardship_level:
                msg.hardship_level = r.hardship_level  # type: ignore[assignment]
    return resp


def row_errors(errors: list[RowError]) -> list[common_pb2.RowError]:
    """RowError messages."""
    return [
        common_pb2.RowError(
            row=e.row, column=e.column, value=e.value, code=e.code, message=e.message
        )
        for e in errors
    ]


def page(p: Any) -> common_pb2.PageResponse:
    """PageResponse from a Page view."""
    return common_pb2.PageResponse(next_page_token=p.next_page_token, total=p.total)


def file_content(f: Any) -> common_pb2.FileContent:
    """FileContent from a FileView."""
    return common_pb2.FileContent(
        file_name=f.file_name, content_type=f.content_type, content=f.content
    )


def import_summary(s: Any) -> common_pb2.ImportSummary:
    """ImportSummary from an ImportSummaryView."""
    msg = common_pb2.ImportSummary(
        import_id=s.import_id,
        file_name=s.file_name,
        total_rows=s.total_rows,
        valid_rows=s.valid_rows,
        error_rows=s.error_rows,
        dry_run=s.dry_run,
        committed=s.committed,
        created_count=s.created_count,
        updated_count=s.updated_count,
        errors=row_errors(s.errors),
        errors_truncated=s.errors_truncated,
    )
    if s.expires_at is not None:
        msg.expires_at.FromDatetime(s.expires_at)
    return msg


# StudentSyncRow fields as the text the validator reads (enums by number; 0 = unset).
_ENUM_TEXT_FIELDS = ("id_type", "gender", "household_type", "stage", "status")


def sync_row(row: Any) -> dict[str, str]:
    """A StudentSyncRow as the text fields validate_row reads."""
    out = {
        "id_number": row.id_number,
        "name": row.name,
        "birth_date": row.birth_date,
        "ethnicity": row.ethnicity,
        "household_region_code": row.household_region_code,
        "phone": row.phone,
        "school_org_code": row.school_org_code,
        "student_number": row.student_number,
        "grade": row.grade,
        "class_name": row.class_name,
        "major_name": row.major_name,
        "status_date": row.status_date,
        "enrolled_on": row.enrolled_on,
        "left_on": row.left_on,
        "boarder": "是" if row.boarder else "否",
    }
    for name in _ENUM_TEXT_FIELDS:
        value = getattr(row, name)
        out[name] = str(value) if value else ""
    return out

"""Pre-serialised parts of a StudentRegistered payload, built where rows are prepared (in the
sync's worker processes, which import only this, the validation and the crypto: not SQLAlchemy,
whose import alone costs a worker more than a second)."""

from __future__ import annotations

from zizhu_contracts.roster.v1 import events_pb2, roster_pb2

__all__ = ["registered_row_parts", "school_part"]


def _varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, value: bytes) -> bytes:
    return tag + _varint(len(value)) + value


def registered_row_parts(
    *,
    bi: str,
    name: str,
    id_number_masked: str,
    gender: int,
    birth_date: str,
    stage: int,
    student_number: str,
    grade: str,
    class_name: str,
    major_name: str,
    status: int,
    enrolled_on: str,
    left_on: str,
    boarder: bool,
    status_date: str,
) -> tuple[bytes, bytes]:
    """The row's own parts of a StudentRegistered payload: fields 3–7 of the event, and fields
    4–13 of its Enrollment (the school's fields 1–3 come from `school_part`)."""
    person = events_pb2.StudentRegistered(
        id_number_blind_index=bi,
        name=name,
        id_number_masked=id_number_masked,
        gender=gender,  # type: ignore[arg-type]
        birth_date=birth_date,
    ).SerializeToString()
    enrolment = roster_pb2.Enrollment(
        stage=stage,  # type: ignore[arg-type]
        student_number=student_number,
        grade=grade,
        class_name=class_name,
        major_name=major_name,
        status=status,  # type: ignore[arg-type]
        enrolled_on=enrolled_on,
        left_on=left_on,
        boarder=boarder,
        status_date=status_date,
    ).SerializeToString()
    return person, enrolment


def school_part(org_code: str, name: str, org_path: str) -> bytes:
    """Fields 1–3 of an Enrollment: the school."""
    return roster_pb2.Enrollment(
        school_org_code=org_code, school_name=name, school_org_path=org_path
    ).SerializeToString()

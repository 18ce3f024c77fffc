"""Test data: valid ID numbers and 学籍 rows."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from zizhu_common.idnumber import id_check_char
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.roster.v1 import roster_pb2 as pb


def make_id(seq: int, *, birth: str = "20120901", area: str = "440106", male: bool = True) -> str:
    """A valid 18-digit resident ID number."""
    order = seq * 2 + (1 if male else 0)
    first17 = f"{area}{birth}{order % 1000:03d}"
    return first17 + id_check_char(first17)


def row(n: int, **kw: Any) -> pb.StudentSyncRow:
    """A valid 学籍 row for the n-th test student at 华阳小学 (义务教育)."""
    idn = kw.pop("id_number", make_id(n))
    values: dict[str, Any] = {
        "id_type": common_pb2.ID_TYPE_RESIDENT_ID,
        "id_number": idn,
        "name": kw.pop("name", f"学生{n}"),
        "gender": pb.GENDER_MALE,
        "birth_date": "2012-09-01",
        "school_org_code": "2144010601",
        "stage": common_pb2.STAGE_COMPULSORY,
        "student_number": "G" + idn,
        "grade": "六年级",
        "class_name": "1班",
        "status": pb.STUDENT_STATUS_IN_SCHOOL,
        "enrolled_on": "2019-09-01",
        "phone": "13800138000",
    }
    values.update(kw)
    return pb.StudentSyncRow(**values)


async def sync(
    stub: Any, md: Any, rows: list[pb.StudentSyncRow], **kw: Any
) -> pb.SyncStudentsResponse:
    """SyncStudents with the given rows."""
    return await stub.SyncStudents(pb.SyncStudentsRequest(rows=rows, **kw), metadata=md, timeout=30)


async def expect_error(
    coro: Any, status: grpc.StatusCode, code: str | None = None
) -> grpc.aio.AioRpcError:
    """Await a call that must fail with status (and stable code)."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await coro
    err = info.value
    assert err.code() == status, (err.code(), err.details())
    if code is not None:
        import json

        trailer = dict(err.trailing_metadata() or ())
        body = json.loads(trailer["zizhu-error-bin"])
        assert body["code"] == code, body
    return err


async def wait_committed(stub: Any, md: Any, batch_id: str) -> pb.IssueBatch:
    """Poll a batch until matching finished (COMMITTED or FAILED)."""
    for _ in range(600):
        resp = await stub.GetSpecialGroupBatch(
            pb.GetSpecialGroupBatchRequest(batch_id=batch_id), metadata=md, timeout=10
        )
        if resp.batch.status in (pb.ISSUE_BATCH_STATUS_COMMITTED, pb.ISSUE_BATCH_STATUS_FAILED):
            return resp.batch
        await asyncio.sleep(0.05)
    raise AssertionError("batch never finished matching")


async def issued_entries(roster: Any) -> list[tuple[Any, Any]]:
    """Every entry of the roster.membership.issued events in the roster's outbox, in order, with
    its event: (MembershipsIssued, MembershipAdded without meta) pairs."""
    from zizhu_contracts.roster.v1 import events_pb2

    out = []
    for payload in await roster.outbox_events("roster.membership.issued"):
        event = events_pb2.MembershipsIssued.FromString(payload)
        out.extend((event, entry) for entry in event.memberships)
    return out

"""The retired 建档立卡 report (history, read-only, autumn-2023 carried over) and the reason
dictionary the nation edits."""

from __future__ import annotations

import grpc
import pytest
from reconcile_world import (
    AUTUMN_2023,
    AUTUMN_2024,
    BAIYUN,
    HUAYANG,
    TIANHE,
    World,
    caller,
    error_of,
    period_pb,
)
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.reconcile.v1 import reconcile_pb2 as pb

SPRING_2023 = ("2022-2023", 2)


def _row(period: tuple, number: str, name: str, **kw: str) -> pb.LegacyReportRow:
    return pb.LegacyReportRow(
        period=period_pb(period),
        project_code="GJ-YW-JSSBZ",
        project_name="寄宿生生活补助",
        id_type=common_pb2.ID_TYPE_RESIDENT_ID,
        id_number=number,
        student_name=name,
        school_org_code=kw.pop("school", HUAYANG[0]),
        **kw,
    )


async def test_autumn_2023_reasons_are_carried_over_and_history_stays_read_only(
    world: World,
) -> None:
    f = world.feed
    await f.org_tree()
    await f.period(AUTUMN_2023)
    await f.period(AUTUMN_2024)
    a = await f.student(HUAYANG, name="张一")
    b = await f.student(HUAYANG, name="李二")
    d = await f.student(HUAYANG, name="孙六")
    await f.membership(a, 1)
    await f.membership(b, 1)
    await world.run("440000", AUTUMN_2023, AUTUMN_2024)
    rows = [
        _row(AUTUMN_2023, a.id_number, "张一", legacy_reason="学生或监护人自愿放弃"),
        _row(AUTUMN_2023, b.id_number, "李二", legacy_reason="外出打工，联系不上"),
        _row(AUTUMN_2023, d.id_number, "孙六", reason_code="07"),
        _row(SPRING_2023, a.id_number, "张一", reason_code="03"),
    ]
    bad = [*rows, _row(AUTUMN_2023, "440106201503010000", "错号", legacy_reason="其他")]
    refused = await world.stub.ImportLegacyReports(
        pb.ImportLegacyReportsRequest(rows=bad), metadata=caller("000000", "admin")
    )
    assert refused.imported_count == 0
    assert [(e.row, e.column, e.code) for e in refused.errors] == [
        (5, "身份证件号码", "ID_NUMBER_CHECKSUM")
    ]
    assert "*" in refused.errors[0].value
    empty = await world.stub.ListLegacyReports(
        pb.ListLegacyReportsRequest(), metadata=caller(HUAYANG[0], "viewer")
    )
    assert empty.page.total == 0
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.ImportLegacyReports(
            pb.ImportLegacyReportsRequest(rows=rows), metadata=caller(TIANHE[0], "admin")
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

    done = await world.stub.ImportLegacyReports(
        pb.ImportLegacyReportsRequest(rows=rows), metadata=caller("000000", "admin")
    )
    assert done.imported_count == 4 and not done.errors
    # Existing autumn-2023 entries got the old reasons at once; autumn 2024 did not.
    carried = {
        e.student_name: e.school_reason for e in await world.unfunded(TIANHE[0], AUTUMN_2023)
    }
    assert (carried["张一"].reason_code, carried["张一"].note) == ("02", "")
    assert (carried["李二"].reason_code, carried["李二"].note) == ("99", "外出打工，联系不上")
    assert carried["张一"].carried_over and carried["李二"].carried_over
    assert all(not e.HasField("school_reason") for e in await world.unfunded(TIANHE[0]))
    # A student who joins the group later gets the carried reason when the run opens the entry.
    await f.membership(d, 1)
    await world.run("440000", AUTUMN_2023)
    [late] = await world.unfunded(TIANHE[0], AUTUMN_2023, student_name="孙六")
    assert late.school_reason.reason_code == "07" and late.school_reason.carried_over

    history = await world.stub.ListLegacyReports(
        pb.ListLegacyReportsRequest(), metadata=caller(HUAYANG[0], "viewer")
    )
    got = {(r.student_name, r.period.school_year, r.period.term): r for r in history.reports}
    assert len(got) == 4 and history.page.total == 4
    assert got[("张一", "2023-2024", 1)].carried_over
    assert not got[("张一", "2022-2023", 2)].carried_over
    assert got[("张一", "2022-2023", 2)].reason_code == "03"
    assert got[("张一", "2023-2024", 1)].student_id == a.student_id
    assert got[("张一", "2023-2024", 1)].project_name == "寄宿生生活补助"
    by_id = await world.stub.ListLegacyReports(
        pb.ListLegacyReportsRequest(id_number=b.id_number), metadata=caller(TIANHE[0], "viewer")
    )
    assert [r.student_name for r in by_id.reports] == ["李二"]
    other = await world.stub.ListLegacyReports(
        pb.ListLegacyReportsRequest(), metadata=caller(BAIYUN[0], "viewer")
    )
    assert other.reports == [] and other.page.total == 0
    # Re-importing the same rows replaces them instead of duplicating.
    await world.stub.ImportLegacyReports(
        pb.ImportLegacyReportsRequest(rows=rows), metadata=caller("000000", "admin")
    )
    again = await world.stub.ListLegacyReports(
        pb.ListLegacyReportsRequest(), metadata=caller(HUAYANG[0], "viewer")
    )
    assert again.page.total == 4
    # The school may replace a carried reason in the new module.
    entry = carried["张一"]
    [a_entry] = await world.unfunded(TIANHE[0], AUTUMN_2023, student_name="张一")
    assert entry.reason_code == "02"
    world.clock.now = world.clock.now.replace(year=2024, month=1, day=10)
    replaced = await world.stub.ReportReason(
        pb.ReportReasonRequest(entry_ids=[a_entry.entry_id], reason_code="04"),
        metadata=caller(HUAYANG[0]),
    )
    assert not replaced.entries[0].school_reason.carried_over


async def test_nation_edits_the_dictionary_and_disabled_codes_cannot_be_reported(
    world: World,
) -> None:
    listed = await world.stub.ListReasonDictionary(
        pb.ListReasonDictionaryRequest(), metadata=caller(HUAYANG[0], "viewer")
    )
    assert [r.code for r in listed.reasons][:3] == ["01", "02", "03"]
    assert len(listed.reasons) == 12 and listed.reasons[-1].requires_note
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.UpdateReasonDictionary(
            pb.UpdateReasonDictionaryRequest(reasons=[pb.ReasonCode(code="12", label="新原因")]),
            metadata=caller("440000", "admin"),
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.UpdateReasonDictionary(
            pb.UpdateReasonDictionaryRequest(
                reasons=[pb.ReasonCode(code="99", label="其他", requires_note=False, enabled=True)]
            ),
            metadata=caller("000000", "admin"),
        )
    assert error_of(err.value)["code"] == "REASON_OTHER_NEEDS_NOTE"
    updated = await world.stub.UpdateReasonDictionary(
        pb.UpdateReasonDictionaryRequest(
            reasons=[
                pb.ReasonCode(
                    code="11", label="享受非现金资助（如减免）", enabled=False, sort_order=11
                ),
                pb.ReasonCode(code="12", label="已享受国家助学贷款", enabled=True, sort_order=12),
            ],
            expected_version=listed.version,
        ),
        metadata=caller("000000", "admin"),
    )
    assert updated.version == listed.version + 1
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.UpdateReasonDictionary(
            pb.UpdateReasonDictionaryRequest(
                reasons=[pb.ReasonCode(code="12", label="改名", enabled=True)],
                expected_version=listed.version,
            ),
            metadata=caller("000000", "admin"),
        )
    assert err.value.code() == grpc.StatusCode.ABORTED
    now = await world.stub.ListReasonDictionary(
        pb.ListReasonDictionaryRequest(), metadata=caller(HUAYANG[0], "viewer")
    )
    assert "11" not in [r.code for r in now.reasons] and "12" in [r.code for r in now.reasons]
    everything = await world.stub.ListReasonDictionary(
        pb.ListReasonDictionaryRequest(include_disabled=True), metadata=caller(HUAYANG[0], "viewer")
    )
    assert len(everything.reasons) == 13

    f = world.feed
    await f.org_tree()
    await f.period(AUTUMN_2024)
    a = await f.student(HUAYANG)
    await f.membership(a, 1)
    await world.run("440000")
    [entry] = await world.unfunded(TIANHE[0])
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.stub.ReportReason(
            pb.ReportReasonRequest(entry_ids=[entry.entry_id], reason_code="11"),
            metadata=caller(HUAYANG[0]),
        )
    assert error_of(err.value)["code"] == "REASON_CODE_DISABLED"
    ok = await world.stub.ReportReason(
        pb.ReportReasonRequest(entry_ids=[entry.entry_id], reason_code="12"),
        metadata=caller(HUAYANG[0]),
    )
    assert ok.entries[0].school_reason.reason_label == "已享受国家助学贷款"

"""GetOrg's read path keeps answers while the database is unchanged and never serves a stale one:
any committed change (from any connection) is seen by the next GetOrg."""

from __future__ import annotations

import sqlite3

import grpc
import pytest
from identity_service import tables
from identity_service.repository import SqliteOrgReader
from sqlalchemy import create_engine, text
from zizhu_common.errors import error_from_rpc
from zizhu_contracts.identity.v1 import identity_pb2

SCHOOL = "2144010601"  # under 440106 (天河区)


async def _get(identity, metadata, code: str = SCHOOL) -> identity_pb2.GetOrgResponse:
    return await identity.stub.GetOrg(
        identity_pb2.GetOrgRequest(org_code=code), metadata=metadata, timeout=5
    )


async def test_get_org_sees_every_committed_change(identity) -> None:
    th_admin = await identity.caller("th_admin")
    first = await _get(identity, th_admin)
    again = await _get(identity, th_admin)
    assert again == first
    reader = identity.services.orgs._reader
    if reader is not None:  # SQLite: the second answer came from the reader's cache
        assert reader.hits >= 1

    async with identity.db.write() as s:
        await s.execute(text("UPDATE org SET name = '天河区（新名）' WHERE org_code = '440106'"))
        await s.execute(
            text(f"UPDATE org SET name = '华阳小学（新名）' WHERE org_code = '{SCHOOL}'")
        )
    changed = await _get(identity, th_admin)
    assert changed.org.name == "华阳小学（新名）"
    assert [a.name for a in changed.ancestors][-1] == "天河区（新名）"

    # Moved out of the caller's subtree: out of scope at once, not after some expiry.
    async with identity.db.write() as s:
        await s.execute(
            text(f"UPDATE org SET org_path = '/000000/440000/440100/440111/{SCHOOL}/', "
                 f"parent_code = '440111' WHERE org_code = '{SCHOOL}'")
        )  # fmt: skip
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _get(identity, th_admin)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_from_rpc(info.value).code == "ORG_NOT_FOUND"


def test_sqlite_reader_drops_its_cache_when_another_connection_commits(tmp_path) -> None:
    path = tmp_path / "orgs.db"
    engine = create_engine(f"sqlite:///{path}")
    tables.org.metadata.create_all(engine, tables=[tables.org])
    engine.dispose()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    for code, name, level, parent, org_path in [
        ("000000", "全国", "national", None, "/000000/"),
        ("440000", "广东省", "province", "000000", "/000000/440000/"),
    ]:
        writer.execute(
            "INSERT INTO org (org_code, name, level, parent_code, org_path, depth, region_code,"
            " school_category, stages, ownership, status, retire_reason, created_at, updated_at,"
            " version) VALUES (?, ?, ?, ?, ?, ?, '', '', '', '', 'active', '',"
            " '2024-09-01 00:00:00', '2024-09-01 00:00:00', 1)",
            (code, name, level, parent, org_path, org_path.count("/") - 1),
        )
    reader = SqliteOrgReader(str(path))
    org, ancestors = reader.org_detail("440000")
    assert org is not None and org.name == "广东省" and list(ancestors) == ["000000"]
    assert reader.org_detail("440000")[0] is org  # unchanged database: the kept answer
    assert reader.hits == 1

    writer.execute("UPDATE org SET name = '广东' WHERE org_code = '440000'")
    fresh, _ = reader.org_detail("440000")
    assert fresh is not None and fresh is not org and fresh.name == "广东"
    assert reader.org_detail("no-such-org") == (None, {})
    assert reader.hits == 1
    reader.close()
    writer.close()

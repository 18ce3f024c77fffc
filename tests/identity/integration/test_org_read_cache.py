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


async def _until(predicate, timeout_s: float = 10.0) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await predicate():
        assert loop.time() < deadline, "not reached in time"
        await asyncio.sleep(0.02)


async def test_postgres_cache_keeps_answers_until_the_org_table_changes(identity) -> None:
    """PostgreSQL: answers are kept while the listening connection is alive; a change committed
    by this process is seen at once, one committed elsewhere once its notification arrives, and
    a lost listener turns the cache off until it listens again."""
    import asyncio

    import asyncpg
    from identity_service.repository.org_cache import APPLICATION_NAME
    from zizhu_common.db import libpq_dsn
    from zizhu_common.rpc import CallerContext

    cache = identity.services.orgs.pg_cache
    if identity.db.dialect != "postgresql":
        assert cache is None  # SQLite: the reader above keeps answers instead
        return
    assert cache is not None and not cache.live  # not listening: every GetOrg reads
    th_admin = await identity.caller("th_admin")
    await _get(identity, th_admin)
    await _get(identity, th_admin)
    assert cache.hits == 0

    stop = asyncio.Event()
    task = asyncio.create_task(cache.run(stop))
    other = await asyncpg.connect(libpq_dsn(identity.db.url))
    try:

        async def live() -> bool:
            return cache.live

        await _until(live)
        first = await _get(identity, th_admin)
        assert await _get(identity, th_admin) == first
        assert cache.hits >= 1

        # Committed by another connection (another replica, a DBA): seen once notified.
        await other.execute(f"UPDATE org SET name = '华阳小学（改）' WHERE org_code = '{SCHOOL}'")

        async def renamed() -> bool:
            return (await _get(identity, th_admin)).org.name == "华阳小学（改）"

        await _until(renamed)

        # Committed by this process (a re-import renames the district): seen by the next call.
        from identity_service.domain.orgs import OrgRow

        gd_admin = CallerContext(
            account_id="test", org_code="440000", org_path="/000000/440000/", level="province",
            roles=frozenset({"admin"}),
        )  # fmt: skip
        await _get(identity, th_admin)  # cached again
        result = await identity.services.orgs.import_orgs(
            gd_admin, [OrgRow(row=1, code="440106", name="天河区（改）", parent_code="440100")]
        )
        assert result.committed
        assert [a.name for a in (await _get(identity, th_admin)).ancestors][-1] == "天河区（改）"

        # The listener is cut off: the cache is off (every GetOrg reads) until it listens again.
        await other.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = $1 AND datname = current_database()",
            APPLICATION_NAME,
        )

        async def dark() -> bool:
            return not cache.live

        await _until(dark)
        await other.execute(f"UPDATE org SET name = '华阳小学（再改）' WHERE org_code = '{SCHOOL}'")
        assert (await _get(identity, th_admin)).org.name == "华阳小学（再改）"
        await _until(live)
        hits = cache.hits
        await _get(identity, th_admin)
        await _get(identity, th_admin)
        assert cache.hits == hits + 1
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
        await other.close()
    assert not cache.live

"""Org import (CSV/XLSX), scope, account lifecycle by ancestor admins, the audit chain and query."""

from __future__ import annotations

import io

import grpc
import openpyxl
import pytest
from sqlalchemy import text
from zizhu_common.errors import error_from_rpc
from zizhu_common.rpc import CallerContext
from zizhu_contracts.identity.v1 import identity_pb2

GD_ADMIN = CallerContext(
    account_id="t-gd-admin",
    org_code="440000",
    org_path="/000000/440000/",
    level="province",
    roles=frozenset({"admin"}),
)


async def _code(coro) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await coro
    return info.value.code(), error_from_rpc(info.value).code


def _xlsx(rows: list[list[str]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_division_csv_import_reports_bad_rows_and_writes_nothing(identity) -> None:
    csv = (
        "行政区划代码,名称,上级代码\n"
        "440300,深圳市,\n"
        "440304,福田区,\n"
        "44030X,坏代码,\n"
        "999900,未知省,\n"
        "440399,无上级区,440388\n"
    ).encode()
    result = await identity.services.orgs.import_file(GD_ADMIN, file_name="d.csv", content=csv)
    assert not result.committed
    assert [(e.row, e.column, e.code) for e in result.errors] == [
        (4, "行政区划代码", "DIVISION_CODE_INVALID"),
        (5, "行政区划代码", "DIVISION_CODE_INVALID"),
        (6, "上级代码", "PARENT_NOT_FOUND"),
    ]
    assert all(e.message for e in result.errors)
    async with identity.db.read() as s:
        assert await identity.services.deps.orgs.get(s, "440300") is None
    good = b"\xef\xbb\xbf\xe8\xa1\x8c\xe6\x94\xbf\xe5\x8c\xba\xe5\x88\x92\xe4\xbb\xa3\xe7\xa0\x81,\xe5\x90\x8d\xe7\xa7\xb0\n440300,SZ,\n440304,FT,\n"
    result = await identity.services.orgs.import_file(GD_ADMIN, file_name="d.csv", content=good)
    assert result.committed and result.created == 2 and not result.errors
    async with identity.db.read() as s:
        ft = await identity.services.deps.orgs.get(s, "440304")
    assert ft.org_path == "/000000/440000/440300/440304/" and ft.level.value == "county"


async def test_school_xlsx_import_and_reimport_moves_subtree_keeping_accounts(identity) -> None:
    rows = [
        ["学校标识码", "学校名称", "主管部门代码", "学段", "办学性质"],
        ["2144011102", "白云区第二小学", "440111", "义务教育", "公办"],
        ["3444011102", "白云区完全中学", "440111", "义务教育、普通高中", "民办"],
        ["2145011103", "省份不符小学", "440111", "", ""],
        ["2144011104", "未知学段小学", "440111", "大学", ""],
    ]
    result = await identity.services.orgs.import_file(
        GD_ADMIN, file_name="s.xlsx", content=_xlsx(rows)
    )
    assert sorted(e.code for e in result.errors) == ["SCHOOL_PROVINCE_MISMATCH", "STAGE_UNKNOWN"]
    assert not result.committed
    result = await identity.services.orgs.import_file(
        GD_ADMIN, file_name="s.xlsx", content=_xlsx(rows[:3])
    )
    assert result.committed and result.created == 2
    async with identity.db.read() as s:
        school = await identity.services.deps.orgs.get(s, "3444011102")
    assert [st.value for st in school.stages] == ["compulsory", "general_high_school"]
    assert school.ownership == "private" and school.region_code == "440111"

    # Move 天河区 (with its schools and their accounts) under a new city, renaming it too.
    accounts_before = await _account_paths(identity, "2144010601")
    assert accounts_before
    result = await identity.services.orgs.import_orgs(
        GD_ADMIN,
        [
            _row(1, "440200", "韶关市"),
            _row(2, "440106", "天河区（新）", parent="440200"),
        ],
    )
    assert result.committed and (result.created, result.moved) == (1, 1)
    paths = await _account_paths(identity, "2144010601")
    assert paths and all(p == "/000000/440000/440200/440106/2144010601/" for p in paths.values())
    assert set(paths) == set(accounts_before)
    resp = await identity.login("hy_operator")
    assert resp.principal.org_path == "/000000/440000/440200/440106/2144010601/"


def _row(n: int, code: str, name: str, parent: str | None = None):
    from identity_service.domain.orgs import OrgRow

    return OrgRow(row=n, code=code, name=name, parent_code=parent)


async def _account_paths(identity, org_code: str) -> dict[str, str]:
    async with identity.db.read() as s:
        rows = await s.execute(
            text("SELECT account_id, org_path FROM account WHERE org_code = :c"), {"c": org_code}
        )
        return {a: p for a, p in rows}


async def test_scope_hides_other_counties(identity) -> None:
    th_admin = await identity.caller("th_admin")
    got = await identity.stub.GetOrg(
        identity_pb2.GetOrgRequest(org_code="2144010601"), metadata=th_admin, timeout=5
    )
    assert [a.org_code for a in got.ancestors] == ["000000", "440000", "440100", "440106"]
    assert await _code(
        identity.stub.GetOrg(
            identity_pb2.GetOrgRequest(org_code="440111"), metadata=th_admin, timeout=5
        )
    ) == (grpc.StatusCode.NOT_FOUND, "ORG_NOT_FOUND")
    assert await _code(
        identity.stub.ListSubtree(
            identity_pb2.ListSubtreeRequest(org_code="440111"), metadata=th_admin, timeout=5
        )
    ) == (grpc.StatusCode.NOT_FOUND, "ORG_NOT_FOUND")
    own = await identity.stub.ListSubtree(
        identity_pb2.ListSubtreeRequest(include_root=True), metadata=th_admin, timeout=5
    )
    assert [o.org_code for o in own.orgs] == ["440106", "2144010601", "3444010601"]
    assert own.orgs[0].child_count == 2
    gz_op = await identity.caller("gz_operator")
    peers = await identity.stub.BatchGetOrgs(
        identity_pb2.BatchGetOrgsRequest(org_codes=["440106", "440000", "4144010558"]),
        metadata=gz_op,
        timeout=5,
    )
    assert [o.org_code for o in peers.orgs] == ["440106"]
    assert list(peers.missing_codes) == ["440000", "4144010558"]
    # Accounts of another county are NOT_FOUND for a county admin.
    gz_admin = await identity.caller("gz_admin")
    accounts = (
        await identity.stub.ListAccounts(
            identity_pb2.ListAccountsRequest(org_code="440111"), metadata=gz_admin, timeout=5
        )
    ).accounts
    assert accounts == []
    hy = (
        await identity.stub.ListAccounts(
            identity_pb2.ListAccountsRequest(org_code="2144010601"), metadata=gz_admin, timeout=5
        )
    ).accounts[0]
    by_other_county = CallerContext(
        account_id="t-by-admin",
        org_code="440111",
        org_path="/000000/440000/440100/440111/",
        level="county",
        roles=frozenset({"admin"}),
    ).to_metadata()
    assert await _code(
        identity.stub.GetAccount(
            identity_pb2.GetAccountRequest(account_id=hy.account_id),
            metadata=by_other_county,
            timeout=5,
        )
    ) == (grpc.StatusCode.NOT_FOUND, "ACCOUNT_NOT_FOUND")
    assert await _code(
        identity.stub.LockAccount(
            identity_pb2.LockAccountRequest(account_id=hy.account_id, reason="x"),
            metadata=by_other_county,
            timeout=5,
        )
    ) == (grpc.StatusCode.NOT_FOUND, "ACCOUNT_NOT_FOUND")


async def test_account_lifecycle_only_by_ancestor_admins(identity) -> None:
    th_admin = await identity.caller("th_admin")
    gz_admin = await identity.caller("gz_admin")
    school_admin = await identity.caller("hy_admin")
    by_name = {
        a.username: a
        for a in (
            await identity.stub.ListAccounts(
                identity_pb2.ListAccountsRequest(), metadata=gz_admin, timeout=5
            )
        ).accounts
    }
    th_op = by_name["th_operator"]
    hy_op = by_name["hy_operator"]
    assert hy_op.id_number_masked.count("*") == 8 and "****" in hy_op.phone_masked
    # Same-level admin cannot manage a peer; the school admin cannot manage its own school.
    assert await _code(
        identity.stub.LockAccount(
            identity_pb2.LockAccountRequest(account_id=th_op.account_id, reason="x"),
            metadata=th_admin,
            timeout=5,
        )
    ) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_ANCESTOR_ADMIN")
    assert await _code(
        identity.stub.LockAccount(
            identity_pb2.LockAccountRequest(account_id=hy_op.account_id, reason="x"),
            metadata=school_admin,
            timeout=5,
        )
    ) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_ANCESTOR_ADMIN")
    # Another county's admin does not even see it.
    by_ancestor = await identity.stub.LockAccount(
        identity_pb2.LockAccountRequest(account_id=th_op.account_id, reason="调岗"),
        metadata=gz_admin,
        timeout=5,
    )
    assert by_ancestor.account.status == identity_pb2.ACCOUNT_STATUS_LOCKED
    await identity.stub.UnlockAccount(
        identity_pb2.UnlockAccountRequest(account_id=th_op.account_id), metadata=gz_admin, timeout=5
    )
    reset = await identity.stub.ResetPassword(
        identity_pb2.ResetPasswordRequest(account_id=hy_op.account_id, reason="遗忘"),
        metadata=th_admin,
        timeout=5,
    )
    assert reset.account.password_change_required and reset.temporary_password
    revealed = await identity.stub.GetAccount(
        identity_pb2.GetAccountRequest(account_id=hy_op.account_id, reveal_personal_data=True),
        metadata=th_admin,
        timeout=5,
    )
    assert len(revealed.id_number) == 18 and len(revealed.phone) == 11
    retired = await identity.stub.RetireAccount(
        identity_pb2.RetireAccountRequest(account_id=hy_op.account_id, reason="离职"),
        metadata=th_admin,
        timeout=5,
    )
    assert retired.account.status == identity_pb2.ACCOUNT_STATUS_RETIRED
    assert await _code(identity.login("hy_operator", reset.temporary_password)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "INVALID_CREDENTIALS",
    )


async def test_personal_data_is_encrypted_at_rest(identity) -> None:
    async with identity.db.read() as s:
        row = (await s.execute(text("SELECT id_number_enc, phone_enc FROM account LIMIT 1"))).one()
    assert row[0].startswith("sm4g1:") and row[1].startswith("sm4g1:")
    async with identity.db.read() as s:
        from zizhu_common.idnumber import id_check_char

        number = "44010619800101002" + id_check_char("44010619800101002")
        found = await identity.services.deps.accounts.find_by_id_number(s, number)
    assert [a.username for a in found] == ["nat_operator"]


async def test_audit_chain_detects_an_edited_row(identity) -> None:
    await identity.login("th_operator")
    auditor = await identity.caller("nat_auditadmin")
    ok = await identity.stub.VerifyAuditChain(
        identity_pb2.VerifyAuditChainRequest(), metadata=auditor, timeout=5
    )
    assert ok.intact and ok.checked_count > 0
    async with identity.db.write() as s:
        payload = (
            await s.execute(text("SELECT payload FROM audit_log WHERE seq = 3"))
        ).scalar_one()
        edited = bytes(payload).replace(b"identity.", b"identitx.", 1)
        await s.execute(text("UPDATE audit_log SET payload = :p WHERE seq = 3"), {"p": edited})
    broken = await identity.stub.VerifyAuditChain(
        identity_pb2.VerifyAuditChainRequest(), metadata=auditor, timeout=5
    )
    assert not broken.intact and broken.first_broken_seq == 3


async def test_audit_column_edit_and_deleted_row_are_detected(identity) -> None:
    await identity.login("th_operator")
    auditor = await identity.caller("nat_auditadmin")
    async with identity.db.write() as s:
        await s.execute(text("UPDATE audit_log SET actor_account_id = 'someone' WHERE seq = 2"))
    broken = await identity.stub.VerifyAuditChain(
        identity_pb2.VerifyAuditChainRequest(), metadata=auditor, timeout=5
    )
    assert not broken.intact and broken.first_broken_seq == 2
    async with identity.db.write() as s:
        await s.execute(text("DELETE FROM audit_log WHERE seq = 1"))
    broken = await identity.stub.VerifyAuditChain(
        identity_pb2.VerifyAuditChainRequest(), metadata=auditor, timeout=5
    )
    assert not broken.intact and broken.first_broken_seq == 1


async def test_audit_query_only_for_audit_admins_in_subtree(identity) -> None:
    await identity.login("hy_operator")
    admin = await identity.caller("nat_admin")
    assert await _code(
        identity.stub.QueryAuditLog(identity_pb2.QueryAuditLogRequest(), metadata=admin, timeout=5)
    ) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED")
    th_auditadmin = await identity.caller("th_auditadmin")
    resp = await identity.stub.QueryAuditLog(
        identity_pb2.QueryAuditLogRequest(action_prefix="identity.Login"),
        metadata=th_auditadmin,
        timeout=5,
    )
    assert resp.entries and all(
        e.action.meta.org_path.startswith("/000000/440000/440100/440106/") for e in resp.entries
    )
    assert await _code(
        identity.stub.QueryAuditLog(
            identity_pb2.QueryAuditLogRequest(org_code="440111"), metadata=th_auditadmin, timeout=5
        )
    ) == (grpc.StatusCode.NOT_FOUND, "ORG_NOT_FOUND")


async def test_org_file_import_over_grpc_reports_rows_and_keeps_ownership(identity) -> None:
    md = GD_ADMIN.to_metadata()
    bad = "学校标识码,学校名称,主管部门代码,学段,办学性质\n3444011199,某民办中学,440111,普通高中,民办\n"
    bad += "2144XX1101,坏码小学,440111,义务教育,公办\n"
    resp = await identity.stub.ImportOrgFile(
        identity_pb2.ImportOrgFileRequest(
            file={"file_name": "schools.csv", "content": bad.encode()}, kind="schools"
        ),
        metadata=md,
        timeout=10,
    )
    resp = resp.result
    assert [(e.row, e.column) for e in resp.errors] == [(3, "学校标识码")]
    assert resp.created_count == 0
    async with identity.db.read() as s:
        assert await identity.services.deps.orgs.get(s, "3444011199") is None

    resp = await identity.stub.ImportOrgFile(
        identity_pb2.ImportOrgFileRequest(
            file={"file_name": "schools.csv", "content": bad.encode()},
            kind="schools",
            partial=True,
        ),
        metadata=md,
        timeout=10,
    )
    assert resp.result.created_count == 1 and len(resp.result.errors) == 1
    got = await identity.stub.GetOrg(
        identity_pb2.GetOrgRequest(org_code="3444011199"), metadata=md, timeout=10
    )
    assert got.org.ownership == identity_pb2.OWNERSHIP_PRIVATE
    assert got.org.org_path.endswith("/440111/3444011199/")

"""Domain rules without I/O: division classification, import plans, policies, the audit chain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from identity_service.domain.accounts import (
    Account,
    IdType,
    Role,
    ensure_can_manage_account,
    normalize_roles,
)
from identity_service.domain.audit import (
    GENESIS_HASH,
    ChainRow,
    chain_hash,
    purge_cutoff,
    verify_chain,
)
from identity_service.domain.credentials import LockoutPolicy, PasswordPolicy, totp_step
from identity_service.domain.orgs import (
    Grouping,
    Level,
    Org,
    OrgRow,
    classify_division,
    plan_import,
    school_category,
)
from zizhu_common.errors import InvalidArgument, NotFound, PermissionDenied
from zizhu_common.rpc import CallerContext

ROOT = Org("000000", "全国", Level.NATIONAL, None, "/000000/")


@pytest.mark.parametrize(
    ("code", "level", "parent"),
    [
        ("440000", Level.PROVINCE, None),
        ("440100", Level.CITY, "440000"),
        ("440106", Level.COUNTY, "440100"),
        ("110105", Level.COUNTY, "110000"),  # municipality district
        ("500230", Level.COUNTY, "500000"),  # 重庆 county (02)
        ("429004", Level.COUNTY, "420000"),  # 省直辖县级市 (90)
        ("652300", Level.CITY, "650000"),  # 自治州
    ],
)
def test_divisions_default_parents(code: str, level: Level, parent: str | None) -> None:
    assert classify_division(code) == (level, parent)


def test_grouping_and_bad_division_codes() -> None:
    with pytest.raises(Grouping):
        classify_division("429000")
    with pytest.raises(Grouping):
        classify_division("110100")
    for bad in ("990000", "44010", "440006"):
        with pytest.raises(ValueError):
            classify_division(bad)


def test_school_codes() -> None:
    assert school_category("4144010558") == "41"
    for bad in ("1944010601", "2199010601", "21440106"):
        with pytest.raises(ValueError):
            school_category(bad)


def test_plan_places_batch_rows_in_any_order_and_detects_cycles() -> None:
    rows = [
        OrgRow(1, "440106", "天河区"),
        OrgRow(2, "440100", "广州市"),
        OrgRow(3, "440000", "广东省"),
    ]
    plan = plan_import(rows, existing={"000000": ROOT}, root=ROOT, scope_path="/000000/")
    assert not plan.errors
    assert [c.org.org_path for c in plan.changes] == [
        "/000000/440000/",
        "/000000/440000/440100/",
        "/000000/440000/440100/440106/",
    ]
    cyc = [
        OrgRow(1, "440100", "广州", parent_code="440106"),
        OrgRow(2, "440106", "天河", parent_code="440100"),
    ]
    plan = plan_import(cyc, existing={"000000": ROOT}, root=ROOT, scope_path="/000000/")
    assert plan.errors and not plan.changes


def test_plan_refuses_rows_outside_scope() -> None:
    gd = Org("440000", "广东省", Level.PROVINCE, "000000", "/000000/440000/")
    rows = [OrgRow(1, "450000", "广西"), OrgRow(2, "440100", "广州市")]
    plan = plan_import(
        rows, existing={"000000": ROOT, "440000": gd}, root=ROOT, scope_path="/000000/440000/"
    )
    assert [(e.row, e.code) for e in plan.errors] == [(1, "OUT_OF_SCOPE")]
    assert plan.changes == []
    partial = plan_import(
        rows,
        existing={"000000": ROOT, "440000": gd},
        root=ROOT,
        scope_path="/000000/440000/",
        partial=True,
    )
    assert [c.org.code for c in partial.changes] == ["440100"]


def test_password_policy() -> None:
    policy = PasswordPolicy()
    policy.check_strength("Abcdef1!", username="zhang")
    for bad in ("Ab1!", "abcdefgh1", "zhang@Abc1"):
        with pytest.raises(InvalidArgument):
            policy.check_strength(bad, username="zhang")


def test_lockout_after_five() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    policy = LockoutPolicy()
    assert policy.after_failure(3, now) == (4, None)
    assert policy.after_failure(4, now) == (5, now + timedelta(minutes=30))


def test_totp_step_refuses_replay() -> None:
    secret = pyotp.random_base32()
    now = datetime(2025, 1, 1, 12, tzinfo=UTC)
    code = pyotp.TOTP(secret).at(now)
    step = totp_step(secret, code, now)
    assert step is not None
    assert totp_step(secret, code, now, last_step=step) is None
    assert totp_step(secret, "12345", now) is None


def _account(path: str, level: Level, account_id: str = "A2") -> Account:
    return Account(
        account_id,
        "u",
        "张三",
        IdType.RESIDENT_ID,
        "11010519491231002X",
        "13812345678",
        path.strip("/").split("/")[-1],
        path,
        level,
        (Role.OPERATOR,),
    )


def test_only_strict_ancestor_admins_manage_accounts() -> None:
    county = CallerContext(
        "A1", "440106", "/000000/440000/440100/440106/", "county", frozenset({"admin"})
    )
    school_acc = _account("/000000/440000/440100/440106/2144010601/", Level.SCHOOL)
    ensure_can_manage_account(county, school_acc)
    with pytest.raises(PermissionDenied):
        ensure_can_manage_account(county, _account("/000000/440000/440100/440106/", Level.COUNTY))
    with pytest.raises(NotFound):
        ensure_can_manage_account(county, _account("/000000/440000/440100/440111/", Level.COUNTY))
    national = CallerContext("A1", "000000", "/000000/", "national", frozenset({"admin"}))
    ensure_can_manage_account(national, _account("/000000/", Level.NATIONAL))


def test_admin_and_audit_admin_are_separate() -> None:
    with pytest.raises(InvalidArgument):
        normalize_roles(["admin", "audit_admin"])
    assert normalize_roles(["viewer", "operator"]) == (Role.OPERATOR, Role.VIEWER)


def test_audit_chain_detects_edits_gaps_and_truncation() -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    rows, prev = [], GENESIS_HASH
    for seq in range(1, 5):
        h = chain_hash(prev, f"p{seq}".encode(), seq, t0)
        rows.append(ChainRow(seq, f"p{seq}".encode(), t0, prev, h))
        prev = h
    assert verify_chain(
        rows, anchor_seq=0, anchor_hash=GENESIS_HASH, head_seq=4, head_hash=prev
    ).intact
    edited = [*rows[:2], ChainRow(3, b"px", t0, rows[2].prev_hash, rows[2].hash), rows[3]]
    assert verify_chain(edited, anchor_seq=0, anchor_hash=GENESIS_HASH).first_broken_seq == 3
    assert (
        verify_chain([rows[0], *rows[2:]], anchor_seq=0, anchor_hash=GENESIS_HASH).first_broken_seq
        == 2
    )
    assert (
        verify_chain(
            rows[:3], anchor_seq=0, anchor_hash=GENESIS_HASH, head_seq=4, head_hash=prev
        ).first_broken_seq
        == 4
    )


def test_retention_never_below_180_days() -> None:
    now = datetime(2025, 7, 1, tzinfo=UTC)
    assert purge_cutoff(now, 30) == now - timedelta(days=180)
    assert purge_cutoff(now, 365) == now - timedelta(days=365)

"""The five-level authorization table: which roles at which levels may do each action.

One row per action, read left to right: action, roles allowed, levels allowed, whether a restricted
session (temporary password to change, TOTP still to enrol) may do it. A caller needs one of the
roles AND its organisation at one of the levels. The scope rule (the caller's own subtree) is
applied on top of this table by every route, and again by the services from the caller context.

Not in this table because it needs the object's history: four-eyes (四眼原则) — an account never
audits a record it entered — is enforced by the services that own the records.

Roles: operator 业务操作人员, auditor 业务审核人员, admin 系统管理员 (accounts and organisations
below), viewer 只读监督, audit_admin 安全审计员 (reads the audit log; no business data).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Depends
from zizhu_common.errors import PermissionDenied

from gateway.deps import Caller, CurrentSession
from gateway.idempotency import idempotent

OPERATOR, AUDITOR, ADMIN, VIEWER, AUDIT_ADMIN = (
    "operator",
    "auditor",
    "admin",
    "viewer",
    "audit_admin",
)
ROLES = frozenset({OPERATOR, AUDITOR, ADMIN, VIEWER, AUDIT_ADMIN})
BUSINESS = frozenset({OPERATOR, AUDITOR, ADMIN, VIEWER})

NATIONAL, PROVINCE, CITY, COUNTY, SCHOOL = "national", "province", "city", "county", "school"
ALL = frozenset({NATIONAL, PROVINCE, CITY, COUNTY, SCHOOL})
AUTHORITIES = frozenset({NATIONAL, PROVINCE, CITY, COUNTY})
ROOTS = frozenset({NATIONAL, PROVINCE})  # the root of a central or a provincial deployment
SCHOOLS = frozenset({SCHOOL})
NATION = frozenset({NATIONAL})  # the national level only (its dictionaries)


@dataclass(frozen=True)
class Rule:
    """Who may do one action."""

    roles: frozenset[str]
    levels: frozenset[str]
    restricted_ok: bool = False
    summary: str = ""


def _r(roles: frozenset[str] | set[str], levels: frozenset[str], summary: str) -> Rule:
    return Rule(frozenset(roles), levels, False, summary)


_SELF = Rule(ROLES, ALL, True, "本人：查看自己、改密、TOTP、退出")

# fmt: off
POLICY: dict[str, Rule] = {
    # action                     roles                       levels       summary
    # --- identity: the caller itself ------------------------------------------------------
    "me.read":                   _SELF,
    "session.manage":            _SELF,
    # --- identity: organisations ------------------------------------------------------------
    "org.read":                  _r(ROLES,                    ALL,         "查看机构"),
    "org.list":                  _r(ROLES,                    ALL,         "浏览下辖机构"),
    "org.import":                _r({ADMIN},                  AUTHORITIES, "导入/更新下辖机构"),
    "org.manage":                _r({ADMIN},                  AUTHORITIES, "撤销下辖机构"),
    # --- identity: accounts (统一用户管理; admins of an ancestor org, checked by identity) --
    "account.read":              _r({ADMIN},                  AUTHORITIES, "查看下辖账号"),
    "account.list":              _r({ADMIN},                  AUTHORITIES, "浏览下辖账号"),
    "account.create":            _r({ADMIN},                  AUTHORITIES, "创建下辖账号"),
    "account.update":            _r({ADMIN},                  AUTHORITIES, "修改账号资料与角色"),
    "account.lock":              _r({ADMIN},                  AUTHORITIES, "锁定/解锁账号"),
    "account.reset":             _r({ADMIN},                  AUTHORITIES, "重置密码/TOTP"),
    "account.retire":            _r({ADMIN},                  AUTHORITIES, "注销账号"),
    "account.reveal":            _r({ADMIN},                  AUTHORITIES, "查看完整证件号与手机号（审计）"),
    # --- identity: audit log (安全审计员 only) ------------------------------------------------
    "audit.query":               _r({AUDIT_ADMIN},            ALL,         "查询本辖区审计日志"),
    "audit.verify":              _r({AUDIT_ADMIN},            ROOTS,       "校验审计日志哈希链"),
    # --- roster (issue 4) ---------------------------------------------------------------------
    "student.read":              _r(BUSINESS,                 ALL,         "查看学生、下载模板与导入报告"),
    "student.sync":              _r({OPERATOR},               ALL,         "同步/导入本辖区学籍数据"),
    "student.reveal":            _r({OPERATOR, AUDITOR},      SCHOOLS,     "查看完整证件号（审计）"),
    "special_group.issue":       _r({OPERATOR},               ROOTS,       "下发特殊群体名单"),
    "special_group.verify":      _r({OPERATOR},               SCHOOLS,     "核实/补充特殊群体"),
    "special_group.read":        _r(BUSINESS,                 ALL,         "查看特殊群体、核实进度"),
    "special_group.defaults":    _r({OPERATOR, ADMIN},        ROOTS,       "设置特殊群体默认认定档次"),
    "recognition.record":        _r({OPERATOR},               SCHOOLS,     "录入困难认定"),
    "recognition.read":          _r(BUSINESS,                 ALL,         "查看困难认定"),
    # --- aid (issue 5); the service checks owner type vs level, the audit chain, four-eyes ---
    "project.manage":            _r({OPERATOR, ADMIN},        ALL,         "设立/修改资助项目（国家、地方政府项目由主管部门，学校、社会项目由学校）"),
    "project.read":              _r(BUSINESS,                 ALL,         "查看项目与填报时间"),
    "period.manage":             _r({OPERATOR, ADMIN},        NATION,      "开启/关闭资助周期"),
    "period.read":               _r(BUSINESS,                 ALL,         "查看资助周期"),
    "window.manage":             _r({OPERATOR, ADMIN},        ALL,         "设置填报时间、为下级延期（项目设立单位及上级主管部门）"),
    "record.enter":              _r({OPERATOR},               SCHOOLS,     "录入/导入/修改/删除/上报资助名单"),
    "record.audit":              _r({AUDITOR},                ALL,         "学校审核与逐级复核（审核通过/退回）"),
    "record.revoke":             _r({AUDITOR, ADMIN},         ALL,         "撤销审核通过的记录（主管部门；学校、社会项目为学校）"),
    "record.read":               _r(BUSINESS,                 ALL,         "查看资助名单与审核历史"),
    "record.reveal":             _r({OPERATOR, AUDITOR},      SCHOOLS,     "查看完整证件号（审计）"),
    "record.export":             _r(BUSINESS,                 ALL,         "导出资助名单（审计）"),
    "aid.stats":                 _r(BUSINESS,                 ALL,         "资助统计"),
    # --- funding (issue 6) ----------------------------------------------------------------------
    "allocation.enter":          _r({OPERATOR},               ALL,         "录入/冲销本级资金下达与本级安排"),
    "allocation.read":           _r(BUSINESS,                 ALL,         "查看资金与执行情况"),
    "allocation.export":         _r(BUSINESS,                 ALL,         "导出资金下达与执行情况"),
    "cost_share.manage":         _r({OPERATOR, ADMIN},        AUTHORITIES, "设置下辖地区分担比例"),
    # --- reconcile (issue 7) --------------------------------------------------------------------
    "unfunded.read":             _r(BUSINESS,                 ALL,         "查看未资助名单与统计"),
    "unfunded.export":           _r(BUSINESS,                 ALL,         "导出未资助名单与统计"),
    "unfunded.reason.school":    _r({OPERATOR},               SCHOOLS,     "填报学校未资助原因"),
    "unfunded.reason.authority": _r({OPERATOR},               AUTHORITIES, "填报本级未资助原因"),
    "comparison.run":            _r({OPERATOR, ADMIN},        AUTHORITIES, "手动触发比对"),
    "comparison.read":           _r(BUSINESS,                 ALL,         "查看比对记录"),
    "reason_dictionary.read":    _r(BUSINESS,                 ALL,         "查看未资助原因字典"),
    "reason_dictionary.manage":  _r({OPERATOR, ADMIN},        NATION,      "维护未资助原因字典"),
    "legacy_report.read":        _r(BUSINESS,                 ALL,         "查看建档立卡历史上报"),
    "legacy_report.import":      _r({ADMIN},                  ROOTS,       "导入建档立卡历史上报"),
    "finding.read":              _r(BUSINESS,                 ALL,         "查看数据核查问题"),
    "finding.resolve":           _r({OPERATOR, AUDITOR},      ALL,         "确认/整改/排除核查问题"),
    "quota.manage":              _r({OPERATOR, ADMIN},        AUTHORITIES, "设置资助名额"),
    "quota.read":                _r(BUSINESS,                 ALL,         "查看资助名额"),
}
# fmt: on


def allowed(action: str, caller: Caller) -> bool:
    """True when the table lets the caller's roles and level do the action."""
    rule = POLICY[action]
    if caller.restricted and not rule.restricted_ok:
        return False
    return caller.level in rule.levels and not rule.roles.isdisjoint(caller.roles)


def require(action: str) -> Callable[..., Coroutine[Any, Any, Caller]]:
    """A dependency that answers 403 unless the policy table allows the action."""
    if action not in POLICY:
        raise KeyError(f"action {action!r} is not in the policy table")
    rule = POLICY[action]

    async def dependency(caller: CurrentSession) -> Caller:
        if caller.restricted and not rule.restricted_ok:
            raise PermissionDenied(
                "请先完成修改密码或绑定动态口令后再进行其他操作",
                code="SESSION_RESTRICTED",
                details={"action": action},
            )
        if not allowed(action, caller):
            raise PermissionDenied(
                "当前账号的角色或层级无权执行该操作",
                code="ACTION_NOT_ALLOWED",
                details={"action": action},
            )
        return caller

    dependency.__name__ = f"require_{action.replace('.', '_')}"
    return dependency


def guard(action: str, target: dict[str, Any]) -> dict[str, Any]:
    """Route keyword arguments: the policy check, Idempotency-Key handling (POST), and OpenAPI
    markers of the action and of the scope target.

    `target` tells how the route names the object whose organisation decides the scope:
    `{"kind": "org", "in": "path", "name": "org_code"}`, `{"kind": "account", ...}`,
    `{"kind": "self"}` (only the caller itself) or `{"kind": "global", "reason": ...}`.
    The scope test builds a sibling-subtree request from it for every route.
    """
    return {
        "dependencies": [Depends(require(action)), Depends(idempotent)],
        "openapi_extra": {"x-zizhu-action": action, "x-zizhu-target": target},
    }


PUBLIC: dict[str, Any] = {"openapi_extra": {"x-zizhu-target": {"kind": "public"}}}


def governs(caller: Caller, org_path: str, what: str) -> bool:
    """Defence in depth for objects that may belong to an org on the caller's own chain (a
    national project, a window or cost share set above the caller): kept when the org is an
    ancestor of the caller's or lies inside its subtree; anything else is dropped and logged."""
    if org_path and caller.org_path.startswith(org_path):
        return True
    return caller.keeps(org_path, what)

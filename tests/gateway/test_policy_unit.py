"""The policy table: every route declares an action of the table, and the table reads right."""

from __future__ import annotations

from fastapi.routing import APIRoute
from gateway.main import create_app
from gateway.policy import ALL, AUTHORITIES, POLICY, ROLES
from gateway.settings import Settings


def test_every_api_route_is_public_or_guarded_by_an_action_of_the_table() -> None:
    app = create_app(Settings(zizhu_env="test"))
    for route in app.routes:
        if not isinstance(route, APIRoute) or not route.path.startswith("/api/v1"):
            continue
        extra = route.openapi_extra or {}
        target = extra.get("x-zizhu-target")
        assert target, f"{route.path} declares no x-zizhu-target"
        if target["kind"] == "public":
            assert route.path in {"/api/v1/auth/login", "/api/v1/auth/refresh"}
            continue
        assert extra.get("x-zizhu-action") in POLICY, f"{route.path} has no policy action"


def test_table_uses_known_roles_and_levels_only() -> None:
    for action, rule in POLICY.items():
        assert rule.roles and rule.roles <= ROLES, action
        assert rule.levels and rule.levels <= ALL, action


def test_account_management_is_for_authority_admins_and_the_audit_log_for_audit_admins() -> None:
    for action in ("account.create", "account.lock", "account.reset", "account.retire"):
        assert POLICY[action].roles == {"admin"}
        assert POLICY[action].levels == AUTHORITIES
    assert POLICY["audit.query"].roles == {"audit_admin"}
    assert "audit_admin" not in POLICY["account.read"].roles

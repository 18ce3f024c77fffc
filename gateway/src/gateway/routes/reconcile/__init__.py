"""Reconcile (特殊群体学生未资助情况, 数据核查): comparison runs, the unfunded list and its reasons
at every level, statistics by region × 13 groups with .xlsx exports, authority statements, the
reason dictionary, the retired 建档立卡 history, findings and quotas. Thin: parse → policy →
gRPC (deadline + caller) → schema; the service applies the scope rule again.

Each area's routes are in a module of their own, all declared on the one `router` of `base`."""

# Areas are imported in the order their routes were declared: requests are matched in the order
# routes are registered. They share one router so that matching needs no extra router level.
# isort: off
from gateway.routes.reconcile import runs
from gateway.routes.reconcile import unfunded
from gateway.routes.reconcile import statements
from gateway.routes.reconcile import legacy
from gateway.routes.reconcile import findings

# isort: on
from gateway.routes.reconcile.base import router

__all__ = ["router", "runs", "unfunded", "statements", "legacy", "findings"]

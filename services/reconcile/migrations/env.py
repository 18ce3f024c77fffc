"""Alembic environment of the reconcile service."""

from reconcile_service.tables import metadata
from zizhu_common.migrations import run_env

run_env(metadata)

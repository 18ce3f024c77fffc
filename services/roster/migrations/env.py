"""Alembic environment of the roster service."""

from roster_service.tables import metadata
from zizhu_common.migrations import run_env

run_env(metadata)

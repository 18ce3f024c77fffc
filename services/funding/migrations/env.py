"""Alembic environment of the funding service."""

from funding_service.tables import metadata
from zizhu_common.migrations import run_env

run_env(metadata)

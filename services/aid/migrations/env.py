"""Alembic environment of the aid service."""

from aid_service.tables import metadata
from zizhu_common.migrations import run_env

run_env(metadata)

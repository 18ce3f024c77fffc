"""Alembic environment of the identity service."""

from identity_service.tables import metadata
from zizhu_common.migrations import run_env

run_env(metadata)

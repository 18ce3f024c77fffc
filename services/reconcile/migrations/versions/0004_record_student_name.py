"""reconcile: the name entered on each aid record (from aid.record.* events), for R05's check
against the 学籍 name

Revision ID: reconcile_0004
Revises: reconcile_0003
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "reconcile_0004"
down_revision = "reconcile_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "aid_record",
        sa.Column("student_name", sa.String(100), nullable=False, server_default=""),
    )


def downgrade() -> None:
    op.drop_column("aid_record", "student_name")

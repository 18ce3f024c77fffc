"""roster: drop membership (issued_row_id), which every membership an issue batch creates paid
for; the batch-rows listing finds a row's membership through the student index instead

Revision ID: roster_0004
Revises: roster_0003
Create Date: 2026-11-23
"""

from alembic import op


revision = "roster_0004"
down_revision = "roster_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("membership", schema=None) as batch_op:
        batch_op.drop_index("ix_membership_issued_row")


def downgrade() -> None:
    with op.batch_alter_table("membership", schema=None) as batch_op:
        batch_op.create_index("ix_membership_issued_row", ["issued_row_id"], unique=False)

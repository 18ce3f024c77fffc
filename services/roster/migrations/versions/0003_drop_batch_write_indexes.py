"""roster: drop two indexes that every row of an issue batch paid for and nothing read —
membership (batch_id, id), read only by the matching's old page-by-page read-back (the insert now
returns what the events need), and issued_row (batch_id, chunk_number), read only when a chunk is
sent again (rare; it now goes through the other batch_id indexes)

Revision ID: roster_0003
Revises: roster_0002
Create Date: 2026-11-23
"""

from alembic import op


revision = "roster_0003"
down_revision = "roster_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("membership", schema=None) as batch_op:
        batch_op.drop_index("ix_membership_batch")
    with op.batch_alter_table("issued_row", schema=None) as batch_op:
        batch_op.drop_index("ix_issued_row_batch_chunk")


def downgrade() -> None:
    with op.batch_alter_table("issued_row", schema=None) as batch_op:
        batch_op.create_index(
            "ix_issued_row_batch_chunk", ["batch_id", "chunk_number"], unique=False
        )
    with op.batch_alter_table("membership", schema=None) as batch_op:
        batch_op.create_index("ix_membership_batch", ["batch_id", "id"], unique=False)

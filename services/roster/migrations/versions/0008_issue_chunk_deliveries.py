"""roster: issue_chunk.deliveries counts how often a chunk was received (1 for the first
delivery). Chunks of one batch are now stored side by side: a resent chunk is told from a first
delivery by this counter, which the upsert that serialises two deliveries of the same chunk
returns; the batch row is no longer updated (and locked) for every chunk.

Revision ID: roster_0008
Revises: roster_0007
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op


revision = "roster_0008"
down_revision = "roster_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("issue_chunk", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("deliveries", sa.Integer(), nullable=False, server_default="1")
        )


def downgrade() -> None:
    with op.batch_alter_table("issue_chunk", schema=None) as batch_op:
        batch_op.drop_column("deliveries")

"""identity: outbox and processed-event tables

Revision ID: identity_0001
Revises:
Create Date: 2026-11-22
"""

from alembic import op

from zizhu_common.migrations import create_messaging_tables

revision = "identity_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables()


def downgrade() -> None:
    op.drop_table("processed_event")
    op.drop_table("outbox_event")

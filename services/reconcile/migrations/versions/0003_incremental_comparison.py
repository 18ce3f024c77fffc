"""reconcile: candidates (the compared population per period), the students changed since the
last run, and each period's baseline — for the incremental daily comparison

Revision ID: reconcile_0003
Revises: reconcile_0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "reconcile_0003"
down_revision = "reconcile_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "candidate",
        sa.Column("period_key", sa.BigInteger(), primary_key=True),
        sa.Column("student_key", sa.BigInteger(), primary_key=True),
        sa.Column("school_org_code", sa.String(32), nullable=False),
        sa.Column("school_org_path", sa.String(400), nullable=False),
        sa.Column("school_name", sa.String(200), nullable=False),
        sa.Column("stage", sa.SmallInteger(), nullable=False),
        sa.Column("grade", sa.String(40), nullable=False),
        sa.Column("class_name", sa.String(60), nullable=False),
        sa.Column("groups_mask", sa.Integer(), nullable=False),
        sa.Column("issued_mask", sa.Integer(), nullable=False),
        sa.Column("self_mask", sa.Integer(), nullable=False),
        sa.Column("funded", sa.SmallInteger(), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        # A derived cache rebuilt by any full run: no WAL for its bulk writes. A crash or a
        # failover empties it, and an empty baseline makes the next run a full one.
        op.execute("ALTER TABLE candidate SET UNLOGGED")
    op.create_table(
        "dirty_student",
        sa.Column("student_key", sa.BigInteger(), primary_key=True),
        sa.Column("mark", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "period_state",
        sa.Column("period_key", sa.BigInteger(), primary_key=True),
        sa.Column("as_of", sa.String(10), nullable=False),
        sa.Column("starts_on", sa.String(10), nullable=False),
        sa.Column("ends_on", sa.String(10), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("period_state")
    op.drop_table("dirty_student")
    op.drop_table("candidate")

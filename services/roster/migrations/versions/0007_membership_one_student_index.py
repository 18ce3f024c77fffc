"""roster: one index for a student's memberships and the one-active-membership rule — the unique
index (student, school year, group, 1 while active) replaces the partial unique index on active
memberships and the plain (student, school year) index. Ended memberships carry NULL in the last
key, and NULLs never collide, so only active ones are held unique; lookups by student and year
use its leading columns. Every membership written (a million-row list issues a million) now
maintains one index fewer.

Revision ID: roster_0007
Revises: roster_0006
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op


revision = "roster_0007"
down_revision = "roster_0006"
branch_labels = None
depends_on = None

ACTIVE_KEY = "(CASE WHEN status = 1 THEN 1 END)"


def upgrade() -> None:
    op.create_index(
        "ux_membership_student",
        "membership",
        ["student_id", "school_year", "special_group", sa.text(ACTIVE_KEY)],
        unique=True,
    )
    op.drop_index("ux_membership_active", table_name="membership")
    op.drop_index("ix_membership_student", table_name="membership")


def downgrade() -> None:
    op.create_index("ix_membership_student", "membership", ["student_id", "school_year"])
    op.create_index(
        "ux_membership_active",
        "membership",
        ["student_id", "special_group", "school_year"],
        unique=True,
        postgresql_where=sa.text("status = 1"),
        sqlite_where=sa.text("status = 1"),
    )
    op.drop_index("ux_membership_student", table_name="membership")

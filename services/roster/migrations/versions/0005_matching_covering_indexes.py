"""roster: on PostgreSQL, matching an issued row to the roster probes indexes only — the student
blind index carries the student id, name and current enrolment id, and a new enrolment index
carries the current enrolment's school, path, stage and status (a million-row list no longer
visits two wide heap rows per row). SQLite keeps its indexes as they were.

Revision ID: roster_0005
Revises: roster_0004
Create Date: 2026-11-23
"""

from alembic import op


revision = "roster_0005"
down_revision = "roster_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ux_student_id_number_bi", table_name="student")
    op.create_index(
        "ux_student_id_number_bi",
        "student",
        ["id_number_bi"],
        unique=True,
        postgresql_include=["student_id", "name", "current_enrollment_id"],
    )
    op.create_index(
        "ix_enrollment_match",
        "enrollment",
        ["enrollment_id"],
        postgresql_include=["school_org_code", "school_org_path", "stage", "status"],
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_enrollment_match", table_name="enrollment")
    op.drop_index("ux_student_id_number_bi", table_name="student")
    op.create_index("ux_student_id_number_bi", "student", ["id_number_bi"], unique=True)

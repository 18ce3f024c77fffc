"""roster: students, enrolments and their history, imports, special-group batches, issued rows,
memberships, recognitions, default levels, and the read copy of the org tree

Revision ID: roster_0002
Revises: roster_0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op


revision = "roster_0002"
down_revision = "roster_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enrollment",
        sa.Column("enrollment_id", sa.String(length=32), nullable=False),
        sa.Column("student_id", sa.String(length=32), nullable=False),
        sa.Column("school_org_code", sa.String(length=20), nullable=False),
        sa.Column(
            "school_org_path",
            sa.String(length=400, collation="C").with_variant(sa.String(length=400), "sqlite"),
            nullable=False,
        ),
        sa.Column("stage", sa.SmallInteger(), nullable=False),
        sa.Column("student_number", sa.String(length=40), server_default="", nullable=False),
        sa.Column("grade", sa.String(length=20), server_default="", nullable=False),
        sa.Column("class_name", sa.String(length=60), server_default="", nullable=False),
        sa.Column("major_name", sa.String(length=100), server_default="", nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("status_date", sa.String(length=10), server_default="", nullable=False),
        sa.Column("enrolled_on", sa.String(length=10), server_default="", nullable=False),
        sa.Column("left_on", sa.String(length=10), server_default="", nullable=False),
        sa.Column("boarder", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("is_current", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("enrollment_id"),
    )
    with op.batch_alter_table("enrollment", schema=None) as batch_op:
        batch_op.create_index("ix_enrollment_path", ["school_org_path"], unique=False)
        batch_op.create_index(
            "ix_enrollment_student_number",
            ["student_number"],
            unique=False,
            postgresql_where=sa.text("student_number NOT LIKE 'G%'"),
            sqlite_where=sa.text("student_number NOT LIKE 'G%'"),
        )
        batch_op.create_index(
            "ux_enrollment_student_school_stage",
            ["student_id", "school_org_code", "stage"],
            unique=True,
        )

    op.create_table(
        "file_import",
        sa.Column("import_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("org_code", sa.String(length=20), nullable=False),
        sa.Column(
            "org_path",
            sa.String(length=400, collation="C").with_variant(sa.String(length=400), "sqlite"),
            nullable=False,
        ),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.String(length=200), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("options", sa.Text(), server_default="{}", nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total_rows", sa.Integer(), server_default="0", nullable=False),
        sa.Column("valid_rows", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error_rows", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("unchanged_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("errors", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("import_id"),
    )
    op.create_table(
        "group_default_level",
        sa.Column("org_code", sa.String(length=20), nullable=False),
        sa.Column("special_group", sa.SmallInteger(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("org_code", "special_group"),
    )
    op.create_table(
        "issue_batch",
        sa.Column("batch_id", sa.String(length=32), nullable=False),
        sa.Column("issuing_org_code", sa.String(length=20), nullable=False),
        sa.Column(
            "issuing_org_path",
            sa.String(length=400, collation="C").with_variant(sa.String(length=400), "sqlite"),
            nullable=False,
        ),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("source_system", sa.String(length=100), server_default="", nullable=False),
        sa.Column("groups", sa.String(length=60), nullable=False),
        sa.Column("mode", sa.SmallInteger(), nullable=False),
        sa.Column("school_year", sa.String(length=9), nullable=False),
        sa.Column("as_of_date", sa.String(length=10), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("row_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("matched_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("not_found_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("not_enrolled_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("invalid_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("ambiguous_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("memberships_added", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("memberships_ended", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("previous_batch_id", sa.String(length=32), server_default="", nullable=False),
        sa.Column("added_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("removed_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("changed_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("error_message", sa.Text(), server_default="", nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.BigInteger(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("batch_id"),
    )
    with op.batch_alter_table("issue_batch", schema=None) as batch_op:
        batch_op.create_index(
            "ix_issue_batch_issuer", ["issuing_org_path", "school_year"], unique=False
        )

    op.create_table(
        "issue_chunk",
        sa.Column("batch_id", sa.String(length=32), nullable=False),
        sa.Column("chunk_number", sa.Integer(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("batch_id", "chunk_number"),
    )
    op.create_table(
        "issued_row",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("batch_id", sa.String(length=32), nullable=False),
        sa.Column("chunk_number", sa.Integer(), nullable=False),
        sa.Column("row_number", sa.BigInteger(), nullable=False),
        sa.Column("special_group", sa.SmallInteger(), nullable=False),
        sa.Column("action", sa.SmallInteger(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("id_type", sa.SmallInteger(), nullable=False),
        sa.Column("id_number_bi", sa.String(length=64), nullable=True),
        sa.Column("id_number_masked", sa.String(length=40), nullable=False),
        sa.Column("id_number_enc", sa.Text(), nullable=True),
        sa.Column("household_region_code", sa.String(length=12), server_default="", nullable=False),
        sa.Column("valid_from", sa.String(length=10), server_default="", nullable=False),
        sa.Column("valid_to", sa.String(length=10), server_default="", nullable=False),
        sa.Column("match_status", sa.SmallInteger(), nullable=False),
        sa.Column("match_note", sa.String(length=200), server_default="", nullable=False),
        sa.Column("student_id", sa.String(length=32), nullable=True),
        sa.Column("school_org_code", sa.String(length=20), nullable=True),
        sa.Column(
            "school_org_path",
            sa.String(length=400, collation="C").with_variant(sa.String(length=400), "sqlite"),
            nullable=True,
        ),
        sa.Column("stage", sa.SmallInteger(), nullable=True),
        sa.Column("membership_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("issued_row", schema=None) as batch_op:
        batch_op.create_index("ix_issued_row_batch_bi", ["batch_id", "id_number_bi"], unique=False)
        batch_op.create_index(
            "ix_issued_row_batch_chunk", ["batch_id", "chunk_number"], unique=False
        )
        batch_op.create_index(
            "ix_issued_row_batch_path", ["batch_id", "school_org_path"], unique=False
        )

    op.create_table(
        "membership",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("student_id", sa.String(length=32), nullable=False),
        sa.Column("school_year", sa.String(length=9), nullable=False),
        sa.Column("special_group", sa.SmallInteger(), nullable=False),
        sa.Column("source", sa.SmallInteger(), nullable=False),
        sa.Column("batch_id", sa.String(length=32), nullable=True),
        sa.Column("issued_row_id", sa.BigInteger(), nullable=True),
        sa.Column("issuer_org_code", sa.String(length=20), nullable=True),
        sa.Column("last_batch_id", sa.String(length=32), nullable=True),
        sa.Column("school_org_code", sa.String(length=20), nullable=False),
        sa.Column(
            "school_org_path",
            sa.String(length=400, collation="C").with_variant(sa.String(length=400), "sqlite"),
            nullable=False,
        ),
        sa.Column("stage", sa.SmallInteger(), nullable=False),
        sa.Column("valid_from", sa.String(length=10), server_default="", nullable=False),
        sa.Column("valid_to", sa.String(length=10), server_default="", nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("verification_status", sa.SmallInteger(), nullable=False),
        sa.Column("verification_note", sa.Text(), server_default="", nullable=False),
        sa.Column("verified_by", sa.String(length=64), server_default="", nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evidence_note", sa.Text(), server_default="", nullable=False),
        sa.Column("end_reason", sa.Text(), server_default="", nullable=False),
        sa.Column("ended_on", sa.String(length=10), server_default="", nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("membership", schema=None) as batch_op:
        batch_op.create_index("ix_membership_batch", ["batch_id", "id"], unique=False)
        batch_op.create_index("ix_membership_issued_row", ["issued_row_id"], unique=False)
        batch_op.create_index(
            "ix_membership_path", ["school_org_path", "school_year"], unique=False
        )
        batch_op.create_index("ix_membership_student", ["student_id", "school_year"], unique=False)
        batch_op.create_index(
            "ux_membership_active",
            ["student_id", "special_group", "school_year"],
            unique=True,
            postgresql_where=sa.text("status = 1"),
            sqlite_where=sa.text("status = 1"),
        )

    op.create_table(
        "org_ref",
        sa.Column("org_code", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("parent_code", sa.String(length=20), nullable=True),
        sa.Column(
            "org_path",
            sa.String(length=400, collation="C").with_variant(sa.String(length=400), "sqlite"),
            nullable=False,
        ),
        sa.Column("stages", sa.String(length=40), server_default="", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("org_code"),
    )
    with op.batch_alter_table("org_ref", schema=None) as batch_op:
        batch_op.create_index("ix_org_ref_path", ["org_path"], unique=False)

    op.create_table(
        "recognition",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("student_id", sa.String(length=32), nullable=False),
        sa.Column("school_org_code", sa.String(length=20), nullable=False),
        sa.Column(
            "school_org_path",
            sa.String(length=400, collation="C").with_variant(sa.String(length=400), "sqlite"),
            nullable=False,
        ),
        sa.Column("school_year", sa.String(length=9), nullable=False),
        sa.Column("term", sa.SmallInteger(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("basis_groups", sa.String(length=60), server_default="", nullable=False),
        sa.Column("basis_note", sa.Text(), server_default="", nullable=False),
        sa.Column("recognized_on", sa.String(length=10), nullable=False),
        sa.Column("change_reason", sa.Text(), server_default="", nullable=False),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("import_id", sa.String(length=32), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("recognition", schema=None) as batch_op:
        batch_op.create_index(
            "ix_recognition_path", ["school_org_path", "school_year", "is_current"], unique=False
        )
        batch_op.create_index("ix_recognition_student", ["student_id", "school_year"], unique=False)

    op.create_table(
        "student",
        sa.Column("student_id", sa.String(length=32), nullable=False),
        sa.Column("id_type", sa.SmallInteger(), nullable=False),
        sa.Column("id_number_enc", sa.Text(), nullable=True),
        sa.Column("id_number_bi", sa.String(length=64), nullable=True),
        sa.Column("id_number_masked", sa.String(length=40), server_default="", nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("gender", sa.SmallInteger(), nullable=False),
        sa.Column("birth_date", sa.String(length=10), nullable=False),
        sa.Column("ethnicity", sa.String(length=20), server_default="", nullable=False),
        sa.Column("household_type", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("household_region_code", sa.String(length=12), server_default="", nullable=False),
        sa.Column("phone_enc", sa.Text(), nullable=True),
        sa.Column("phone_masked", sa.String(length=20), server_default="", nullable=False),
        sa.Column("current_enrollment_id", sa.String(length=32), nullable=True),
        sa.Column("source_system", sa.String(length=40), server_default="", nullable=False),
        sa.Column("created_batch_id", sa.String(length=100), server_default="", nullable=False),
        sa.Column("last_batch_id", sa.String(length=100), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("student_id"),
    )
    with op.batch_alter_table("student", schema=None) as batch_op:
        batch_op.create_index("ix_student_name", ["name"], unique=False)
        batch_op.create_index("ux_student_id_number_bi", ["id_number_bi"], unique=True)
        batch_op.create_index("ix_student_updated", ["updated_at"], unique=False)

    op.create_table(
        "student_change",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("student_id", sa.String(length=32), nullable=False),
        sa.Column("enrollment_id", sa.String(length=32), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("changed_fields", sa.Text(), server_default="[]", nullable=False),
        sa.Column("before", sa.Text(), server_default="{}", nullable=False),
        sa.Column("after", sa.Text(), server_default="{}", nullable=False),
        sa.Column("school_org_code", sa.String(length=20), server_default="", nullable=False),
        sa.Column("source_system", sa.String(length=40), server_default="", nullable=False),
        sa.Column("batch_id", sa.String(length=100), server_default="", nullable=False),
        sa.Column("actor_account_id", sa.String(length=64), server_default="", nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("student_change", schema=None) as batch_op:
        batch_op.create_index("ix_student_change_student", ["student_id", "id"], unique=False)

    op.create_table(
        "sync_batch",
        sa.Column("batch_id", sa.String(length=100), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("batch_id"),
    )


def downgrade() -> None:
    op.drop_table("sync_batch")
    with op.batch_alter_table("student_change", schema=None) as batch_op:
        batch_op.drop_index("ix_student_change_student")

    op.drop_table("student_change")
    with op.batch_alter_table("student", schema=None) as batch_op:
        batch_op.drop_index("ix_student_updated")
        batch_op.drop_index("ux_student_id_number_bi")
        batch_op.drop_index("ix_student_name")

    op.drop_table("student")
    with op.batch_alter_table("recognition", schema=None) as batch_op:
        batch_op.drop_index("ix_recognition_student")
        batch_op.drop_index("ix_recognition_path")

    op.drop_table("recognition")
    with op.batch_alter_table("org_ref", schema=None) as batch_op:
        batch_op.drop_index("ix_org_ref_path")

    op.drop_table("org_ref")
    with op.batch_alter_table("membership", schema=None) as batch_op:
        batch_op.drop_index(
            "ux_membership_active",
            postgresql_where=sa.text("status = 1"),
            sqlite_where=sa.text("status = 1"),
        )
        batch_op.drop_index("ix_membership_student")
        batch_op.drop_index("ix_membership_path")
        batch_op.drop_index("ix_membership_issued_row")
        batch_op.drop_index("ix_membership_batch")

    op.drop_table("membership")
    with op.batch_alter_table("issued_row", schema=None) as batch_op:
        batch_op.drop_index("ix_issued_row_batch_path")
        batch_op.drop_index("ix_issued_row_batch_chunk")
        batch_op.drop_index("ix_issued_row_batch_bi")

    op.drop_table("issued_row")
    op.drop_table("issue_chunk")
    with op.batch_alter_table("issue_batch", schema=None) as batch_op:
        batch_op.drop_index("ix_issue_batch_issuer")

    op.drop_table("issue_batch")
    op.drop_table("group_default_level")
    op.drop_table("file_import")
    with op.batch_alter_table("enrollment", schema=None) as batch_op:
        batch_op.drop_index("ux_enrollment_student_school_stage")
        batch_op.drop_index("ix_enrollment_student_number")
        batch_op.drop_index("ix_enrollment_path")

    op.drop_table("enrollment")

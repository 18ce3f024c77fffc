"""aid: org read copy, projects, periods, windows, records with their history, imports

Revision ID: aid_0002
Revises: aid_0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "aid_0002"
down_revision = "aid_0001"
branch_labels = None
depends_on = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _pattern(column: str) -> dict:
    return {"postgresql_ops": {column: "varchar_pattern_ops"}}


def upgrade() -> None:
    op.create_table(
        "aid_org",
        sa.Column("org_code", sa.String(10), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("parent_code", sa.String(10), nullable=True),
        sa.Column("org_path", sa.String(255), nullable=False),
        sa.Column("stages", sa.String(40), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _ts("updated_at"),
    )
    op.create_index("ix_aid_org_parent", "aid_org", ["parent_code"])
    op.create_index("ix_aid_org_path", "aid_org", ["org_path"], **_pattern("org_path"))

    op.create_table(
        "aid_project",
        sa.Column("project_code", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("owner_type", sa.SmallInteger(), nullable=False),
        sa.Column("owner_org_code", sa.String(10), nullable=False),
        sa.Column("owner_org_path", sa.String(255), nullable=False),
        sa.Column("owner_level", sa.SmallInteger(), nullable=False),
        sa.Column("stage", sa.SmallInteger(), nullable=False),
        sa.Column("category", sa.SmallInteger(), nullable=False),
        sa.Column("tiers", sa.Text(), nullable=False),
        sa.Column("allow_custom_amount", sa.Boolean(), nullable=False),
        sa.Column("min_amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("max_amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("requires_recognition", sa.Boolean(), nullable=False),
        sa.Column("min_hardship_level", sa.SmallInteger(), nullable=True),
        sa.Column("exclusions", sa.Text(), nullable=False),
        sa.Column("audit_levels", sa.String(20), nullable=False),
        sa.Column("annual", sa.Boolean(), nullable=False),
        sa.Column("start_school_year", sa.String(9), nullable=False),
        sa.Column("end_school_year", sa.String(9), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("policy_basis", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("quota_per_school", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index(
        "ix_aid_project_owner_path",
        "aid_project",
        ["owner_org_path"],
        **_pattern("owner_org_path"),
    )

    op.create_table(
        "aid_period",
        sa.Column("school_year", sa.String(9), primary_key=True),
        sa.Column("term", sa.SmallInteger(), primary_key=True),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("deadline_on", sa.Date(), nullable=False),
        _ts("opened_at"),
        _ts("closed_at", nullable=True),
        sa.Column("opened_by", sa.String(64), nullable=False),
    )

    op.create_table(
        "aid_window",
        sa.Column("window_id", sa.String(32), primary_key=True),
        sa.Column("project_code", sa.String(40), nullable=False),
        sa.Column("school_year", sa.String(9), nullable=False),
        sa.Column("term", sa.SmallInteger(), nullable=False),
        sa.Column("phase", sa.SmallInteger(), nullable=False),
        sa.Column("org_code", sa.String(10), nullable=False),
        sa.Column("org_path", sa.String(255), nullable=False),
        _ts("starts_at"),
        _ts("ends_at"),
        sa.Column("extension", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("set_by", sa.String(64), nullable=False),
        _ts("set_at"),
        sa.UniqueConstraint(
            "project_code",
            "school_year",
            "term",
            "phase",
            "org_code",
            "extension",
            name="uq_aid_window_slot",
        ),
    )

    op.create_table(
        "aid_window_change",
        sa.Column("id", BIGINT_PK, primary_key=True, autoincrement=True),
        sa.Column("window_id", sa.String(32), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("project_code", sa.String(40), nullable=False),
        sa.Column("school_year", sa.String(9), nullable=False),
        sa.Column("term", sa.SmallInteger(), nullable=False),
        sa.Column("phase", sa.SmallInteger(), nullable=False),
        sa.Column("org_code", sa.String(10), nullable=False),
        _ts("starts_at"),
        _ts("ends_at"),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("actor_account_id", sa.String(64), nullable=False),
        sa.Column("actor_org_code", sa.String(10), nullable=False),
        _ts("at"),
    )
    op.create_index("ix_aid_window_change_window", "aid_window_change", ["window_id"])

    op.create_table(
        "aid_record",
        sa.Column("record_id", sa.String(32), primary_key=True),
        sa.Column("project_code", sa.String(40), nullable=False),
        sa.Column("school_year", sa.String(9), nullable=False),
        sa.Column("term", sa.SmallInteger(), nullable=False),
        sa.Column("student_id", sa.String(64), nullable=False),
        sa.Column("id_number_blind_index", sa.String(64), nullable=False),
        sa.Column("id_number_masked", sa.String(32), nullable=False),
        sa.Column("id_type", sa.SmallInteger(), nullable=False),
        sa.Column("student_name", sa.String(100), nullable=False),
        sa.Column("student_number", sa.String(40), nullable=False),
        sa.Column("school_org_code", sa.String(10), nullable=False),
        sa.Column("school_org_path", sa.String(255), nullable=False),
        sa.Column("stage", sa.SmallInteger(), nullable=False),
        sa.Column("category", sa.SmallInteger(), nullable=False),
        sa.Column("owner_type", sa.SmallInteger(), nullable=False),
        sa.Column("grade", sa.String(40), nullable=False),
        sa.Column("class_name", sa.String(60), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("tier_code", sa.String(20), nullable=False),
        sa.Column("hardship_level", sa.SmallInteger(), nullable=True),
        sa.Column("bank_name", sa.String(100), nullable=False),
        sa.Column("bank_card_enc", sa.Text(), nullable=False),
        sa.Column("bank_card_masked", sa.String(32), nullable=False),
        sa.Column("remark", sa.String(500), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("pending_level", sa.SmallInteger(), nullable=True),
        sa.Column("pending_org_code", sa.String(10), nullable=False),
        sa.Column("audit_chain", sa.String(120), nullable=False),
        sa.Column("last_opinion", sa.String(500), nullable=False),
        sa.Column("entered_by", sa.String(64), nullable=False),
        _ts("entered_at"),
        sa.Column("entry_action", sa.SmallInteger(), nullable=False),
        sa.Column("entered_amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("import_id", sa.String(32), nullable=False),
        sa.Column("submitted_by", sa.String(64), nullable=False),
        _ts("submitted_at", nullable=True),
        _ts("approved_at", nullable=True),
        sa.Column("approved_level", sa.SmallInteger(), nullable=True),
        _ts("updated_at"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("dedup_key", sa.String(160), nullable=True, unique=True),
    )
    op.create_index(
        "ix_aid_record_period_path",
        "aid_record",
        ["school_year", "term", "school_org_path"],
        **_pattern("school_org_path"),
    )
    op.create_index(
        "ix_aid_record_school",
        "aid_record",
        ["school_org_code", "project_code", "school_year", "term"],
    )
    op.create_index("ix_aid_record_pending", "aid_record", ["pending_org_code", "status"])
    op.create_index("ix_aid_record_student", "aid_record", ["student_id", "school_year"])
    op.create_index("ix_aid_record_blind_index", "aid_record", ["id_number_blind_index"])

    op.create_table(
        "aid_record_transition",
        sa.Column("id", BIGINT_PK, primary_key=True, autoincrement=True),
        sa.Column("record_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("action", sa.SmallInteger(), nullable=False),
        sa.Column("from_status", sa.SmallInteger(), nullable=True),
        sa.Column("to_status", sa.SmallInteger(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("org_code", sa.String(10), nullable=False),
        sa.Column("actor_account_id", sa.String(64), nullable=False),
        sa.Column("opinion", sa.String(500), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        _ts("at"),
        sa.UniqueConstraint("record_id", "seq", name="uq_aid_record_transition_seq"),
    )

    op.create_table(
        "aid_import",
        sa.Column("import_id", sa.String(32), primary_key=True),
        sa.Column("project_code", sa.String(40), nullable=False),
        sa.Column("school_year", sa.String(9), nullable=False),
        sa.Column("term", sa.SmallInteger(), nullable=False),
        sa.Column("school_org_code", sa.String(10), nullable=False),
        sa.Column("school_org_path", sa.String(255), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("total_rows", sa.Integer(), nullable=False),
        sa.Column("valid_rows", sa.Integer(), nullable=False),
        sa.Column("error_rows", sa.Integer(), nullable=False),
        sa.Column("created_count", sa.Integer(), nullable=False),
        sa.Column("errors", sa.LargeBinary(), nullable=True),
        sa.Column("submit", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("committed_at", nullable=True),
    )
    op.create_index("ix_aid_import_sha", "aid_import", ["file_sha256"])


def downgrade() -> None:
    op.drop_table("aid_import")
    op.drop_table("aid_record_transition")
    op.drop_table("aid_record")
    op.drop_table("aid_window_change")
    op.drop_table("aid_window")
    op.drop_table("aid_period")
    op.drop_table("aid_project")
    op.drop_table("aid_org")

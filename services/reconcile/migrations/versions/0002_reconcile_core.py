"""reconcile: read copy (orgs, students, memberships, projects, periods, approved records,
funded set, recognitions, allocations), runs, unfunded entries and reasons, statistics snapshot,
reason dictionary, retired 建档立卡 history, findings, quotas

Revision ID: reconcile_0002
Revises: reconcile_0001
Create Date: 2026-11-22
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "reconcile_0002"
down_revision = "reconcile_0001"
branch_labels = None
depends_on = None

# Auto-increment surrogate keys: BIGINT on PostgreSQL, INTEGER (rowid alias) on SQLite.
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The reason dictionary as first shipped (DOMAIN.md §4); the national level edits it as data.
REASONS = [
    ("01", "已享受其他助困类资助", "已获地方、社会或学校助困类资助", False, 1),
    ("02", "学生或监护人自愿放弃", "本人或监护人书面放弃", False, 2),
    ("03", "经认定不困难", "家庭经济困难认定为不困难", False, 3),
    ("04", "已毕业/离校", "本资助周期内已毕业或离校", False, 4),
    ("05", "休学/退学/转学/死亡", "学籍异动", False, 5),
    ("06", "在籍不在校", "有学籍但未在校就读", False, 6),
    ("07", "在外地就读，由就读地资助", "异地就读，由就读地资助", False, 7),
    ("08", "无对应助困项目或本期未发放", "本学段无对应助困项目或本期未发放", False, 8),
    ("09", "名额或资金不足，纳入下期", "名额或资金不足，下一资助周期纳入", False, 9),
    ("10", "身份信息不一致/下发数据有误", "下发名单身份信息与学籍不一致", False, 10),
    ("11", "享受非现金资助（如减免）", "享受减免等非现金资助", False, 11),
    ("99", "其他", "其他原因（须填写说明）", True, 99),
]
TABLES = [
    "unfunded_entry",
    "student",
    "recognition",
    "reason_dictionary",
    "reason_code",
    "quota",
    "project_tier",
    "project_exclusion",
    "project",
    "population_stat",
    "period",
    "org",
    "membership",
    "legacy_report",
    "funded_student",
    "finding_action",
    "finding",
    "entry_authority_reason",
    "enrollment",
    "comparison_run",
    "authority_statement",
    "allocation",
    "aid_record",
]


def upgrade() -> None:
    op.create_table(
        "aid_record",
        sa.Column("record_id", sa.String(64), primary_key=True),
        sa.Column("student_key", sa.BigInteger(), nullable=False),
        sa.Column("period_key", sa.BigInteger(), nullable=False),
        sa.Column("project_code", sa.String(64), nullable=False),
        sa.Column("category", sa.SmallInteger(), nullable=False),
        sa.Column("school_org_code", sa.String(32), nullable=False),
        sa.Column("school_org_path", sa.String(400), nullable=False),
        sa.Column("stage", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("id_number_blind_index", sa.String(64), nullable=False, server_default=""),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_aid_record_period_student", "aid_record", ["period_key", "student_key"])
    op.create_table(
        "allocation",
        sa.Column("allocation_id", sa.String(64), primary_key=True),
        sa.Column("project_code", sa.String(64), nullable=False),
        sa.Column("fiscal_year", sa.String(4), nullable=False),
        sa.Column("to_org_code", sa.String(32), nullable=False),
        sa.Column("to_org_path", sa.String(400), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("reversed", sa.Boolean(), nullable=False, server_default="0"),
    )
    op.create_index("ix_allocation_project_year", "allocation", ["project_code", "fiscal_year"])
    op.create_table(
        "authority_statement",
        sa.Column("org_code", sa.String(32), primary_key=True),
        sa.Column("period_key", sa.BigInteger(), primary_key=True),
        sa.Column("special_group", sa.SmallInteger(), primary_key=True),
        sa.Column("org_path", sa.String(400), nullable=False),
        sa.Column("org_level", sa.SmallInteger(), nullable=False),
        sa.Column("org_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("reason_code", sa.String(4), nullable=False),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("reported_by", sa.String(64), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "comparison_run",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("trigger", sa.SmallInteger(), nullable=False),
        sa.Column("periods", sa.Text(), nullable=False),
        sa.Column("org_code", sa.String(32), nullable=False, server_default=""),
        sa.Column("org_path", sa.String(400), nullable=False),
        sa.Column("include_verification", sa.Boolean(), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("triggered_by", sa.String(64), nullable=False),
        sa.Column("schedule_slot", sa.String(40), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("students_checked", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("students_funded", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("unfunded_opened", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("unfunded_closed", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("unfunded_reopened", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("unfunded_open", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("findings_raised", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("findings_cleared", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("period_counts", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("error_message", sa.Text(), nullable=False, server_default=""),
    )
    op.create_index("ix_comparison_run_slot", "comparison_run", ["schedule_slot"])
    op.create_index("ix_comparison_run_started", "comparison_run", ["started_at"])
    op.create_table(
        "enrollment",
        sa.Column("student_key", sa.BigInteger(), primary_key=True),
        sa.Column("school_org_code", sa.String(32), primary_key=True),
        sa.Column("stage", sa.SmallInteger(), primary_key=True),
        sa.Column("school_org_path", sa.String(400), nullable=False),
        sa.Column("school_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("grade", sa.String(40), nullable=False, server_default=""),
        sa.Column("class_name", sa.String(60), nullable=False, server_default=""),
        sa.Column("status", sa.SmallInteger(), nullable=False, server_default="1"),
        sa.Column("enrolled_on", sa.String(10), nullable=False, server_default=""),
        sa.Column("left_on", sa.String(10), nullable=False, server_default=""),
        sa.Column("boarder", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("event_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "entry_authority_reason",
        sa.Column("entry_key", sa.BigInteger(), primary_key=True),
        sa.Column("org_level", sa.SmallInteger(), primary_key=True),
        sa.Column("org_code", sa.String(32), nullable=False),
        sa.Column("org_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("reason_code", sa.String(4), nullable=False),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("reported_by", sa.String(64), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "finding",
        sa.Column("finding_key", BIGINT_PK, primary_key=True, autoincrement=True),
        sa.Column("fingerprint", sa.String(400), nullable=False, unique=True),
        sa.Column("rule_code", sa.String(4), nullable=False),
        sa.Column("severity", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("period_key", sa.BigInteger(), nullable=False),
        sa.Column("org_code", sa.String(32), nullable=False),
        sa.Column("org_path", sa.String(400), nullable=False),
        sa.Column("student_key", sa.BigInteger(), nullable=True),
        sa.Column("student_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("project_code", sa.String(64), nullable=False, server_default=""),
        sa.Column("record_ids", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("facts", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolution_note", sa.Text(), nullable=False, server_default=""),
        sa.Column("resolved_by", sa.String(64), nullable=False, server_default=""),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_finding_scope",
        "finding",
        ["period_key", "org_path"],
        postgresql_ops={"org_path": "varchar_pattern_ops"},
    )
    op.create_table(
        "finding_action",
        sa.Column("action_key", BIGINT_PK, primary_key=True, autoincrement=True),
        sa.Column("finding_key", sa.BigInteger(), nullable=False),
        sa.Column("from_status", sa.SmallInteger(), nullable=False),
        sa.Column("to_status", sa.SmallInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("actor_org_code", sa.String(32), nullable=False, server_default=""),
        sa.Column("run_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_finding_action_finding", "finding_action", ["finding_key"])
    op.create_table(
        "funded_student",
        sa.Column("period_key", sa.BigInteger(), primary_key=True),
        sa.Column("student_key", sa.BigInteger(), primary_key=True),
        sa.Column("records", sa.Integer(), nullable=False),
    )
    op.create_table(
        "legacy_report",
        sa.Column("legacy_key", BIGINT_PK, primary_key=True, autoincrement=True),
        sa.Column("legacy_id", sa.String(80), nullable=False, unique=True),
        sa.Column("period_key", sa.BigInteger(), nullable=False),
        sa.Column("project_code", sa.String(64), nullable=False),
        sa.Column("project_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("id_type", sa.SmallInteger(), nullable=False),
        sa.Column("id_number_blind_index", sa.String(64), nullable=False),
        sa.Column("id_number_masked", sa.String(32), nullable=False),
        sa.Column("student_name", sa.String(100), nullable=False),
        sa.Column("school_org_code", sa.String(32), nullable=False),
        sa.Column("school_org_path", sa.String(400), nullable=False),
        sa.Column("school_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("legacy_reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("reason_code", sa.String(4), nullable=False),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("reported_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_legacy_report_blind_index", "legacy_report", ["id_number_blind_index"])
    op.create_index(
        "ix_legacy_report_scope",
        "legacy_report",
        ["period_key", "school_org_path"],
        postgresql_ops={"school_org_path": "varchar_pattern_ops"},
    )
    op.create_table(
        "membership",
        sa.Column("membership_id", sa.String(64), primary_key=True),
        sa.Column("student_key", sa.BigInteger(), nullable=False),
        sa.Column("school_org_code", sa.String(32), nullable=True),
        sa.Column("school_org_path", sa.String(400), nullable=True),
        sa.Column("stage", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("special_group", sa.SmallInteger(), nullable=False),
        sa.Column("source", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("batch_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("valid_from", sa.String(10), nullable=False, server_default=""),
        sa.Column("valid_to", sa.String(10), nullable=False, server_default=""),
        sa.Column("verification", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("ended_on", sa.String(10), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_membership_student", "membership", ["student_key"])
    op.create_table(
        "org",
        sa.Column("org_code", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("level", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("parent_code", sa.String(32), nullable=False, server_default=""),
        sa.Column("org_path", sa.String(400), nullable=False),
        sa.Column("stages", sa.String(40), nullable=False, server_default=""),
        sa.Column("status", sa.SmallInteger(), nullable=False, server_default="1"),
        sa.Column("event_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_org_path", "org", ["org_path"], postgresql_ops={"org_path": "varchar_pattern_ops"}
    )
    op.create_table(
        "period",
        sa.Column("period_key", BIGINT_PK, primary_key=True, autoincrement=True),
        sa.Column("school_year", sa.String(9), nullable=False),
        sa.Column("term", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("starts_on", sa.String(10), nullable=False, server_default=""),
        sa.Column("ends_on", sa.String(10), nullable=False, server_default=""),
        sa.Column("deadline_on", sa.String(10), nullable=False, server_default=""),
        sa.Column("event_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("school_year", "term", name="uq_period_year_term"),
    )
    op.create_table(
        "population_stat",
        sa.Column("period_key", sa.BigInteger(), primary_key=True),
        sa.Column("school_org_code", sa.String(32), primary_key=True),
        sa.Column("stage", sa.SmallInteger(), primary_key=True),
        sa.Column("special_group", sa.SmallInteger(), primary_key=True),
        sa.Column("source_mask", sa.SmallInteger(), primary_key=True),
        sa.Column("school_org_path", sa.String(400), nullable=False),
        sa.Column("students", sa.BigInteger(), nullable=False),
        sa.Column("funded", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "project",
        sa.Column("project_code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("category", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("stage", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("owner_org_path", sa.String(400), nullable=False, server_default=""),
        sa.Column("allow_custom_amount", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("min_amount_fen", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("max_amount_fen", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("requires_recognition", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("min_hardship_level", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("annual", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("status", sa.SmallInteger(), nullable=False, server_default="1"),
        sa.Column("event_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "project_exclusion",
        sa.Column("project_code", sa.String(64), primary_key=True),
        sa.Column("other_project_code", sa.String(64), primary_key=True),
        sa.Column("scope", sa.SmallInteger(), nullable=False),
    )
    op.create_table(
        "project_tier",
        sa.Column("project_code", sa.String(64), primary_key=True),
        sa.Column("amount_fen", sa.BigInteger(), primary_key=True),
    )
    op.create_table(
        "quota",
        sa.Column("project_code", sa.String(64), primary_key=True),
        sa.Column("school_year", sa.String(9), primary_key=True),
        sa.Column("org_code", sa.String(32), primary_key=True),
        sa.Column("org_path", sa.String(400), nullable=False),
        sa.Column("org_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("places", sa.BigInteger(), nullable=False),
        sa.Column("set_by", sa.String(64), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "reason_code",
        sa.Column("code", sa.String(4), primary_key=True),
        sa.Column("label", sa.String(60), nullable=False),
        sa.Column("description", sa.String(200), nullable=False, server_default=""),
        sa.Column("requires_note", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default="1"),
        sa.Column("sort_order", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated_by", sa.String(64), nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "reason_dictionary",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "recognition",
        sa.Column("student_key", sa.BigInteger(), primary_key=True),
        sa.Column("school_year", sa.String(9), primary_key=True),
        sa.Column("term", sa.SmallInteger(), primary_key=True),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("event_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "student",
        sa.Column("student_key", BIGINT_PK, primary_key=True, autoincrement=True),
        sa.Column("student_id", sa.String(64), nullable=False, unique=True),
        sa.Column("id_number_blind_index", sa.String(64), nullable=False, server_default=""),
        sa.Column("name", sa.String(100), nullable=False, server_default=""),
        sa.Column("id_number_masked", sa.String(32), nullable=False, server_default=""),
        sa.Column("gender", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("birth_date", sa.String(10), nullable=False, server_default=""),
        sa.Column("registered", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("event_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_student_blind_index", "student", ["id_number_blind_index"])
    op.create_table(
        "unfunded_entry",
        sa.Column("entry_key", BIGINT_PK, primary_key=True, autoincrement=True),
        sa.Column("period_key", sa.BigInteger(), nullable=False),
        sa.Column("student_key", sa.BigInteger(), nullable=False),
        sa.Column("school_org_code", sa.String(32), nullable=False),
        sa.Column("school_org_path", sa.String(400), nullable=False),
        sa.Column("school_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("stage", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.Column("grade", sa.String(40), nullable=False, server_default=""),
        sa.Column("class_name", sa.String(60), nullable=False, server_default=""),
        sa.Column("groups_mask", sa.Integer(), nullable=False),
        sa.Column("issued_mask", sa.Integer(), nullable=False),
        sa.Column("self_mask", sa.Integer(), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("first_found_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reopened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_id", sa.String(64), nullable=False),
        sa.Column("reason_code", sa.String(4), nullable=True),
        sa.Column("reason_note", sa.Text(), nullable=False, server_default=""),
        sa.Column("reason_by", sa.String(64), nullable=False, server_default=""),
        sa.Column("reason_org_code", sa.String(32), nullable=False, server_default=""),
        sa.Column("reason_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason_carried_over", sa.Boolean(), nullable=False, server_default="0"),
        sa.UniqueConstraint("period_key", "student_key", name="uq_unfunded_entry_period_student"),
    )
    op.create_index(
        "ix_unfunded_entry_scope",
        "unfunded_entry",
        ["period_key", "status", "school_org_path"],
        postgresql_ops={"school_org_path": "varchar_pattern_ops"},
    )
    reason_code = sa.table(
        "reason_code",
        sa.column("code", sa.String),
        sa.column("label", sa.String),
        sa.column("description", sa.String),
        sa.column("requires_note", sa.Boolean),
        sa.column("enabled", sa.Boolean),
        sa.column("sort_order", sa.Integer),
        sa.column("updated_by", sa.String),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        reason_code,
        [
            {
                "code": code,
                "label": label,
                "description": description,
                "requires_note": requires_note,
                "enabled": True,
                "sort_order": sort_order,
                "updated_by": "system:migration",
                "updated_at": now,
            }
            for code, label, description, requires_note, sort_order in REASONS
        ],
    )
    op.bulk_insert(
        sa.table(
            "reason_dictionary", sa.column("id", sa.Integer), sa.column("version", sa.BigInteger)
        ),
        [{"id": 1, "version": 1}],
    )


def downgrade() -> None:
    for name in TABLES:
        op.drop_table(name)

"""SQLAlchemy tables of the aid service (its own database)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from zizhu_common.consumer import processed_event_table
from zizhu_common.db import BigIntPK
from zizhu_common.outbox import outbox_table

metadata = MetaData()

outbox_event = outbox_table(metadata)
processed_event = processed_event_table(metadata)


def _ts(name: str, nullable: bool = False) -> Column:
    return Column(name, DateTime(timezone=True), nullable=nullable)


_PATTERN = {"postgresql_ops": {"org_path": "varchar_pattern_ops"}}

# Read copy of identity's organisation tree (fed by identity.org.* events).
aid_org = Table(
    "aid_org",
    metadata,
    Column("org_code", String(10), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("level", SmallInteger, nullable=False),
    Column("parent_code", String(10), nullable=True),
    Column("org_path", String(255), nullable=False),
    Column("stages", String(40), nullable=False, default=""),
    Column("active", Boolean, nullable=False, default=True),
    _ts("updated_at"),
    Index("ix_aid_org_parent", "parent_code"),
    Index("ix_aid_org_path", "org_path", **_PATTERN),
)

aid_project = Table(
    "aid_project",
    metadata,
    Column("project_code", String(40), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("owner_type", SmallInteger, nullable=False),
    Column("owner_org_code", String(10), nullable=False),
    Column("owner_org_path", String(255), nullable=False),
    Column("owner_level", SmallInteger, nullable=False),
    Column("stage", SmallInteger, nullable=False),
    Column("category", SmallInteger, nullable=False),
    Column("tiers", Text, nullable=False, default="[]"),
    Column("allow_custom_amount", Boolean, nullable=False, default=False),
    Column("min_amount_fen", BigInteger, nullable=False, default=0),
    Column("max_amount_fen", BigInteger, nullable=False, default=0),
    Column("requires_recognition", Boolean, nullable=False, default=False),
    Column("min_hardship_level", SmallInteger, nullable=True),
    Column("exclusions", Text, nullable=False, default="[]"),
    Column("audit_levels", String(20), nullable=False, default=""),
    Column("annual", Boolean, nullable=False, default=False),
    Column("start_school_year", String(9), nullable=False, default=""),
    Column("end_school_year", String(9), nullable=False, default=""),
    Column("status", SmallInteger, nullable=False),
    Column("policy_basis", Text, nullable=False, default=""),
    Column("description", Text, nullable=False, default=""),
    Column("quota_per_school", Integer, nullable=False, default=0),
    Column("created_by", String(64), nullable=False, default=""),
    _ts("created_at"),
    _ts("updated_at"),
    Column("version", Integer, nullable=False, default=1),
    Index(
        "ix_aid_project_owner_path",
        "owner_org_path",
        postgresql_ops={"owner_org_path": "varchar_pattern_ops"},
    ),
)

aid_period = Table(
    "aid_period",
    metadata,
    Column("school_year", String(9), primary_key=True),
    Column("term", SmallInteger, primary_key=True),
    Column("status", SmallInteger, nullable=False),
    Column("starts_on", Date, nullable=False),
    Column("ends_on", Date, nullable=False),
    Column("deadline_on", Date, nullable=False),
    _ts("opened_at"),
    _ts("closed_at", nullable=True),
    Column("opened_by", String(64), nullable=False, default=""),
)

aid_window = Table(
    "aid_window",
    metadata,
    Column("window_id", String(32), primary_key=True),
    Column("project_code", String(40), nullable=False),
    Column("school_year", String(9), nullable=False),
    Column("term", SmallInteger, nullable=False),
    Column("phase", SmallInteger, nullable=False),
    Column("org_code", String(10), nullable=False),
    Column("org_path", String(255), nullable=False),
    _ts("starts_at"),
    _ts("ends_at"),
    Column("extension", Boolean, nullable=False, default=False),
    Column("reason", String(500), nullable=False, default=""),
    Column("set_by", String(64), nullable=False),
    _ts("set_at"),
    UniqueConstraint(
        "project_code",
        "school_year",
        "term",
        "phase",
        "org_code",
        "extension",
        name="uq_aid_window_slot",
    ),  # fmt: skip
)

# Every change of a window (set, close, extension), kept for the record (留痕).
aid_window_change = Table(
    "aid_window_change",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("window_id", String(32), nullable=False),
    Column("action", String(16), nullable=False),
    Column("project_code", String(40), nullable=False),
    Column("school_year", String(9), nullable=False),
    Column("term", SmallInteger, nullable=False),
    Column("phase", SmallInteger, nullable=False),
    Column("org_code", String(10), nullable=False),
    _ts("starts_at"),
    _ts("ends_at"),
    Column("reason", String(500), nullable=False, default=""),
    Column("actor_account_id", String(64), nullable=False),
    Column("actor_org_code", String(10), nullable=False, default=""),
    _ts("at"),
    Index("ix_aid_window_change_window", "window_id"),
)

aid_record = Table(
    "aid_record",
    metadata,
    Column("record_id", String(32), primary_key=True),
    Column("project_code", String(40), nullable=False),
    Column("school_year", String(9), nullable=False),
    Column("term", SmallInteger, nullable=False),
    Column("student_id", String(64), nullable=False),
    Column("id_number_blind_index", String(64), nullable=False, default=""),
    Column("id_number_masked", String(32), nullable=False, default=""),
    Column("id_type", SmallInteger, nullable=False),
    Column("student_name", String(100), nullable=False),
    Column("student_number", String(40), nullable=False, default=""),
    Column("school_org_code", String(10), nullable=False),
    Column("school_org_path", String(255), nullable=False),
    Column("stage", SmallInteger, nullable=False),
    Column("category", SmallInteger, nullable=False),
    Column("owner_type", SmallInteger, nullable=False),
    Column("grade", String(40), nullable=False, default=""),
    Column("class_name", String(60), nullable=False, default=""),
    Column("amount_fen", BigInteger, nullable=False),
    Column("tier_code", String(20), nullable=False, default=""),
    Column("hardship_level", SmallInteger, nullable=True),
    Column("bank_name", String(100), nullable=False, default=""),
    Column("bank_card_enc", Text, nullable=False, default=""),
    Column("bank_card_masked", String(32), nullable=False, default=""),
    Column("remark", String(500), nullable=False, default=""),
    Column("status", SmallInteger, nullable=False),
    Column("pending_level", SmallInteger, nullable=True),
    Column("pending_org_code", String(10), nullable=False, default=""),
    Column("audit_chain", String(120), nullable=False, default=""),
    Column("last_opinion", String(500), nullable=False, default=""),
    Column("entered_by", String(64), nullable=False),
    _ts("entered_at"),
    Column("entry_action", SmallInteger, nullable=False),
    Column("entered_amount_fen", BigInteger, nullable=False),
    Column("import_id", String(32), nullable=False, default=""),
    Column("submitted_by", String(64), nullable=False, default=""),
    _ts("submitted_at", nullable=True),
    _ts("approved_at", nullable=True),
    Column("approved_level", SmallInteger, nullable=True),
    _ts("updated_at"),
    Column("version", Integer, nullable=False, default=1),
    # student × project × period (or school year) while the record is live; NULL once deleted
    # or revoked (NULLs never collide), so the slot frees up.
    Column("dedup_key", String(160), nullable=True, unique=True),
    Index(
        "ix_aid_record_period_path",
        "school_year",
        "term",
        "school_org_path",
        postgresql_ops={"school_org_path": "varchar_pattern_ops"},
    ),  # fmt: skip
    Index("ix_aid_record_school", "school_org_code", "project_code", "school_year", "term"),
    Index("ix_aid_record_pending", "pending_org_code", "status"),
    Index("ix_aid_record_student", "student_id", "school_year"),
    Index("ix_aid_record_blind_index", "id_number_blind_index"),
)

aid_record_transition = Table(
    "aid_record_transition",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("record_id", String(32), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("action", SmallInteger, nullable=False),
    Column("from_status", SmallInteger, nullable=True),
    Column("to_status", SmallInteger, nullable=False),
    Column("level", SmallInteger, nullable=False),
    Column("org_code", String(10), nullable=False),
    Column("actor_account_id", String(64), nullable=False),
    Column("opinion", String(500), nullable=False, default=""),
    Column("amount_fen", BigInteger, nullable=False),
    _ts("at"),
    UniqueConstraint("record_id", "seq", name="uq_aid_record_transition_seq"),
)

aid_import = Table(
    "aid_import",
    metadata,
    Column("import_id", String(32), primary_key=True),
    Column("project_code", String(40), nullable=False),
    Column("school_year", String(9), nullable=False),
    Column("term", SmallInteger, nullable=False),
    Column("school_org_code", String(10), nullable=False),
    Column("school_org_path", String(255), nullable=False),
    Column("file_name", String(255), nullable=False, default=""),
    Column("file_sha256", String(64), nullable=False),
    # The uploaded file while staged (a dry run awaiting commit); cleared once used.
    Column("content", LargeBinary, nullable=True),
    Column("status", SmallInteger, nullable=False),
    Column("total_rows", Integer, nullable=False, default=0),
    Column("valid_rows", Integer, nullable=False, default=0),
    Column("error_rows", Integer, nullable=False, default=0),
    Column("created_count", Integer, nullable=False, default=0),
    # Every row error, zlib-compressed JSON (the downloadable report is built from it).
    Column("errors", LargeBinary, nullable=True),
    Column("submit", Boolean, nullable=False, default=False),
    Column("created_by", String(64), nullable=False),
    _ts("created_at"),
    _ts("expires_at"),
    _ts("committed_at", nullable=True),
    Index("ix_aid_import_sha", "file_sha256"),
)

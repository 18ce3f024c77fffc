"""SQLAlchemy tables of the identity service (its own database)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from zizhu_common.consumer import processed_event_table
from zizhu_common.db import BigIntPK
from zizhu_common.outbox import outbox_table

metadata = MetaData()

outbox_event = outbox_table(metadata)
processed_event = processed_event_table(metadata)


def _ts(name: str, nullable: bool = False) -> Column:
    return Column(name, DateTime(timezone=True), nullable=nullable)


org = Table(
    "org",
    metadata,
    Column("org_code", String(10), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("level", String(16), nullable=False),
    Column("parent_code", String(10), ForeignKey("org.org_code"), nullable=True),
    Column("org_path", String(255), nullable=False, unique=True),
    Column("depth", Integer, nullable=False),
    Column("region_code", String(6), nullable=False, default=""),
    Column("school_category", String(2), nullable=False, default=""),
    Column("stages", String(200), nullable=False, default=""),
    Column("ownership", String(16), nullable=False, default=""),
    Column("status", String(16), nullable=False),
    Column("retire_reason", String(500), nullable=False, default=""),
    _ts("created_at"),
    _ts("updated_at"),
    _ts("retired_at", nullable=True),
    Column("version", Integer, nullable=False, default=1),
    Index("ix_org_parent_code", "parent_code"),
    Index("ix_org_path_prefix", "org_path", postgresql_ops={"org_path": "varchar_pattern_ops"}),
)

account = Table(
    "account",
    metadata,
    Column("account_id", String(40), primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("real_name", String(100), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("id_type", String(40), nullable=False),
    Column("id_number_enc", Text, nullable=False),
    Column("id_number_bidx", String(64), nullable=False),
    Column("phone_enc", Text, nullable=False),
    Column("phone_bidx", String(64), nullable=False),
    Column("org_code", String(10), ForeignKey("org.org_code"), nullable=False),
    Column("org_path", String(255), nullable=False),
    Column("roles", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("lock_reason", String(500), nullable=False, default=""),
    _ts("locked_until", nullable=True),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("password_hash", String(200), nullable=False),
    _ts("password_changed_at", nullable=True),
    _ts("password_expires_at", nullable=True),
    Column("password_change_required", Boolean, nullable=False, default=True),
    Column("totp_secret_enc", Text, nullable=True),
    Column("totp_pending_enc", Text, nullable=True),
    Column("totp_last_step", BigInteger, nullable=False, default=0),
    _ts("last_login_at", nullable=True),
    _ts("sessions_revoked_before", nullable=True),
    Column("created_by", String(40), nullable=False, default=""),
    _ts("created_at"),
    _ts("updated_at"),
    _ts("retired_at", nullable=True),
    Column("version", Integer, nullable=False, default=1),
    Index("ix_account_id_number_bidx", "id_number_bidx"),
    Index("ix_account_phone_bidx", "phone_bidx"),
    Index("ix_account_org_code", "org_code"),
    Index("ix_account_org_path", "org_path", postgresql_ops={"org_path": "varchar_pattern_ops"}),
)

password_history = Table(
    "password_history",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("account_id", String(40), ForeignKey("account.account_id"), nullable=False),
    Column("password_hash", String(200), nullable=False),
    _ts("created_at"),
    Index("ix_password_history_account", "account_id", "id"),
)

auth_session = Table(
    "auth_session",
    metadata,
    Column("session_id", String(40), primary_key=True),
    Column("account_id", String(40), ForeignKey("account.account_id"), nullable=False),
    _ts("created_at"),
    _ts("expires_at"),
    _ts("revoked_at", nullable=True),
    Column("revoke_reason", String(100), nullable=False, default=""),
    Column("mfa_verified", Boolean, nullable=False, default=False),
    Column("client_ip", String(64), nullable=False, default=""),
    Column("user_agent", String(300), nullable=False, default=""),
    _ts("last_used_at", nullable=True),
    Index("ix_auth_session_account", "account_id"),
)

refresh_token = Table(
    "refresh_token",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("session_id", String(40), ForeignKey("auth_session.session_id"), nullable=False),
    _ts("created_at"),
    _ts("expires_at"),
    _ts("used_at", nullable=True),
    Index("ix_refresh_token_session", "session_id"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("event_id", String(64), nullable=False, unique=True),
    _ts("recorded_at"),
    _ts("occurred_at"),
    Column("actor_account_id", String(64), nullable=False, default=""),
    Column("actor_org_code", String(10), nullable=False, default=""),
    Column("org_path", String(255), nullable=False, default=""),
    Column("action", String(200), nullable=False),
    Column("object_type", String(64), nullable=False, default=""),
    Column("object_id", String(128), nullable=False, default=""),
    Column("outcome", Integer, nullable=False, default=0),
    Column("sensitive_read", Boolean, nullable=False, default=False),
    Column("correlation_id", String(64), nullable=False, default=""),
    Column("payload", LargeBinary, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_log_org_path", "org_path", postgresql_ops={"org_path": "varchar_pattern_ops"}),
    Index("ix_audit_log_actor", "actor_account_id"),
    Index("ix_audit_log_recorded_at", "recorded_at"),
)

# One row (id = 1): the chain head and the purge checkpoint; appends lock it to stay gap-free.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("last_hash", String(64), nullable=False),
    Column("purged_through_seq", BigInteger, nullable=False),
    Column("purged_through_hash", String(64), nullable=False),
    _ts("purged_at", nullable=True),
)

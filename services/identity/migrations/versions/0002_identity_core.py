"""identity: org tree, accounts, credentials, sessions, audit log with its SM3 chain head

Revision ID: identity_0002
Revises: identity_0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "identity_0002"
down_revision = "identity_0001"
branch_labels = None
depends_on = None

GENESIS_HASH = "0" * 64


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "org",
        sa.Column("org_code", sa.String(10), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("parent_code", sa.String(10), sa.ForeignKey("org.org_code"), nullable=True),
        sa.Column("org_path", sa.String(255), nullable=False, unique=True),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("region_code", sa.String(6), nullable=False, server_default=""),
        sa.Column("school_category", sa.String(2), nullable=False, server_default=""),
        sa.Column("stages", sa.String(200), nullable=False, server_default=""),
        sa.Column("ownership", sa.String(16), nullable=False, server_default=""),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("retire_reason", sa.String(500), nullable=False, server_default=""),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("retired_at", nullable=True),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
    )
    op.create_index("ix_org_parent_code", "org", ["parent_code"])
    op.create_index(
        "ix_org_path_prefix",
        "org",
        ["org_path"],
        postgresql_ops={"org_path": "varchar_pattern_ops"},
    )

    op.create_table(
        "account",
        sa.Column("account_id", sa.String(40), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("real_name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("id_type", sa.String(40), nullable=False),
        sa.Column("id_number_enc", sa.Text(), nullable=False),
        sa.Column("id_number_bidx", sa.String(64), nullable=False),
        sa.Column("phone_enc", sa.Text(), nullable=False),
        sa.Column("phone_bidx", sa.String(64), nullable=False),
        sa.Column("org_code", sa.String(10), sa.ForeignKey("org.org_code"), nullable=False),
        sa.Column("org_path", sa.String(255), nullable=False),
        sa.Column("roles", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("lock_reason", sa.String(500), nullable=False, server_default=""),
        _ts("locked_until", nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("password_hash", sa.String(200), nullable=False),
        _ts("password_changed_at", nullable=True),
        _ts("password_expires_at", nullable=True),
        sa.Column("password_change_required", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("totp_secret_enc", sa.Text(), nullable=True),
        sa.Column("totp_pending_enc", sa.Text(), nullable=True),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=False, server_default="0"),
        _ts("last_login_at", nullable=True),
        _ts("sessions_revoked_before", nullable=True),
        sa.Column("created_by", sa.String(40), nullable=False, server_default=""),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("retired_at", nullable=True),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
    )
    op.create_index("ix_account_id_number_bidx", "account", ["id_number_bidx"])
    op.create_index("ix_account_phone_bidx", "account", ["phone_bidx"])
    op.create_index("ix_account_org_code", "account", ["org_code"])
    op.create_index(
        "ix_account_org_path",
        "account",
        ["org_path"],
        postgresql_ops={"org_path": "varchar_pattern_ops"},
    )

    op.create_table(
        "password_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("account_id", sa.String(40), sa.ForeignKey("account.account_id"), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        _ts("created_at"),
    )
    op.create_index("ix_password_history_account", "password_history", ["account_id", "id"])

    op.create_table(
        "auth_session",
        sa.Column("session_id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(40), sa.ForeignKey("account.account_id"), nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("revoked_at", nullable=True),
        sa.Column("revoke_reason", sa.String(100), nullable=False, server_default=""),
        sa.Column("mfa_verified", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("client_ip", sa.String(64), nullable=False, server_default=""),
        sa.Column("user_agent", sa.String(300), nullable=False, server_default=""),
        _ts("last_used_at", nullable=True),
    )
    op.create_index("ix_auth_session_account", "auth_session", ["account_id"])

    op.create_table(
        "refresh_token",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column(
            "session_id", sa.String(40), sa.ForeignKey("auth_session.session_id"), nullable=False
        ),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("used_at", nullable=True),
    )
    op.create_index("ix_refresh_token_session", "refresh_token", ["session_id"])

    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        _ts("recorded_at"),
        _ts("occurred_at"),
        sa.Column("actor_account_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("actor_org_code", sa.String(10), nullable=False, server_default=""),
        sa.Column("org_path", sa.String(255), nullable=False, server_default=""),
        sa.Column("action", sa.String(200), nullable=False),
        sa.Column("object_type", sa.String(64), nullable=False, server_default=""),
        sa.Column("object_id", sa.String(128), nullable=False, server_default=""),
        sa.Column("outcome", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("sensitive_read", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("correlation_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index(
        "ix_audit_log_org_path",
        "audit_log",
        ["org_path"],
        postgresql_ops={"org_path": "varchar_pattern_ops"},
    )
    op.create_index("ix_audit_log_actor", "audit_log", ["actor_account_id"])
    op.create_index("ix_audit_log_recorded_at", "audit_log", ["recorded_at"])

    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("purged_through_seq", sa.BigInteger(), nullable=False),
        sa.Column("purged_through_hash", sa.String(64), nullable=False),
        _ts("purged_at", nullable=True),
    )
    op.bulk_insert(
        head,
        [
            {
                "id": 1,
                "last_seq": 0,
                "last_hash": GENESIS_HASH,
                "purged_through_seq": 0,
                "purged_through_hash": GENESIS_HASH,
            }
        ],
    )


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_table("audit_log")
    op.drop_table("refresh_token")
    op.drop_table("auth_session")
    op.drop_table("password_history")
    op.drop_table("account")
    op.drop_table("org")

"""roster: on PostgreSQL, outbox payloads too big to keep inline (an issue batch's per-school
MembershipsIssued events, up to a few hundred kB each) are compressed with lz4 instead of pglz,
which took seconds of a million-row batch's commit; kept as they are where the server was built
without lz4

Revision ID: roster_0006
Revises: roster_0005
Create Date: 2026-11-23
"""

from alembic import op
from sqlalchemy import text


revision = "roster_0006"
down_revision = "roster_0005"
branch_labels = None
depends_on = None

_HAS_LZ4 = (
    "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and bind.execute(text(_HAS_LZ4)).scalar():
        op.execute("ALTER TABLE outbox_event ALTER COLUMN payload SET COMPRESSION lz4")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE outbox_event ALTER COLUMN payload SET COMPRESSION default")

"""identity: the org table notifies `identity_org_changed` on every change (PostgreSQL), so that
each identity process can keep GetOrg answers in memory until the tree changes

Revision ID: identity_0003
Revises: identity_0002
Create Date: 2026-11-23
"""

from alembic import op

revision = "identity_0003"
down_revision = "identity_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite: the reader watches the file's data_version instead
    # NOTIFY is delivered at commit, once per transaction for the same payload; a statement
    # trigger costs one call per statement, however many rows it changes.
    op.execute(
        """
        CREATE OR REPLACE FUNCTION identity_org_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('identity_org_changed', '');
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER org_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON org "
        "FOR EACH STATEMENT EXECUTE FUNCTION identity_org_changed()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS org_changed ON org")
    op.execute("DROP FUNCTION IF EXISTS identity_org_changed()")

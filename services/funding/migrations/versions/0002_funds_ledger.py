"""funding: allocation ledger, balances, rollups, execution read copy, cost shares, org/project
copies

Revision ID: funding_0002
Revises: funding_0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "funding_0002"
down_revision = "funding_0001"
branch_labels = None
depends_on = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def path(name: str) -> sa.Column:
    return sa.Column(
        name,
        sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql"),
        nullable=False,
    )


def money(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")


def upgrade() -> None:
    op.create_table(
        "org_node",
        sa.Column("org_code", sa.String(20), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("parent_code", sa.String(20), nullable=True),
        path("org_path"),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_org_node_parent", "org_node", ["parent_code"])
    op.create_index("ix_org_node_path", "org_node", ["org_path"])

    op.create_table(
        "project_ref",
        sa.Column("project_code", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("owner_org_code", sa.String(20), nullable=False),
        path("owner_org_path"),
        sa.Column("owner_level", sa.String(10), nullable=True),
        sa.Column("category", sa.SmallInteger(), nullable=False),
        sa.Column("stage", sa.SmallInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )

    op.create_table(
        "allocation",
        sa.Column("id", BIGINT_PK, primary_key=True, autoincrement=True),
        sa.Column("allocation_id", sa.String(40), nullable=False, unique=True),
        sa.Column("document_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("project_code", sa.String(40), nullable=False),
        sa.Column("fiscal_year", sa.String(4), nullable=False),
        sa.Column("from_org_code", sa.String(20), nullable=False),
        path("from_org_path"),
        sa.Column("to_org_code", sa.String(20), nullable=False),
        path("to_org_path"),
        sa.Column("source", sa.SmallInteger(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("document_number", sa.String(100), nullable=False),
        sa.Column("document_date", sa.String(10), nullable=False),
        sa.Column("allocated_on", sa.String(10), nullable=False),
        sa.Column("note", sa.String(500), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("reversal_reason", sa.String(500), nullable=False),
        sa.Column("reversed_by", sa.String(64), nullable=False),
        sa.Column("reversed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("entered_by", sa.String(64), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_allocation_year_project", "allocation", ["fiscal_year", "project_code"])
    op.create_index("ix_allocation_from_path", "allocation", ["from_org_path"])
    op.create_index("ix_allocation_to_path", "allocation", ["to_org_path"])
    op.create_index("ix_allocation_document", "allocation", ["document_number"])

    op.create_table(
        "fund_balance",
        sa.Column("org_code", sa.String(20), primary_key=True),
        sa.Column("project_code", sa.String(40), primary_key=True),
        sa.Column("fiscal_year", sa.String(4), primary_key=True),
        sa.Column("source", sa.SmallInteger(), primary_key=True),
        path("org_path"),
        money("received_fen"),
        money("contributed_fen"),
        money("allocated_down_fen"),
        money("subtree_contributed_fen"),
    )

    op.create_table(
        "fund_rollup",
        sa.Column("org_code", sa.String(20), primary_key=True),
        sa.Column("project_code", sa.String(40), primary_key=True),
        sa.Column("fiscal_year", sa.String(4), primary_key=True),
        path("org_path"),
        money("received_fen"),
        money("contributed_fen"),
        money("allocated_down_fen"),
        money("subtree_contributed_fen"),
        money("school_funds_fen"),
        money("executed_fen"),
        sa.Column("executed_count", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("overspent", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("overspent_since", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_fund_rollup_overspent", "fund_rollup", ["overspent", "org_path"])
    op.create_index("ix_fund_rollup_year", "fund_rollup", ["fiscal_year", "org_code"])

    op.create_table(
        "execution_record",
        sa.Column("record_id", sa.String(64), primary_key=True),
        sa.Column("school_org_code", sa.String(20), nullable=False),
        sa.Column("project_code", sa.String(40), nullable=False),
        sa.Column("school_year", sa.String(9), nullable=False),
        sa.Column("term", sa.SmallInteger(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )

    op.create_table(
        "execution_period",
        sa.Column("org_code", sa.String(20), primary_key=True),
        sa.Column("project_code", sa.String(40), primary_key=True),
        sa.Column("school_year", sa.String(9), primary_key=True),
        sa.Column("term", sa.SmallInteger(), primary_key=True),
        sa.Column("fiscal_year", sa.String(4), nullable=False),
        money("executed_fen"),
        sa.Column("record_count", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.create_index(
        "ix_execution_period_year", "execution_period", ["org_code", "fiscal_year"]
    )

    op.create_table(
        "cost_share",
        sa.Column("project_code", sa.String(40), primary_key=True),
        sa.Column("fiscal_year", sa.String(4), primary_key=True),
        sa.Column("region_org_code", sa.String(20), primary_key=True),
        path("region_org_path"),
        sa.Column("shares", sa.Text(), nullable=False),
        sa.Column("document_number", sa.String(100), nullable=False),
        sa.Column("set_by", sa.String(64), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "cost_share",
        "execution_period",
        "execution_record",
        "fund_rollup",
        "fund_balance",
        "allocation",
        "project_ref",
        "org_node",
    ):
        op.drop_table(table)

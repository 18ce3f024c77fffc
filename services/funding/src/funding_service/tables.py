"""SQLAlchemy tables of the funding service (its own database).

- `allocation`: the ledger (下达 and 本级安排 lines); never updated except to mark a reversal.
- `fund_balance`: per org × project × fiscal year × source, what was received, contributed and
  passed down (the rows allocations lock), plus contributions of the whole subtree.
- `fund_rollup`: per org × project × fiscal year, the same totals over every source plus the
  execution of the org's subtree and the overspent flag: a summary reads only these rows.
- `execution_record` / `execution_period`: the approved-aid read copy (one row per record) and its
  totals per org (the school and each ancestor) × project × period, fed by aid events.
- `org_node` / `project_ref`: read copies of identity's org tree and aid's projects.

Materialised paths use the C collation on PostgreSQL so that a subtree is a plain range scan.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    SmallInteger,
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


def path_column(name: str, *, nullable: bool = False) -> Column:
    """A materialised org path column (C collation on PostgreSQL)."""
    return Column(
        name, String(255).with_variant(String(255, collation="C"), "postgresql"), nullable=nullable
    )


def money(name: str) -> Column:
    """An amount in fen, 0 by default."""
    return Column(name, BigInteger, nullable=False, default=0, server_default="0")


org_node = Table(
    "org_node",
    metadata,
    Column("org_code", String(20), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("level", String(10), nullable=False),
    Column("parent_code", String(20), nullable=True),
    path_column("org_path"),
    Column("active", Boolean, nullable=False, default=True),
    Column("version", BigInteger, nullable=False, default=0),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_org_node_parent", "parent_code"),
    Index("ix_org_node_path", "org_path"),
)

project_ref = Table(
    "project_ref",
    metadata,
    Column("project_code", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("owner_org_code", String(20), nullable=False),
    path_column("owner_org_path"),
    Column("owner_level", String(10), nullable=True),
    Column("category", SmallInteger, nullable=False, default=0),
    Column("stage", SmallInteger, nullable=False, default=0),
    Column("active", Boolean, nullable=False, default=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

allocation = Table(
    "allocation",
    metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("allocation_id", String(40), nullable=False, unique=True),
    Column("document_id", String(40), nullable=False),
    Column("kind", String(12), nullable=False),
    Column("project_code", String(40), nullable=False),
    Column("fiscal_year", String(4), nullable=False),
    Column("from_org_code", String(20), nullable=False),
    path_column("from_org_path"),
    Column("to_org_code", String(20), nullable=False),
    path_column("to_org_path"),
    Column("source", SmallInteger, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("document_number", String(100), nullable=False),
    Column("document_date", String(10), nullable=False),
    Column("allocated_on", String(10), nullable=False),
    Column("note", String(500), nullable=False, default=""),
    Column("status", String(10), nullable=False),
    Column("reversal_reason", String(500), nullable=False, default=""),
    Column("reversed_by", String(64), nullable=False, default=""),
    Column("reversed_at", DateTime(timezone=True), nullable=True),
    Column("entered_by", String(64), nullable=False),
    Column("entered_at", DateTime(timezone=True), nullable=False),
    Index("ix_allocation_year_project", "fiscal_year", "project_code"),
    Index("ix_allocation_from_path", "from_org_path"),
    Index("ix_allocation_to_path", "to_org_path"),
    Index("ix_allocation_document", "document_number"),
)

fund_balance = Table(
    "fund_balance",
    metadata,
    Column("org_code", String(20), primary_key=True),
    Column("project_code", String(40), primary_key=True),
    Column("fiscal_year", String(4), primary_key=True),
    Column("source", SmallInteger, primary_key=True),
    path_column("org_path"),
    money("received_fen"),
    money("contributed_fen"),
    money("allocated_down_fen"),
    money("subtree_contributed_fen"),
)

fund_rollup = Table(
    "fund_rollup",
    metadata,
    Column("org_code", String(20), primary_key=True),
    Column("project_code", String(40), primary_key=True),
    Column("fiscal_year", String(4), primary_key=True),
    path_column("org_path"),
    money("received_fen"),
    money("contributed_fen"),
    money("allocated_down_fen"),
    money("subtree_contributed_fen"),
    money("school_funds_fen"),
    money("executed_fen"),
    Column("executed_count", BigInteger, nullable=False, default=0, server_default="0"),
    Column("overspent", Boolean, nullable=False, default=False, server_default="0"),
    Column("overspent_since", DateTime(timezone=True), nullable=True),
    Index("ix_fund_rollup_overspent", "overspent", "org_path"),
    Index("ix_fund_rollup_year", "fiscal_year", "org_code"),
)

execution_record = Table(
    "execution_record",
    metadata,
    Column("record_id", String(64), primary_key=True),
    Column("school_org_code", String(20), nullable=False),
    Column("project_code", String(40), nullable=False),
    Column("school_year", String(9), nullable=False),
    Column("term", SmallInteger, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("approved", Boolean, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)

execution_period = Table(
    "execution_period",
    metadata,
    Column("org_code", String(20), primary_key=True),
    Column("project_code", String(40), primary_key=True),
    Column("school_year", String(9), primary_key=True),
    Column("term", SmallInteger, primary_key=True),
    Column("fiscal_year", String(4), nullable=False),
    money("executed_fen"),
    Column("record_count", BigInteger, nullable=False, default=0, server_default="0"),
    Index("ix_execution_period_year", "org_code", "fiscal_year"),
)

cost_share = Table(
    "cost_share",
    metadata,
    Column("project_code", String(40), primary_key=True),
    Column("fiscal_year", String(4), primary_key=True),
    Column("region_org_code", String(20), primary_key=True),
    path_column("region_org_path"),
    # "source:basis_points" pairs, e.g. "1:3000,2:7000".
    Column("shares", Text, nullable=False),
    Column("document_number", String(100), nullable=False, default=""),
    Column("set_by", String(64), nullable=False),
    Column("set_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False, default=1),
)

"""SQLAlchemy tables of the reconcile service (its own database)."""

from sqlalchemy import MetaData
from zizhu_common.consumer import processed_event_table
from zizhu_common.outbox import outbox_table

metadata = MetaData()

outbox_event = outbox_table(metadata)
processed_event = processed_event_table(metadata)

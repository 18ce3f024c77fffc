"""Shared pieces of the event benchmarks: realistic `aid.record.approved` events from the data
generator, a tiny producer/consumer schema, and servers started like the tests start them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from itertools import cycle, islice

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table
from zizhu_common.consumer import processed_event_table
from zizhu_common.outbox import outbox_table
from zizhu_contracts.aid.v1 import events_pb2
from zizhu_contracts.common.v1 import common_pb2

from bench.datagen import DataGen

producer_metadata = MetaData()
outbox = outbox_table(producer_metadata)

consumer_metadata = MetaData()
processed = processed_event_table(consumer_metadata)
# What an execution consumer keeps per approved record (funding's and reconcile's read copies).
approved_record = Table(
    "approved_record",
    consumer_metadata,
    Column("record_id", String(40), primary_key=True),
    Column("id_number_index", String(64), nullable=False),
    Column("school_code", String(10), nullable=False),
    Column("project_code", String(40), nullable=False),
    Column("period", String(20), nullable=False),
    Column("term", Integer, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
)


def approved_events(n: int, *, seed: int) -> Iterator[events_pb2.RecordApproved]:
    """n RecordApproved events for generated students of a one-province tree."""
    gen = DataGen(seed)
    tree = gen.org_tree(
        provinces=1, counties=max(1, min(100, n // 5_000)), schools=max(1, n // 500)
    )
    students = gen.students_for_tree(tree, min(n * 2, 2_000_000))
    # Students get 0..n records each; cycle through them when a small tree yields too few.
    records = islice(cycle(gen.aid_records(students)), n)
    for i, rec in enumerate(records):
        msg = events_pb2.RecordApproved(
            record_id=f"R{i:010d}",
            student_id=f"S{i:010d}",
            id_number_blind_index=hashlib.sha256(rec.id_number.encode()).hexdigest(),
            school_org_code=rec.school_code,
            school_org_path=f"/000000/{rec.school_code[2:4]}0000/{rec.school_code}/",
            project_code=rec.project_code,
            project_category=common_pb2.AID_CATEGORY_NEED_BASED,
            amount_fen=rec.amount_fen,
        )
        msg.period.school_year = rec.period
        msg.period.term = common_pb2.TERM_AUTUMN if rec.term == "autumn" else common_pb2.TERM_SPRING
        yield msg


def event_subject() -> str:
    """The subject the benchmarks publish on."""
    return "aid.record.approved"

"""Entry validation (DESIGN.md §5), shared by single entry and template import.

Rows are checked in three passes so that an import of 100,000 rows stays fast: local checks (ID
number, amount, bank card, lengths), one batched roster check for the rows that passed (enrolled
at that school in the project's stage, name as in 学籍, hardship recognition), then the database
checks run inside the writing transaction (one record per student × project × period, mutually
exclusive projects, quota).
"""

from __future__ import annotations

from aid_service.service.entry.build import build_records, bulk_row_parts, bulk_rows, record_tuples
from aid_service.service.entry.database import (
    check_in_database,
    exclusive_projects,
    slot_issues,
    slot_keys,
)
from aid_service.service.entry.local import (
    MAX_BANK_NAME,
    MAX_NAME,
    MAX_REMARK,
    LocalChecks,
    check_locally,
)
from aid_service.service.entry.roster import RosterAnswers, check_with_roster, enrollment_queries
from aid_service.service.entry.rows import Checked, EntryRow, RowIssue, same_number

__all__ = [
    "Checked",
    "EntryRow",
    "LocalChecks",
    "MAX_BANK_NAME",
    "MAX_NAME",
    "MAX_REMARK",
    "RosterAnswers",
    "RowIssue",
    "build_records",
    "bulk_row_parts",
    "bulk_rows",
    "check_in_database",
    "check_locally",
    "check_with_roster",
    "enrollment_queries",
    "exclusive_projects",
    "record_tuples",
    "same_number",
    "slot_issues",
    "slot_keys",
]

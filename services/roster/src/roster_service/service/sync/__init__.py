"""Applying validated 学籍 rows: new students, changed person facts, enrolment changes and
transfers, with history records and events — in bulk, inside the caller's transaction."""

from __future__ import annotations

from roster_service.service.sync.applier import RowApplier
from roster_service.service.sync.context import SyncContext

__all__ = ["RowApplier", "SyncContext"]

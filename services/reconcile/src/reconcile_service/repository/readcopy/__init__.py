"""Writes to the read copy, one set-based statement per kind of change and batch.

Every writer is idempotent and order-tolerant: rows carry the instant of the event that set them
(`event_at`) and an older event never overwrites a newer one; revocation of a record and the end
of a membership are terminal. The funded set (`funded_student`) is maintained here, in the same
transaction, from the records that become approved or revoked.
"""

from reconcile_service.repository.readcopy.base import (
    APPROVED,
    NEED_BASED,
    PATH_TABLES,
    REVOKED,
    current_paths,
    event_time,
    mark_dirty,
    period_keys,
    student_keys,
    use_current_paths,
)
from reconcile_service.repository.readcopy.funds import (
    add_allocations,
    apply_records,
    clear_read_copy,
    close_periods,
    project_categories,
    reverse_allocations,
    upsert_periods,
    upsert_projects,
)
from reconcile_service.repository.readcopy.people import (
    add_memberships,
    close_moved_enrollments,
    end_memberships,
    move_subtree,
    retire_orgs,
    upsert_enrollments,
    upsert_orgs,
    upsert_people,
    upsert_recognitions,
    verify_memberships,
)

__all__ = [
    "APPROVED",
    "NEED_BASED",
    "PATH_TABLES",
    "REVOKED",
    "add_allocations",
    "add_memberships",
    "apply_records",
    "clear_read_copy",
    "close_moved_enrollments",
    "close_periods",
    "current_paths",
    "end_memberships",
    "event_time",
    "mark_dirty",
    "move_subtree",
    "period_keys",
    "project_categories",
    "retire_orgs",
    "reverse_allocations",
    "student_keys",
    "upsert_enrollments",
    "upsert_orgs",
    "upsert_people",
    "upsert_periods",
    "upsert_projects",
    "upsert_recognitions",
    "use_current_paths",
    "verify_memberships",
]

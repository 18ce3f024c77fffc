"""Large chunks of a special-group issue are checked (GB 11643) and blind-indexed in the worker
processes: the same flows as test_groups, with every chunk sent there, give the same results."""

from __future__ import annotations

from tests.roster.test_groups import (
    add_rows_reports_bad_rows_and_refuses_closed_batches,
    national_issue_matches_rows_and_reports_unmatched,
)


def checked_in_workers(roster) -> None:
    """Chunks of any length go to the worker processes."""
    roster.services.deps.settings.issue_pool_min_rows = 1


async def test_rows_checked_in_worker_processes_match_the_same(roster):
    checked_in_workers(roster)
    await national_issue_matches_rows_and_reports_unmatched(roster)
    assert roster.services.deps.pool._pool is not None  # the workers did start


async def test_bad_rows_checked_in_worker_processes_are_reported_the_same(roster):
    checked_in_workers(roster)
    await add_rows_reports_bad_rows_and_refuses_closed_batches(roster)
    assert roster.services.deps.pool._pool is not None

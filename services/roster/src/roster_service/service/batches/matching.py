"""Matching an issue batch to the roster in the background: starting, resuming after a restart,
and applying the result (memberships added and ended, events) in one transaction."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asyncpg.exceptions import UniqueViolationError
from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.bulk import paused_gc
from zizhu_common.rpc import CallerContext
from zizhu_contracts.roster.v1 import events_pb2

from roster_service import tables
from roster_service.domain.groups import BatchStatus, IssueMode, MatchStatus, RowAction
from roster_service.events import (
    BATCH_COMMITTED,
    MEMBERSHIP_ENDED,
    MEMBERSHIPS_ISSUED,
    OUTBOX_COLUMNS,
    PrebuiltEvents,
    add_events,
    meta,
)
from roster_service.repository.groups import GroupRepository
from roster_service.repository.memberships import new_memberships
from roster_service.repository.sql import analyze, bulk_insert_tuples, ints
from roster_service.service.context import Deps
from roster_service.service.group_views import (
    ISSUED_PER_EVENT,
    ISSUED_TYPE,
    MEMBERSHIP_PAGE,
    AddedBodies,
    Steps,
    ended_event,
    issued_events,
)

# The logger keeps the name it had before the module became a package.
log = logging.getLogger(__package__)


class BatchMatching:
    """Matching issue batches (mixed into GroupService through BatchOps)."""

    d: Deps
    repo: GroupRepository
    _tasks: set[asyncio.Task[None]]

    def start_matching(self, batch_id: str, caller: CallerContext | None = None) -> None:
        """Match a batch in the background."""
        task = asyncio.create_task(self.match(batch_id, caller), name=f"match-{batch_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for matching tasks in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def resume(self) -> int:
        """Restart matching of batches left MATCHING (after a crash or restart)."""
        from sqlalchemy import select

        from roster_service import tables as t

        async with self.d.db.read() as session:
            ids = list(
                (
                    await session.execute(
                        select(t.issue_batch.c.batch_id).where(
                            t.issue_batch.c.status == BatchStatus.MATCHING
                        )
                    )
                ).scalars()
            )
        for batch_id in ids:
            if not any(t.get_name() == f"match-{batch_id}" for t in self._tasks):
                self.start_matching(batch_id)
        return len(ids)

    async def match(self, batch_id: str, caller: CallerContext | None = None) -> None:
        """Match a batch to the roster and apply it, in one transaction; FAILED on error. Run
        with the cyclic collector paused, as the commit call that starts it: matching holds up
        to millions of rows and their events, and each automatic full collection would rescan
        them all (and every other object of the process) several times over."""
        with paused_gc():
            await self._match_batch(batch_id, caller)

    async def _match_batch(self, batch_id: str, caller: CallerContext | None) -> None:
        d = self.d
        try:
            async with d.db.write() as session:
                batch = await self.repo.get_batch(session, batch_id, lock=True)
                if batch is None or batch.status != BatchStatus.MATCHING:
                    return
                await self._match(session, batch, caller)
        except Exception as exc:
            log.exception("matching batch %s failed", batch_id)
            async with d.db.write() as session:
                await self.repo.update_batch(
                    session,
                    batch_id,
                    {
                        "status": BatchStatus.FAILED,
                        "error_message": f"比对失败：{type(exc).__name__}",
                        "updated_at": d.now(),
                    },
                )

    async def _match(self, session: AsyncSession, batch: Any, caller: CallerContext | None) -> None:
        d = self.d
        repo = self.repo
        now = d.now()
        groups = ints(batch.groups)
        steps = Steps()
        # The batch's rows arrived since the table was last analysed (a first list of millions
        # of rows into a young table): the statements below are planned on fresh statistics.
        await analyze(session, tables.issued_row)
        await repo.mark_duplicates(session, batch.batch_id)
        steps.mark("duplicates")
        await repo.refresh_rows(session, batch.batch_id, batch.issuing_org_path, batch.created_at)
        steps.mark("refresh")
        await repo.link_existing(session, batch.batch_id, batch.school_year, now)
        steps.mark("link")
        pages = await repo.school_pages(session, batch.batch_id, MEMBERSHIP_PAGE)
        if session.bind.dialect.name == "postgresql":
            # Students already in the group were linked above, so nothing should conflict: the
            # memberships go in without ON CONFLICT's speculative insertion (a tenth of the
            # insert's cost), under one savepoint. A school's self-collected membership of the
            # same student committed meanwhile would conflict: then all of them again, skipping
            # conflicts.
            try:
                async with session.begin_nested():
                    added = await self._issue_memberships(session, batch, caller, now, pages)
            except UniqueViolationError:
                log.info("batch %s: a membership appeared meanwhile; skipping conflicts",
                         batch.batch_id)  # fmt: skip
                added = await self._issue_memberships(
                    session, batch, caller, now, pages, skip_conflicts=True
                )
        else:
            added = await self._issue_memberships(
                session, batch, caller, now, pages, skip_conflicts=True
            )
        # Statistics for the reads below (end_absent, counts) of a table just grown by up to
        # millions of rows.
        await analyze(session, tables.membership)
        steps.mark("insert+events")
        ended: list[int] = []
        if batch.mode == IssueMode.DELTA:
            ended = await repo.end_removed(session, batch, now)
        else:
            ended = await repo.end_absent(session, batch, groups, now)
        steps.mark("end")
        if ended:
            rows = await repo.memberships_by_ids(session, ended)
            await add_events(
                session, d.outbox, [(MEMBERSHIP_ENDED, ended_event(r, caller)) for r in rows]
            )
        steps.mark("ended events")
        counts = await repo.match_counts(session, batch.batch_id)
        previous = await repo.previous_batch(session, batch)
        if batch.mode == IssueMode.DELTA:
            _, n_add = await repo.action_rows(session, batch.batch_id, RowAction.ADD, 0, 0)
            _, n_remove = await repo.action_rows(session, batch.batch_id, RowAction.REMOVE, 0, 0)
            diff = (n_add, n_remove, 0)
        elif previous is not None:
            diff = await repo.diff_counts(session, batch.batch_id, previous.batch_id)
        else:
            valid = sum(n for s, n in counts.items() if s != MatchStatus.INVALID)
            diff = (valid, 0, 0)
        values = {
            "status": BatchStatus.COMMITTED,
            "matched_count": counts.get(MatchStatus.MATCHED, 0),
            "not_found_count": counts.get(MatchStatus.NOT_FOUND, 0),
            "not_enrolled_count": counts.get(MatchStatus.NOT_ENROLLED, 0),
            "invalid_count": counts.get(MatchStatus.INVALID, 0),
            "ambiguous_count": counts.get(MatchStatus.AMBIGUOUS, 0),
            "memberships_added": added,
            "memberships_ended": len(ended),
            "previous_batch_id": previous.batch_id if previous is not None else "",
            "added_count": diff[0],
            "removed_count": diff[1],
            "changed_count": diff[2],
            "committed_at": now,
            "updated_at": now,
        }
        await repo.update_batch(session, batch.batch_id, values)
        msg = events_pb2.IssueBatchCommitted(
            meta=meta(caller, batch.issuing_org_path),
            batch_id=batch.batch_id,
            issuing_org_code=batch.issuing_org_code,
            groups=groups,
            mode=batch.mode,
            as_of_date=batch.as_of_date,
            row_count=batch.row_count,
            matched_count=values["matched_count"],
            not_found_count=values["not_found_count"],
            not_enrolled_count=values["not_enrolled_count"],
            invalid_count=values["invalid_count"],
            memberships_added=added,
            memberships_ended=len(ended),
            school_year=batch.school_year,
            issuing_org_path=batch.issuing_org_path,
        )
        msg.committed_at.FromDatetime(now)
        await add_events(session, d.outbox, [(BATCH_COMMITTED, msg)])
        steps.mark("counts")
        log.info(
            "batch %s matched: %d rows, %d memberships added, %d ended (%s)",
            batch.batch_id, batch.row_count, added, len(ended), steps,
        )  # fmt: skip

    async def _issue_memberships(
        self,
        session: AsyncSession,
        batch: Any,
        caller: CallerContext | None,
        now: Any,
        pages: list[tuple[str, str]],
        *,
        skip_conflicts: bool = False,
    ) -> int:
        """Insert the batch's new memberships a page of whole schools at a time, each page
        returning what the events carry, and write their MembershipsIssued events: one per school
        (in parts for a big school), its entries assembled from the message bytes without meta and
        its meta from a per-school template, written in bulk. While the database inserts a page,
        the previous page's events are built; they are written once that insert is done. Returns
        the number of memberships."""
        d = self.d
        builder = PrebuiltEvents(caller, d.outbox.producer, None)
        bodies = AddedBodies()
        added = 0
        found: list[Any] = []  # the previous page's memberships as inserted
        for n in range(len(pages) + 1):
            following = None
            if n < len(pages):
                following = asyncio.ensure_future(
                    self.repo.insert_memberships(
                        session, batch, batch.created_by, now, pages[n], skip_conflicts
                    )
                )
                await asyncio.sleep(0)  # the statement is sent before the events are built
            try:
                page = new_memberships(batch, found)
                rows = builder.rows(
                    MEMBERSHIPS_ISSUED, ISSUED_TYPE, issued_events(page, bodies, ISSUED_PER_EVENT)
                )
            finally:  # the session is free again only once the insert is done
                added += len(found)
                found = await following if following is not None else []
            if rows:
                await bulk_insert_tuples(session, tables.outbox_event, OUTBOX_COLUMNS, rows)
                d.outbox.wake_after_commit(session)
        return added

"""Issue batches (中央/省级下发): opening, receiving rows (matched on receipt), committing and
matching in one transaction, cancelling, and the issuer's and schools' views of the rows."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from zizhu_common.rpc import CallerContext
from zizhu_contracts.roster.v1 import events_pb2

from roster_service import tables
from roster_service.domain.common import (
    new_id,
    parse_date,
    school_year_of,
    valid_school_year,
)
from roster_service.domain.groups import (
    MAX_ROWS_PER_CHUNK,
    BatchStatus,
    ChangeKind,
    IssuedRowInput,
    IssueMode,
    MatchStatus,
    RowAction,
    check_issued_row,
    match_result,
)
from roster_service.events import (
    BATCH_COMMITTED,
    MEMBERSHIP_ADDED,
    MEMBERSHIP_ENDED,
    OUTBOX_COLUMNS,
    PrebuiltEvents,
    add_events,
    meta,
)
from roster_service.repository.groups import GroupRepository
from roster_service.repository.sql import bulk_insert_tuples, ints, join_ints
from roster_service.service.context import Deps, next_token, page_window, require_level
from roster_service.service.group_views import (
    ADDED_TYPE,
    EVENT_PAGE,
    AddedBodies,
    BatchView,
    ChangeRowView,
    IssuedRowView,
    Steps,
    batch_view,
    check_group,
    ended_event,
)
from roster_service.service.views import Page

log = logging.getLogger(__name__)


class BatchOps:
    """Issue batches (mixed into GroupService)."""

    d: Deps
    repo: GroupRepository
    _tasks: set[asyncio.Task[None]]

    async def _batch_for_issuer(
        self, session: AsyncSession, caller: CallerContext, batch_id: str
    ) -> Any:
        """A batch the caller issued (or whose issuer lies in the caller's subtree)."""
        row = await self.repo.get_batch(session, batch_id, lock=True) if batch_id else None
        if row is None or not caller.in_scope(row.issuing_org_path):
            raise NotFound("下发批次不存在", code="BATCH_NOT_FOUND", field="batch_id")
        return row

    async def _visible_batch(
        self, session: AsyncSession, caller: CallerContext, batch_id: str
    ) -> Any:
        """A batch the caller may see: issued in its subtree or by one of its ancestors."""
        row = await self.repo.get_batch(session, batch_id) if batch_id else None
        if row is None or not (
            caller.in_scope(row.issuing_org_path)
            or caller.org_path.startswith(row.issuing_org_path)
        ):
            raise NotFound("下发批次不存在", code="BATCH_NOT_FOUND", field="batch_id")
        return row

    async def issue(
        self,
        caller: CallerContext,
        *,
        issuing_org_code: str,
        title: str,
        source_system: str,
        groups: Sequence[int],
        mode: int,
        as_of_date: str,
        school_year: str,
    ) -> BatchView:
        """Open a batch: the nation, or a province for its own territory."""
        d = self.d
        require_level(caller, "national", "province", action="下发特殊群体名单")
        title = title.strip()
        if not title:
            raise InvalidArgument("批次名称不能为空", code="TITLE_REQUIRED", field="title")
        if len(title) > 200:
            raise InvalidArgument("批次名称不能超过200字", code="TITLE_TOO_LONG", field="title")
        if not groups:
            raise InvalidArgument("须指定至少一类特殊群体", code="GROUPS_REQUIRED", field="groups")
        for g in groups:
            check_group(g, "groups")
        if mode not in (IssueMode.FULL, IssueMode.DELTA):
            raise InvalidArgument("下发方式应为全量或增量", code="MODE_REQUIRED", field="mode")
        as_of = parse_date(as_of_date) if as_of_date else d.today()
        if as_of is None:
            raise InvalidArgument("数据日期应为YYYY-MM-DD", code="DATE_FORMAT", field="as_of_date")
        if as_of > d.today():
            raise InvalidArgument("数据日期不能晚于今天", code="DATE_FUTURE", field="as_of_date")
        year = school_year or school_year_of(as_of)
        if not valid_school_year(year):
            raise InvalidArgument(
                "学年格式应为YYYY-YYYY", code="SCHOOL_YEAR_FORMAT", field="school_year"
            )
        now = d.now()
        async with d.db.write() as session:
            issuer = await d.scope(session, caller, issuing_org_code)
            if issuer.level not in ("national", "province"):
                raise InvalidArgument(
                    "下发单位应为国家或省级", code="ISSUER_LEVEL", field="issuing_org_code"
                )
            batch_id = new_id("B")
            values = {
                "batch_id": batch_id,
                "issuing_org_code": issuer.org_code,
                "issuing_org_path": issuer.org_path,
                "title": title,
                "source_system": source_system.strip()[:100],
                "groups": join_ints(groups),
                "mode": int(mode),
                "school_year": year,
                "as_of_date": as_of.isoformat(),
                "status": BatchStatus.RECEIVING,
                "created_by": caller.account_id,
                "created_at": now,
                "updated_at": now,
            }
            await self.repo.add_batch(session, values)
            row = await self.repo.get_batch(session, batch_id)
        return batch_view(row)

    async def add_rows(
        self,
        caller: CallerContext,
        *,
        batch_id: str,
        chunk_number: int,
        rows: Sequence[IssuedRowInput],
    ) -> tuple[list[Any], int]:
        """Store one chunk of a receiving batch (resending a chunk replaces it); bad rows are
        kept as INVALID and reported."""
        d = self.d
        if chunk_number < 1:
            raise InvalidArgument(
                "块序号从1开始", code="CHUNK_NUMBER_INVALID", field="chunk_number"
            )
        if not rows:
            raise InvalidArgument("数据块为空", code="ROWS_REQUIRED", field="rows")
        if len(rows) > MAX_ROWS_PER_CHUNK:
            raise InvalidArgument(
                f"每块最多{MAX_ROWS_PER_CHUNK}行", code="TOO_MANY_ROWS", field="rows"
            )
        async with d.db.read() as session:
            batch = await self._batch_for_issuer(session, caller, batch_id)
        if batch.status != BatchStatus.RECEIVING:
            raise FailedPrecondition(
                "该批次已不再接收数据", code="BATCH_NOT_RECEIVING", field="batch_id"
            )
        groups = frozenset(ints(batch.groups))
        mode = IssueMode(batch.mode)
        base = (chunk_number - 1) * MAX_ROWS_PER_CHUNK
        checked = [
            check_issued_row(
                base + i + 1, raw, groups=groups, mode=mode, school_year=batch.school_year
            )
            for i, raw in enumerate(rows)
        ]
        bis = {i: d.id_index(c.id_type, c.id_number) for i, c in enumerate(checked) if c.id_number}
        async with d.db.read() as session:
            known = await self.repo.match_info(session, bis.values())
        records = []
        errors = []
        territory = batch.issuing_org_path
        for i, c in enumerate(checked):
            bi = bis.get(i)
            if c.error is not None:
                errors.append(c.error)
            # Matched on receipt; the commit refreshes rows whose student changed since.
            hit = known.get(bi) if bi and c.error is None else None
            status, note = (
                (MatchStatus.INVALID, c.error.message)
                if c.error is not None
                else match_result(hit, c.name, territory)
            )
            records.append(
                (
                    batch_id,
                    chunk_number,
                    c.row_number,
                    c.group,
                    c.action,
                    c.name,
                    c.id_type,
                    bi,
                    c.id_number_masked,
                    # A known person's number is already stored (encrypted) with the student.
                    d.encrypt_id(c.id_number) if c.id_number and bi not in known else None,
                    c.household_region_code,
                    c.valid_from,
                    c.valid_to,
                    int(status),
                    note,
                    hit.student_id if hit else None,
                    hit.school_org_code if hit else None,
                    hit.school_org_path if hit else None,
                    hit.stage if hit else None,
                )
            )
        async with d.db.write() as session:
            batch = await self._batch_for_issuer(session, caller, batch_id)
            if batch.status != BatchStatus.RECEIVING:
                raise FailedPrecondition(
                    "该批次已不再接收数据", code="BATCH_NOT_RECEIVING", field="batch_id"
                )
            total = await self.repo.replace_chunk(session, batch_id, chunk_number, records, d.now())
        return errors, total

    async def commit(self, caller: CallerContext, *, batch_id: str, chunk_count: int) -> BatchView:
        """Close a batch and start matching it (poll the batch until COMMITTED)."""
        d = self.d
        async with d.db.write() as session:
            batch = await self._batch_for_issuer(session, caller, batch_id)
            if batch.status != BatchStatus.RECEIVING:
                raise FailedPrecondition(
                    "该批次已提交或已取消", code="BATCH_NOT_RECEIVING", field="batch_id"
                )
            received = await self.repo.chunk_numbers(session, batch_id)
            if chunk_count < 1 or received != list(range(1, chunk_count + 1)):
                missing = sorted(set(range(1, max(chunk_count, 0) + 1)) - set(received))
                raise FailedPrecondition(
                    "数据块不完整，不能提交"
                    + (f"：缺少第{'、'.join(map(str, missing[:20]))}块" if missing else ""),
                    code="CHUNKS_INCOMPLETE",
                    field="chunk_count",
                    details={"received": len(received), "missing": missing[:100]},
                )
            await self.repo.update_batch(
                session, batch_id, {"status": BatchStatus.MATCHING, "updated_at": d.now()}
            )
            row = await self.repo.get_batch(session, batch_id)
        self.start_matching(batch_id, caller)
        return batch_view(row)

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
        """Match a batch to the roster and apply it, in one transaction; FAILED on error."""
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
        await repo.mark_duplicates(session, batch.batch_id)
        steps.mark("duplicates")
        await repo.refresh_rows(session, batch.batch_id, batch.issuing_org_path, batch.created_at)
        steps.mark("refresh")
        await repo.link_existing(session, batch.batch_id, batch.school_year, now)
        steps.mark("link")
        await repo.insert_memberships(session, batch, batch.created_by, now)
        steps.mark("insert")
        ended: list[int] = []
        if batch.mode == IssueMode.DELTA:
            ended = await repo.end_removed(session, batch, now)
        else:
            ended = await repo.end_absent(session, batch, groups, now)
        steps.mark("end")
        added = 0
        after = 0
        # One MembershipAdded per membership, assembled from the message without meta and a
        # per-school meta template (the same bytes as stamping each event), written in bulk.
        builder = PrebuiltEvents(caller, d.outbox.producer, None)
        bodies = AddedBodies()
        while True:
            page = await repo.new_memberships_page(session, batch.batch_id, after, EVENT_PAGE)
            if not page:
                break
            rows = builder.rows(
                MEMBERSHIP_ADDED,
                ADDED_TYPE,
                [(r.school_org_path, bodies.body(r, bi)) for r, bi in page],
            )
            await bulk_insert_tuples(session, tables.outbox_event, OUTBOX_COLUMNS, rows)
            d.outbox.wake_after_commit(session)
            added += len(page)
            after = page[-1][0].id
        if ended:
            rows = await repo.memberships_by_ids(session, ended)
            await add_events(
                session, d.outbox, [(MEMBERSHIP_ENDED, ended_event(r, caller)) for r in rows]
            )
        steps.mark("events")
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

    async def cancel(self, caller: CallerContext, *, batch_id: str, reason: str) -> BatchView:
        """Abandon a batch still receiving rows (or one whose matching failed)."""
        d = self.d
        async with d.db.write() as session:
            batch = await self._batch_for_issuer(session, caller, batch_id)
            if batch.status not in (BatchStatus.RECEIVING, BatchStatus.FAILED):
                raise FailedPrecondition(
                    "只有接收中或比对失败的批次可以取消",
                    code="BATCH_NOT_CANCELLABLE",
                    field="batch_id",
                )
            await self.repo.delete_rows(session, batch_id)
            await self.repo.update_batch(
                session,
                batch_id,
                {
                    "status": BatchStatus.CANCELLED,
                    "error_message": (reason.strip() or "已取消")[:500],
                    "updated_at": d.now(),
                },
            )
            row = await self.repo.get_batch(session, batch_id)
        return batch_view(row)

    async def get(self, caller: CallerContext, batch_id: str) -> BatchView:
        """One batch the caller may see."""
        async with self.d.db.read() as session:
            return batch_view(await self._visible_batch(session, caller, batch_id))

    async def list_batches(
        self,
        caller: CallerContext,
        *,
        org_code: str,
        statuses: Sequence[int],
        group: int,
        page: Any,
    ) -> tuple[list[BatchView], Page]:
        """Batches issued in a subtree, or by the ancestors of its root."""
        key = (org_code, tuple(statuses), group)
        offset, limit = page_window(page, key)
        async with self.d.db.read() as session:
            root = await self.d.scope(session, caller, org_code)
            rows, total = await self.repo.list_batches(
                session,
                path=root.org_path,
                statuses=statuses,
                group=group,
                offset=offset,
                limit=limit,
            )
        return [batch_view(r) for r in rows], Page(
            next_token(offset, limit, len(rows), total, key), total
        )

    async def list_rows(
        self,
        caller: CallerContext,
        *,
        batch_id: str,
        org_code: str,
        match_statuses: Sequence[int],
        verification_statuses: Sequence[int],
        group: int,
        page: Any,
    ) -> tuple[list[IssuedRowView], Page]:
        """Rows of a batch: the issuer (and its ancestors) see every row, others the rows
        matched to schools in their subtree."""
        d = self.d
        key = (batch_id, org_code, tuple(match_statuses), tuple(verification_statuses), group)
        offset, limit = page_window(page, key)
        async with d.db.read() as session:
            batch = await self._visible_batch(session, caller, batch_id)
            root = await d.scope(session, caller, org_code)
            issuer_view = batch.issuing_org_path.startswith(root.org_path)
            rows, total = await self.repo.list_rows(
                session,
                batch_id=batch_id,
                path=None if issuer_view else root.org_path,
                match_statuses=match_statuses,
                verification_statuses=verification_statuses,
                group=group,
                offset=offset,
                limit=limit,
            )
            schools = await d.orgs.by_codes(
                session, {r.school_org_code for r in rows if r.school_org_code}
            )
        views = [
            IssuedRowView(
                issued_row_id=str(r.id),
                batch_id=r.batch_id,
                row_number=r.row_number,
                group=r.special_group,
                action=r.action,
                name=r.name,
                id_type=r.id_type,
                id_number_masked=r.id_number_masked,
                household_region_code=r.household_region_code,
                match_status=r.match_status,
                match_note=r.match_note,
                student_id=r.student_id or "",
                school_org_code=r.school_org_code or "",
                school_name=schools[r.school_org_code].name if r.school_org_code in schools else "",
                school_org_path=r.school_org_path or "",
                stage=r.stage or 0,
                membership_id=str(r.mid or ""),
                verification_status=r.verification or 0,
            )
            for r in rows
        ]
        return views, Page(next_token(offset, limit, len(rows), total, key), total)

    async def list_changes(
        self, caller: CallerContext, *, batch_id: str, kinds: Sequence[int], page: Any
    ) -> tuple[list[ChangeRowView], str, Page]:
        """What a committed batch changed against the previous one (issuer's view)."""
        d = self.d
        key = (batch_id, tuple(kinds))
        offset, limit = page_window(page, key)
        async with d.db.read() as session:
            batch = await self._batch_for_issuer(session, caller, batch_id)
            if batch.status != BatchStatus.COMMITTED:
                raise FailedPrecondition(
                    "批次尚未完成比对", code="BATCH_NOT_COMMITTED", field="batch_id"
                )
            wanted = [
                k
                for k in (ChangeKind.ADDED, ChangeKind.REMOVED, ChangeKind.CHANGED)
                if not kinds or k in kinds
            ]
            counts = {
                ChangeKind.ADDED: batch.added_count,
                ChangeKind.REMOVED: batch.removed_count,
                ChangeKind.CHANGED: batch.changed_count,
            }
            total = sum(counts[k] for k in wanted)
            out: list[ChangeRowView] = []
            skip = offset
            for kind in wanted:
                if len(out) >= limit:
                    break
                if skip >= counts[kind]:
                    skip -= counts[kind]
                    continue
                take = limit - len(out)
                if batch.mode == IssueMode.DELTA:
                    if kind == ChangeKind.CHANGED:
                        continue
                    action = RowAction.ADD if kind == ChangeKind.ADDED else RowAction.REMOVE
                    rows, _ = await self.repo.action_rows(session, batch_id, action, skip, take)
                elif batch.previous_batch_id:
                    rows = await self.repo.diff_rows(
                        session, kind, batch_id, batch.previous_batch_id, skip, take
                    )
                elif kind == ChangeKind.ADDED:
                    rows, _ = await self.repo.action_rows(
                        session, batch_id, RowAction.ADD, skip, take
                    )
                else:
                    rows = []
                skip = 0
                for r in rows:
                    changed: list[str] = []
                    if kind == ChangeKind.CHANGED:
                        pairs = (
                            ("name", r.name, r.prev_name),
                            ("household_region_code", r.household_region_code, r.prev_region),
                            ("valid_from", r.valid_from, r.prev_from),
                            ("valid_to", r.valid_to, r.prev_to),
                        )
                        changed = [f for f, a, b in pairs if a != b]
                    this_batch = kind != ChangeKind.REMOVED
                    out.append(
                        ChangeRowView(
                            kind=int(kind),
                            group=r.special_group,
                            name=r.name,
                            id_number_masked=r.id_number_masked,
                            issued_row_id=str(r.id) if this_batch else "",
                            previous_issued_row_id=str(r.other_id or "")
                            if this_batch
                            else str(r.id),
                            changed_fields=changed,
                            student_id=r.student_id or "",
                            school_org_code=r.school_org_code or "",
                        )
                    )
        return (
            out,
            batch.previous_batch_id,
            Page(next_token(offset, limit, len(out), total, key), total),
        )

"""The issuer's and schools' views of issue batches: finding a batch the caller may act on or
see, and listing batches, their rows and the changes they made."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.errors import FailedPrecondition, NotFound
from zizhu_common.rpc import CallerContext

from roster_service.domain.groups import BatchStatus, ChangeKind, IssueMode, RowAction
from roster_service.repository.groups import GroupRepository
from roster_service.service.context import Deps, next_token, page_window
from roster_service.service.group_views import BatchView, ChangeRowView, IssuedRowView, batch_view
from roster_service.service.views import Page


class BatchReads:
    """Reading issue batches (mixed into GroupService through BatchOps)."""

    d: Deps
    repo: GroupRepository

    async def _batch_for_issuer(
        self, session: AsyncSession, caller: CallerContext, batch_id: str, *, lock: str = "update"
    ) -> Any:
        """A batch the caller issued (or whose issuer lies in the caller's subtree), locked
        (`lock`: "update", "share" while a chunk is stored, "" not at all)."""
        row = (
            await self.repo.get_batch(
                session, batch_id, lock=lock == "update", share=lock == "share"
            )
            if batch_id
            else None
        )
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

    async def get(self, caller: CallerContext, batch_id: str) -> BatchView:
        """One batch the caller may see."""
        async with self.d.db.read() as session:
            row = await self._visible_batch(session, caller, batch_id)
            return (await self._views(session, [row]))[0]

    async def _views(self, session: AsyncSession, rows: Sequence[Any]) -> list[BatchView]:
        """Batches for display; those still receiving with their chunks and rows so far."""
        receiving = [r.batch_id for r in rows if r.status == BatchStatus.RECEIVING]
        totals = await self.repo.chunk_totals(session, receiving)
        return [
            batch_view(r, totals.get(r.batch_id, (0, 0)) if r.batch_id in receiving else None)
            for r in rows
        ]

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
            views = await self._views(session, rows)
        return views, Page(next_token(offset, limit, len(rows), total, key), total)

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

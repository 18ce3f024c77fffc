"""BatchOps: opening an issue batch, receiving its rows (matched on receipt), committing it for
matching and cancelling it; matching and the views come from the other modules."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from zizhu_common.errors import FailedPrecondition, InvalidArgument
from zizhu_common.rpc import CallerContext

from roster_service.domain.common import new_id, parse_date, school_year_of, valid_school_year
from roster_service.domain.groups import (
    MAX_ROWS_PER_CHUNK,
    BatchStatus,
    IssuedRowInput,
    IssueMode,
    MatchStatus,
    check_issued_row,
    match_result,
)
from roster_service.repository.groups import GroupRepository
from roster_service.repository.sql import ints, join_ints
from roster_service.service.batches.matching import BatchMatching
from roster_service.service.batches.reads import BatchReads
from roster_service.service.context import Deps, require_level
from roster_service.service.group_views import BatchView, batch_view, check_group


class BatchOps(BatchReads, BatchMatching):
    """Issue batches (mixed into GroupService)."""

    d: Deps
    repo: GroupRepository
    _tasks: set[asyncio.Task[None]]

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
            batch = await self._batch_for_issuer(session, caller, batch_id, lock="")
        if batch.status != BatchStatus.RECEIVING:
            raise FailedPrecondition(
                "该批次已不再接收数据", code="BATCH_NOT_RECEIVING", field="batch_id"
            )
        groups = frozenset(ints(batch.groups))
        mode = IssueMode(batch.mode)
        base = (chunk_number - 1) * MAX_ROWS_PER_CHUNK
        bis: dict[int, str]
        if d.pool is not None and len(rows) >= d.settings.issue_pool_min_rows:
            pairs = await d.pool.check_issued(
                rows, first_row=base + 1, groups=groups, mode=mode, school_year=batch.school_year
            )
            checked = [c for c, _ in pairs]
            bis = {i: bi for i, (_, bi) in enumerate(pairs) if bi is not None}
        else:
            checked = [
                check_issued_row(
                    base + i + 1, raw, groups=groups, mode=mode, school_year=batch.school_year
                )
                for i, raw in enumerate(rows)
            ]
            bis = {
                i: d.id_index(c.id_type, c.id_number) for i, c in enumerate(checked) if c.id_number
            }
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
            # Shared: chunks are stored side by side; a commit or cancel waits for them.
            batch = await self._batch_for_issuer(session, caller, batch_id, lock="share")
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
            chunks, rows = (await self.repo.chunk_totals(session, [batch_id]))[batch_id]
            await self.repo.update_batch(
                session,
                batch_id,
                {
                    "status": BatchStatus.MATCHING,
                    "chunk_count": chunks,
                    "row_count": rows,
                    "updated_at": d.now(),
                },
            )
            row = await self.repo.get_batch(session, batch_id)
        self.start_matching(batch_id, caller)
        return batch_view(row)

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

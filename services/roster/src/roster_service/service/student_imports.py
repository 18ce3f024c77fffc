"""学籍 sync: batched calls and file imports (dry run, staged commit, all-or-nothing), the
template and the row-level error report."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from datetime import date, timedelta
from typing import Any

from zizhu_common.bulk import gc_paused
from zizhu_common.db import bulk_transaction
from zizhu_common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from zizhu_common.rpc import CallerContext

from roster_service import files
from roster_service.domain.common import (
    ID_TYPE_ALIASES,
    STATUS_NAMES,
    RowError,
    new_id,
)
from roster_service.domain.students import (
    COLUMN_ALIASES,
    COLUMNS,
    EXAMPLE_ROW,
    REQUIRED_COLUMNS,
)
from roster_service.prepare import Prepared, csv_segments
from roster_service.repository.imports import pack_errors, unpack_errors
from roster_service.service.context import (
    Deps,
)
from roster_service.service.sync import RowApplier, SyncContext
from roster_service.service.views import (
    FileView,
    ImportSummaryView,
    SyncResult,
)

MAX_SYNC_ROWS = 2000
SHOWN_ERRORS = 1000


class _Abort(Exception):
    """Rolls back a sync or import that found invalid rows (nothing is written)."""


def _chunked(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(rows)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _err(e: RowError) -> tuple[int, str, str, str, str]:
    return (e.row, e.column, e.value, e.code, e.message)


class StudentImportOps:
    """学籍 sync: batched calls and file imports (dry run, staged commit, all-or-nothing), the (mixed into StudentService)."""

    d: Deps
    applier: RowApplier

    async def sync_rows(
        self,
        caller: CallerContext,
        *,
        source_system: str,
        batch_id: str,
        rows: Sequence[dict[str, str]],
        skip_invalid: bool,
    ) -> SyncResult:
        """Upsert a batch of 学籍 rows (all-or-nothing unless skip_invalid)."""
        d = self.d
        if len(rows) > MAX_SYNC_ROWS:
            raise InvalidArgument(
                f"每次同步不能超过{MAX_SYNC_ROWS}行", code="TOO_MANY_ROWS", field="rows"
            )
        if len(batch_id) > 100:
            raise InvalidArgument(
                "批次号不能超过100个字符", code="BATCH_ID_TOO_LONG", field="batch_id"
            )
        if batch_id:
            async with d.db.read() as session:
                seen = await d.imports.replay(session, batch_id)
            if seen is not None:
                if seen.account_id != caller.account_id:
                    raise FailedPrecondition(
                        "该批次号已被其他账号使用", code="BATCH_ID_TAKEN", field="batch_id"
                    )
                body = json.loads(seen.response)
                return SyncResult(
                    created_count=body["created"],
                    updated_count=body["updated"],
                    unchanged_count=body["unchanged"],
                    errors=[RowError(*e) for e in body["errors"]],
                    student_ids=body["ids"],
                )
        today = d.today()
        items = d.preparer.many(((i + 1, raw) for i, raw in enumerate(rows)), today)
        ctx = SyncContext(
            caller=caller,
            source_system=source_system or "学籍系统",
            batch_id=batch_id,
            today=today,
            now=d.now(),
        )
        outcomes = []
        try:
            async with d.db.write() as session:
                outcomes = await self.applier.apply(session, ctx, items)
                errors = [e for o in outcomes for e in o.errors]
                if errors and not skip_invalid:
                    raise _Abort
                await self.applier.finish(session, ctx)
                result = SyncResult(
                    created_count=ctx.created,
                    updated_count=ctx.updated,
                    unchanged_count=ctx.unchanged,
                    errors=errors,
                    student_ids=["" if o.errors else o.student_id for o in outcomes],
                )
                if batch_id:
                    await d.imports.remember(
                        session,
                        {
                            "batch_id": batch_id,
                            "account_id": caller.account_id,
                            "response": json.dumps(
                                {
                                    "created": result.created_count,
                                    "updated": result.updated_count,
                                    "unchanged": result.unchanged_count,
                                    "errors": [list(_err(e)) for e in errors],
                                    "ids": result.student_ids,
                                },
                                ensure_ascii=False,
                            ).encode(),
                            "created_at": ctx.now,
                        },
                    )
        except _Abort:
            return SyncResult(0, 0, 0, [e for o in outcomes for e in o.errors], [""] * len(rows))
        return result

    async def import_students(
        self,
        caller: CallerContext,
        *,
        source_system: str,
        file_name: str,
        content: bytes,
        import_id: str,
        dry_run: bool,
        skip_invalid: bool,
    ) -> ImportSummaryView:
        """Validate a 学籍 file (dry run, staged for commit) or import it all-or-nothing."""
        d = self.d
        now = d.now()
        staged = None
        if import_id:
            async with d.db.read() as session:
                staged = await d.imports.get(session, import_id)
            if staged is None or staged.kind != "students" or not caller.in_scope(staged.org_path):
                raise NotFound("导入批次不存在", code="IMPORT_NOT_FOUND", field="import_id")
            if staged.status != "staged" or staged.content is None:
                raise FailedPrecondition(
                    "该导入批次已提交或已失效", code="IMPORT_NOT_STAGED", field="import_id"
                )
            if staged.expires_at.replace(tzinfo=now.tzinfo) < now:
                raise FailedPrecondition(
                    "该导入批次已过期，请重新上传", code="IMPORT_EXPIRED", field="import_id"
                )
            content, file_name = staged.content, staged.file_name
            options = json.loads(staged.options)
            source_system = source_system or options.get("source_system", "")
            skip_invalid = skip_invalid or options.get("skip_invalid", False)
        else:
            if len(content) > d.settings.import_max_bytes:
                raise ResourceExhausted(
                    f"文件超过{d.settings.import_max_bytes // (1024 * 1024)}MB上限",
                    code="FILE_TOO_LARGE",
                    field="file",
                )
            import_id = new_id("I")
        summary = await self.run_student_file(
            caller,
            content=content,
            file_name=file_name,
            import_id=import_id,
            source_system=source_system or "学籍系统",
            write=not dry_run,
            skip_invalid=skip_invalid,
        )
        summary.dry_run = dry_run
        ttl = timedelta(seconds=d.settings.import_ttl_s)
        summary.expires_at = now + ttl if dry_run else None
        record = {
            "status": "staged" if dry_run else ("committed" if summary.committed else "rejected"),
            "total_rows": summary.total_rows,
            "valid_rows": summary.valid_rows,
            "error_rows": summary.error_rows,
            "created_count": summary.created_count,
            "updated_count": summary.updated_count,
            "unchanged_count": summary.unchanged_count,
            "errors": pack_errors(summary.errors),
            "expires_at": now + ttl,
            "committed_at": now if summary.committed else None,
            "content": content if dry_run else None,
        }
        async with d.db.write() as session:
            if staged is not None:
                await d.imports.update(session, import_id, record)
            else:
                await d.imports.add(
                    session,
                    {
                        "import_id": import_id,
                        "kind": "students",
                        "org_code": caller.org_code,
                        "org_path": caller.org_path,
                        "account_id": caller.account_id,
                        "file_name": file_name[:200],
                        "options": json.dumps(
                            {"source_system": source_system, "skip_invalid": skip_invalid},
                            ensure_ascii=False,
                        ),
                        "created_at": now,
                        **record,
                    },
                )
        summary.errors_truncated = len(summary.errors) > SHOWN_ERRORS
        summary.errors = summary.errors[:SHOWN_ERRORS]
        return summary

    @gc_paused
    async def run_student_file(
        self,
        caller: CallerContext,
        *,
        content: bytes,
        file_name: str,
        import_id: str,
        source_system: str,
        write: bool,
        skip_invalid: bool,
    ) -> ImportSummaryView:
        """Parse, validate and (when write) store a 学籍 file in one transaction; a file with an
        invalid row writes nothing unless skip_invalid. Also what the roster-sync bench times.
        The cyclic collector is paused meanwhile: a million rows' short-lived acyclic objects
        would set it off again and again (measured: 16 % of a sync's time)."""
        d = self.d
        table = files.open_table(
            content,
            file_name,
            aliases=COLUMN_ALIASES,
            required=REQUIRED_COLUMNS,
            labels=COLUMNS,
            max_rows=d.settings.import_max_rows,
        )
        today = d.today()
        ctx = SyncContext(
            caller=caller,
            source_system=source_system,
            batch_id=import_id,
            today=today,
            now=d.now(),
            write=write,
        )
        errors: list[RowError] = []
        total = error_rows = 0
        committed = False
        session_cm = d.db.write() if write else d.db.read()
        try:
            async with session_cm as session:
                if write:
                    # Inserting into indexes keyed by random blind indexes: a bigger page cache
                    # for this connection keeps them in memory (SQLite's default is 2 MiB); the
                    # commit leaves the log to a background checkpoint.
                    await bulk_transaction(session, cache_kib=d.settings.sqlite_cache_kib)
                try:
                    async for items in self._prepared(content, file_name, table, today):
                        outcomes = await self.applier.apply(session, ctx, items)
                        for o in outcomes:
                            total += 1
                            if o.errors:
                                error_rows += 1
                                if len(errors) < 100_000:
                                    errors.extend(o.errors)
                        if error_rows and not skip_invalid:
                            ctx.write = False  # keep validating to report every error
                        if total > d.settings.import_max_rows:
                            raise InvalidArgument(
                                f"文件行数超过上限{d.settings.import_max_rows}行，请拆分后上传",
                                code="FILE_TOO_MANY_ROWS",
                                field="file",
                            )
                    if write and error_rows and not skip_invalid:
                        raise _Abort
                    await self.applier.finish(session, ctx)
                except BaseException:
                    await self.applier.abandon(ctx)
                    raise
                committed = write
        except _Abort:
            committed = False
        if total == 0:
            raise InvalidArgument("文件中没有数据行", code="FILE_EMPTY", field="file")
        return ImportSummaryView(
            import_id=import_id,
            file_name=file_name,
            total_rows=total,
            valid_rows=total - error_rows,
            error_rows=error_rows,
            dry_run=not write,
            committed=committed,
            created_count=ctx.created if committed or not write else 0,
            updated_count=ctx.updated if committed or not write else 0,
            unchanged_count=ctx.unchanged if committed else 0,
            errors=errors,
            errors_truncated=False,
            expires_at=None,
        )

    async def _prepared(
        self, content: bytes, file_name: str, table: files.Table, today: date
    ) -> AsyncIterator[list[Prepared]]:
        """Prepared rows of a file in chunks: in worker processes for large plain CSV files
        (split by lines), in-process otherwise."""
        d = self.d
        size = d.settings.sync_chunk_rows
        pool = d.pool
        if pool is not None and not content.startswith(b"PK"):
            body = files.csv_body(content)
            if body is not None and body.count(b"\n") >= d.settings.sync_pool_min_rows:
                fields = sorted(table.fields.items())
                async for items in pool.prepare_segments(
                    csv_segments(body, 2, size), fields, today
                ):
                    yield items
                return
        if pool is not None and len(content) > 64 * d.settings.sync_pool_min_rows:
            async for items in pool.prepare_chunks(_chunked(table.rows, size), today):
                yield items
            return
        for chunk in _chunked(table.rows, size):
            yield d.preparer.many(chunk, today)

    def template(self, fmt: str) -> FileView:
        """The 学籍 import template."""
        if fmt.lower() == "csv":
            return FileView(
                "学籍学生信息导入模板.csv",
                files.CSV,
                files.template_csv(COLUMNS, EXAMPLE_ROW),
            )
        if fmt and fmt.lower() != "xlsx":
            raise InvalidArgument("模板格式应为xlsx或csv", code="TEMPLATE_FORMAT", field="format")
        notes = [
            "学籍学生信息导入模板（第一行为列名，请勿修改；第二行为示例，导入前请删除）。",
            "红色列为必填。身份证件号码与学籍号至少填写一项：无身份证的学生填写J或L字头全国学籍号。",
            "日期格式为YYYY-MM-DD或YYYYMMDD；学籍状态为转学、毕业、退学、死亡时须填写状态变动日期。",
            "同一学生以证件号码（或全国学籍号）识别：已存在的学生按文件内容更新，变动保留历史记录。",
            "文件中有错误行时整个文件不导入（可选择仅导入正确的行）；错误报告可下载。",
        ]
        return FileView(
            "学籍学生信息导入模板.xlsx",
            files.XLSX,
            files.template_xlsx(
                title="学生信息",
                columns=COLUMNS,
                example=EXAMPLE_ROW,
                notes=notes,
                required=REQUIRED_COLUMNS,
                lists={
                    "学段": ["学前教育", "义务教育", "普通高中", "中职", "本专科", "研究生"],
                    "学籍状态": list(STATUS_NAMES.values()),
                    "证件类型": [k for k in ID_TYPE_ALIASES if k and not k.isdigit()],
                },
            ),
        )

    async def import_report(self, caller: CallerContext, import_id: str) -> FileView:
        """The row-level error report of an import (students or recognitions)."""
        async with self.d.db.read() as session:
            row = await self.d.imports.get(session, import_id)
        if row is None or not caller.in_scope(row.org_path):
            raise NotFound("导入批次不存在", code="IMPORT_NOT_FOUND", field="import_id")
        title = "学生信息导入" if row.kind == "students" else "困难认定导入"
        return FileView(
            f"{title}错误报告_{import_id}.xlsx",
            files.XLSX,
            files.error_report_xlsx(unpack_errors(row.errors), title=title),
        )

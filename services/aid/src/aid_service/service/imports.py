"""Template import (模板批量导入): download the template, upload → every row validated → a dry
run report (row, column, value, reason in Chinese; downloadable as .xlsx) → commit all or nothing.

Committing the same file again for the same project, period and school creates nothing: it
answers with the earlier import. A staged import can be committed by id until it expires; the
commit re-validates everything (window, roster, duplicates) first.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.errors import Conflict, FailedPrecondition, InvalidArgument
from zizhu_common.idnumber import mask_id_number
from zizhu_common.rpc import CallerContext

from aid_service import tables, xlsx
from aid_service.bulk import paused_gc
from aid_service.domain.enums import Action, IdType, Level, Phase
from aid_service.domain.orgs import OrgNode
from aid_service.domain.periods import AidPeriod
from aid_service.domain.projects import Project
from aid_service.domain.records import IdBlock, new_id
from aid_service.repository.imports import COMMITTED, FAILED, STAGED, StoredImport
from aid_service.repository.records import sqlite_datetime
from aid_service.roster import MAX_CHECKS_PER_CALL, EnrollmentAnswer
from aid_service.service.context import (
    BANK_CARD_CONTEXT,
    Deps,
    is_system,
    out_of_scope,
    require_levels,
    require_roles,
    school_of,
)
from aid_service.service.entry import (
    Checked,
    EntryRow,
    LocalChecks,
    RosterAnswers,
    RowIssue,
    build_records,
    bulk_row_parts,
    check_in_database,
    enrollment_queries,
    exclusive_projects,
    record_tuples,
    slot_issues,
    slot_keys,
)
from aid_service.service.projects import visible
from aid_service.service.records import RecordService
from aid_service.service.windows import WindowGate

log = logging.getLogger(__name__)

SUMMARY_ERRORS = 1000
# Rows validated per step of the pipeline, one CheckEnrollment call each.
CHUNK_ROWS = MAX_CHECKS_PER_CALL


@dataclass
class ImportResult:
    """What an upload or commit answers (common.v1.ImportSummary)."""

    import_id: str
    file_name: str
    total_rows: int
    valid_rows: int
    error_rows: int
    dry_run: bool
    committed: bool
    created_count: int
    errors: list[dict[str, Any]] = field(default_factory=list)
    errors_truncated: bool = False
    expires_at: datetime | None = None


Sink = Callable[[list[EntryRow], list[RowIssue]], Awaitable[list[EntryRow]]]


class _Rejected(Exception):
    """A committing import found problems: roll its records back, keep its errors."""

    def __init__(self, checked: Checked) -> None:
        super().__init__("import rejected")
        self.checked = checked


@dataclass(frozen=True)
class Upload:
    """A file as uploaded."""

    file_name: str
    content: bytes


def _rows(raws: Sequence[xlsx.RawRow]) -> tuple[list[EntryRow], list[RowIssue]]:
    """Entry rows from template rows; cells that cannot be read become row issues."""
    with paused_gc():
        return _entry_rows(raws)


def _entry_rows(raws: Sequence[xlsx.RawRow]) -> tuple[list[EntryRow], list[RowIssue]]:
    rows: list[EntryRow] = []
    issues: list[RowIssue] = []
    id_type_of = xlsx.id_type_of
    parse_yuan = xlsx.parse_yuan
    for raw in raws:
        bad = False
        id_type = id_type_of(raw.id_type)
        if id_type is None:
            issues.append(RowIssue(raw.row, "id_type", raw.id_type, "ID_TYPE_INVALID",
                                   "证件类型无效，请从下拉列表选择"))  # fmt: skip
            bad = True
        if raw.id_number_numeric:
            issues.append(RowIssue(raw.row, "id_number", mask_id_number(raw.id_number),
                                   "ID_NUMBER_NOT_TEXT",
                                   "身份证件号码须以文本格式填写（数字格式会丢失末尾数字）"))  # fmt: skip
            bad = True
        amount = 0
        if raw.amount:
            try:
                amount = parse_yuan(raw.amount)
            except ValueError:
                issues.append(RowIssue(raw.row, "amount", raw.amount, "AMOUNT_INVALID",
                                       "资助金额应为数字（元），最多两位小数"))  # fmt: skip
                bad = True
        if bad:
            continue
        rows.append(
            EntryRow(
                row=raw.row,
                student_name=raw.student_name,
                id_number=raw.id_number.upper(),
                id_type=id_type or IdType.RESIDENT_ID,
                student_number=raw.student_number,
                tier_code=raw.tier_code,
                amount_fen=amount,
                bank_name=raw.bank_name,
                bank_card_number=raw.bank_card_number.replace(" ", ""),
                remark=raw.remark,
            )
        )
    return rows, issues


def _summary(
    imp: StoredImport, *, dry_run: bool, errors: list[dict[str, Any]] | None = None
) -> ImportResult:
    errs = imp.errors if errors is None else errors
    return ImportResult(
        import_id=imp.import_id,
        file_name=imp.file_name,
        total_rows=imp.total_rows,
        valid_rows=imp.valid_rows,
        error_rows=imp.error_rows,
        dry_run=dry_run,
        committed=imp.status == COMMITTED,
        created_count=imp.created_count,
        errors=errs[:SUMMARY_ERRORS],
        errors_truncated=len(errs) > SUMMARY_ERRORS,
        expires_at=imp.expires_at,
    )


class ImportService:
    """Templates, uploads, commits and reports."""

    def __init__(self, deps: Deps, records: RecordService) -> None:
        self.deps = deps
        self.records = records
        # Seconds imports spent blocked on roster's answers, beyond the time their own work
        # overlapped with the calls (for operators and benchmarks).
        self.roster_blocked_s = 0.0

    async def template(self, caller: CallerContext, project_code: str) -> tuple[str, bytes]:
        """The .xlsx template of a project visible to the caller."""
        async with self.deps.db.read() as session:
            project = await self.deps.projects.get(session, project_code)
        if project is None or not visible(caller, project):
            raise out_of_scope("项目", field="project_code")
        return f"{project.name}-资助名单导入模板.xlsx", xlsx.template(project)

    async def _target(
        self, caller: CallerContext, project_code: str, period: AidPeriod, school_org_code: str
    ) -> tuple[OrgNode, Project]:
        async with self.deps.db.read() as session:
            school = await school_of(self.deps, session, caller, school_org_code)
            project = await self.records.project_for_entry(
                session, caller, project_code, school, period
            )
            await WindowGate(self.deps, session, self.deps.now()).require_open(
                project.project_code, period, school.org_path, Phase.ENTRY
            )
        return school, project

    async def run(
        self,
        caller: CallerContext,
        *,
        project_code: str,
        period: AidPeriod,
        school_org_code: str,
        upload: Upload | None,
        import_id: str,
        dry_run: bool,
        submit: bool,
    ) -> ImportResult:
        """Validate an upload (dry run: stage it) or commit it, all or nothing."""
        # The rows of a large file are a million live objects: the cyclic collector stays out
        # of the way for the whole import (reference counting frees them).
        with paused_gc():
            return await self._run(
                caller, project_code=project_code, period=period,
                school_org_code=school_org_code, upload=upload, import_id=import_id,
                dry_run=dry_run, submit=submit,
            )  # fmt: skip

    async def _run(
        self,
        caller: CallerContext,
        *,
        project_code: str,
        period: AidPeriod,
        school_org_code: str,
        upload: Upload | None,
        import_id: str,
        dry_run: bool,
        submit: bool,
    ) -> ImportResult:
        require_roles(caller, "operator", what="导入资助名单")
        require_levels(caller, Level.SCHOOL, what="导入资助名单")
        if upload is None and not import_id:
            raise InvalidArgument(
                "请上传文件或指定已校验的导入批次", code="FILE_REQUIRED", field="file"
            )
        staged: StoredImport | None = None
        if upload is None:
            # The import names the school: outside the caller's subtree it does not exist.
            async with self.deps.db.read() as session:
                staged = await self.deps.imports.get(session, import_id, with_content=True)
            if staged is None or not (is_system(caller) or caller.in_scope(staged.school_org_path)):
                raise out_of_scope("导入批次", field="import_id")
        school, project = await self._target(caller, project_code, period, school_org_code)
        if staged is not None:
            staged = self._check_staged(staged, project, period, school)
            assert staged.content is not None
            upload = Upload(staged.file_name, staged.content)
        assert upload is not None
        sha = hashlib.sha256(upload.content).hexdigest()
        if not dry_run:
            async with self.deps.db.read() as session:
                earlier = await self.deps.imports.committed_with_hash(
                    session, sha256=sha, project_code=project.project_code, period=period,
                    school=school.org_code,
                )  # fmt: skip
            if earlier is not None:
                log.info("import %s repeats committed import %s", import_id, earlier.import_id)
                return _summary(earlier, dry_run=False)
        started = time.perf_counter()
        blocked = self.roster_blocked_s
        parsed = xlsx.parse_upload(upload.content, project_code=project.project_code)
        total = len(parsed.rows)
        parsed_at = time.perf_counter()
        now = self.deps.now()
        new_import_id = staged.import_id if staged else new_id("I")
        if not dry_run and not submit and not project.quota_per_school:
            result = await self._commit_streaming(
                caller, new_import_id, staged, project, period, school, upload, sha,
                parsed.rows, submit, now,
            )  # fmt: skip
            log.info(
                "import %s of %d rows: parsed in %.2f s, checked and stored in %.2f s (%.2f s "
                "blocked on roster's answers)", new_import_id, total, parsed_at - started,
                time.perf_counter() - parsed_at, self.roster_blocked_s - blocked,
            )  # fmt: skip
            return result
        checked = await self._validate(
            caller, project, period, school, parsed.rows, seal=not dry_run
        )
        log.info(
            "import of %d rows (%s): parsed in %.2f s, checked in %.2f s (%.2f s blocked on "
            "roster's answers)", total, "dry run" if dry_run else "commit", parsed_at - started,
            time.perf_counter() - parsed_at, self.roster_blocked_s - blocked,
        )  # fmt: skip
        if dry_run:
            async with self.deps.db.read() as session:
                checked = await check_in_database(
                    self.deps, session, project, period, school, checked, slots_checked=True
                )
            return await self._stage(caller, new_import_id, project, period, school, upload, sha,
                                     checked, total, submit, now)  # fmt: skip
        return await self._commit(caller, new_import_id, staged, project, period, school, upload,
                                  sha, checked, total, submit, now)  # fmt: skip

    async def _validate(
        self,
        caller: CallerContext,
        project: Project,
        period: AidPeriod,
        school: OrgNode,
        raws: Sequence[xlsx.RawRow],
        *,
        seal: bool,
        sink: Sink | None = None,
    ) -> Checked:
        """Every row through the local checks and roster's, as a pipeline: the file goes in
        chunks of CHUNK_ROWS; each chunk's CheckEnrollment call is sent as soon as its local
        checks are done and roster answers it (another process) while the next chunks are
        checked and their bank card numbers sealed (when committing). Answers are applied in
        row order, so "same student as row N" names the first row as before. Each chunk's rows
        that passed (slots looked up too) go to sink when given, in row order, and the rows it
        keeps are the result."""
        local = LocalChecks(project, today=self.deps.today())
        confirm = RosterAnswers(project)
        check = self.deps.roster.check_enrollment
        cipher = self.deps.cipher
        issues: list[RowIssue] = []
        ok: list[EntryRow] = []
        pending: deque[tuple[list[EntryRow], asyncio.Task[list[EnrollmentAnswer]]]] = deque()
        # Confirmed rows, their slots and the lookup of the slots already taken (one read per
        # chunk, two at a time, while the pipeline goes on).
        slots: list[tuple[list[EntryRow], list[str], asyncio.Task[dict[str, str]]]] = []
        reads = asyncio.Semaphore(2)

        async def taken(keys: list[str]) -> dict[str, str]:
            async with reads, self.deps.db.read() as session:
                return await self.deps.records.taken_slots(session, keys)

        async def drain(*, wait: bool) -> None:
            """Chunks whose slot lookup is done (the next one's awaited when wait), in order."""
            while slots and (wait or slots[0][2].done()):
                rows, keys, lookup = slots.pop(0)
                found = await lookup
                found.pop("", None)
                passed = slot_issues(project, period, rows, keys, found, issues)
                ok.extend(await sink(passed, issues) if sink is not None else passed)
                wait = False

        def fold() -> None:
            rows, task = pending.popleft()
            confirmed = confirm.apply(rows, task.result(), issues)
            if confirmed:
                keys = slot_keys(project, period, confirmed)
                slots.append((confirmed, keys, asyncio.create_task(taken(keys))))

        try:
            for start in range(0, len(raws), CHUNK_ROWS):
                rows, cell_issues = _rows(raws[start : start + CHUNK_ROWS])
                checked = local.check(rows)
                issues.extend(cell_issues)
                issues.extend(checked.issues)
                passed = checked.rows
                if passed:
                    queries = enrollment_queries(project, period, school, passed)
                    pending.append((passed, asyncio.create_task(check(caller, queries))))
                    if seal:
                        cards = cipher.encrypt_many(
                            [r.bank_card_number for r in passed],
                            context=BANK_CARD_CONTEXT,
                            keep_empty=True,
                        )
                        for r, card in zip(passed, cards, strict=True):
                            r.bank_card_sealed = card
                while pending and pending[0][1].done():
                    fold()
                await drain(wait=False)
                await asyncio.sleep(0)  # let the calls go out
            while pending:
                task = pending[0][1]
                while not task.done():
                    # Waiting for roster: chunks already confirmed are stored meanwhile.
                    waiting: set[asyncio.Future[Any]] = {task}
                    if slots:
                        waiting.add(slots[0][2])
                    started = time.perf_counter()
                    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                    self.roster_blocked_s += time.perf_counter() - started
                    await drain(wait=False)
                fold()
                await drain(wait=False)
            while slots:
                await drain(wait=True)
        finally:
            tasks: list[asyncio.Task[Any]] = [task for _, task in pending]
            tasks += [lookup for _, _, lookup in slots if not lookup.done()]
            if tasks:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        issues.sort(key=lambda i: i.row)
        return Checked(ok, issues)

    async def _commit_streaming(
        self,
        caller: CallerContext,
        import_id: str,
        staged: StoredImport | None,
        project: Project,
        period: AidPeriod,
        school: OrgNode,
        upload: Upload,
        sha: str,
        raws: Sequence[xlsx.RawRow],
        submit: bool,
        now: datetime,
    ) -> ImportResult:
        """Commit a file of draft records (no quota to count), storing while validating: the
        writing transaction is open from the start, and each chunk that passed every check
        (mutually exclusive projects included) is inserted while the next ones are checked.
        The first problem anywhere stops the inserts; the transaction then rolls back and only
        the import's summary and errors are kept: all or nothing, as before."""
        total = len(raws)
        imp = StoredImport(
            import_id=import_id, project_code=project.project_code, period=period,
            school_org_code=school.org_code, school_org_path=school.org_path,
            file_name=upload.file_name or "upload.xlsx", file_sha256=sha, status=FAILED,
            total_rows=total, valid_rows=0, error_rows=0, created_count=0, submit=submit,
            created_by=caller.account_id, created_at=now,
            expires_at=now + timedelta(seconds=self.deps.settings.import_ttl_s),
        )  # fmt: skip
        storing = time.perf_counter()
        try:
            async with self.deps.db.write() as session:
                await WindowGate(self.deps, session, self.deps.now()).require_open(
                    project.project_code, period, school.org_path, Phase.ENTRY
                )
                sqlite = session.bind.dialect.name == "sqlite"
                now_value = sqlite_datetime(now) if sqlite else now
                exclusive = bool(await exclusive_projects(self.deps, session, project))
                writer = await self.deps.records.writer(session, bulk=total > CHUNK_ROWS)
                ids = IdBlock("R")

                async def store(rows: list[EntryRow], issues: list[RowIssue]) -> list[EntryRow]:
                    checked = Checked(rows, issues)
                    if exclusive:
                        await writer.flush()
                        checked = await check_in_database(
                            self.deps, session, project, period, school, checked,
                            slots_checked=True,
                        )  # fmt: skip
                    if not checked.issues and checked.rows:
                        part = record_tuples(self.deps, caller, project, period, school,
                                             checked.rows, ids, import_id=import_id,
                                             now_value=now_value)  # fmt: skip
                        await writer.add(part)
                    return checked.rows

                try:
                    checked = await self._validate(
                        caller, project, period, school, raws, seal=True, sink=store
                    )
                    if checked.issues:
                        raise _Rejected(checked)
                    await writer.close()
                except BaseException:
                    await writer.abort()
                    raise
                imp.status, imp.committed_at = COMMITTED, now
                imp.valid_rows = imp.created_count = len(checked.rows)
                await self._keep(session, imp, staged)
        except _Rejected as rejected:
            errors = [i.as_dict() for i in rejected.checked.issues]
            bad_rows = len({e["row"] for e in errors})
            imp.valid_rows, imp.error_rows, imp.errors = total - bad_rows, bad_rows, errors
            async with self.deps.db.write() as session:
                await self._keep(session, imp, staged)
        except IntegrityError:
            raise Conflict(
                "导入期间有相同学生的记录被录入，请重新校验后提交", code="IMPORT_CONFLICT"
            ) from None
        log.info(
            "import %s: %d records stored (%s) in %.2f s", import_id, imp.created_count,
            "committed" if imp.status == COMMITTED else "rejected", time.perf_counter() - storing,
        )  # fmt: skip
        return _summary(imp, dry_run=False)

    def _check_staged(
        self, staged: StoredImport, project: Project, period: AidPeriod, school: OrgNode
    ) -> StoredImport:
        if (staged.project_code, staged.period, staged.school_org_code) != (
            project.project_code,
            period,
            school.org_code,
        ):
            raise InvalidArgument(
                "导入批次与所选项目、资助周期或学校不一致",
                code="IMPORT_MISMATCH",
                field="import_id",
            )
        if staged.status == COMMITTED:
            raise FailedPrecondition(
                "该导入批次已提交", code="IMPORT_ALREADY_COMMITTED", field="import_id"
            )
        if staged.content is None or staged.expires_at <= self.deps.now():
            raise FailedPrecondition(
                "该导入批次已过期，请重新上传文件", code="IMPORT_EXPIRED", field="import_id"
            )
        return staged

    async def _stage(
        self,
        caller: CallerContext,
        import_id: str,
        project: Project,
        period: AidPeriod,
        school: OrgNode,
        upload: Upload,
        sha: str,
        checked: Checked,
        total: int,
        submit: bool,
        now: datetime,
    ) -> ImportResult:
        errors = [i.as_dict() for i in sorted(checked.issues, key=lambda i: i.row)]
        bad_rows = len({e["row"] for e in errors})
        imp = StoredImport(
            import_id=import_id,
            project_code=project.project_code,
            period=period,
            school_org_code=school.org_code,
            school_org_path=school.org_path,
            file_name=upload.file_name or "upload.xlsx",
            file_sha256=sha,
            status=STAGED,
            total_rows=total,
            valid_rows=total - bad_rows,
            error_rows=bad_rows,
            created_count=0,
            submit=submit,
            created_by=caller.account_id,
            created_at=now,
            expires_at=now + timedelta(seconds=self.deps.settings.import_ttl_s),
            content=upload.content,
            errors=errors,
        )
        async with self.deps.db.write() as session:
            existing = await self.deps.imports.get(session, import_id)
            if existing is None:
                await self.deps.imports.insert(session, imp)
            else:
                await self.deps.imports.finish(
                    session, import_id, status=STAGED, total_rows=total, valid_rows=imp.valid_rows,
                    error_rows=bad_rows, created_count=0, errors=errors, committed_at=None,
                )  # fmt: skip
        return _summary(imp, dry_run=True, errors=errors)

    async def _commit(
        self,
        caller: CallerContext,
        import_id: str,
        staged: StoredImport | None,
        project: Project,
        period: AidPeriod,
        school: OrgNode,
        upload: Upload,
        sha: str,
        checked: Checked,
        total: int,
        submit: bool,
        now: datetime,
    ) -> ImportResult:
        imp = StoredImport(
            import_id=import_id,
            project_code=project.project_code,
            period=period,
            school_org_code=school.org_code,
            school_org_path=school.org_path,
            file_name=upload.file_name or "upload.xlsx",
            file_sha256=sha,
            status=FAILED,
            total_rows=total,
            valid_rows=0,
            error_rows=0,
            created_count=0,
            submit=submit,
            created_by=caller.account_id,
            created_at=now,
            expires_at=now + timedelta(seconds=self.deps.settings.import_ttl_s),
        )
        storing = time.perf_counter()
        try:
            async with self.deps.db.write() as session:
                await WindowGate(self.deps, session, self.deps.now()).require_open(
                    project.project_code, period, school.org_path, Phase.ENTRY
                )
                checked = await check_in_database(
                    self.deps, session, project, period, school, checked, slots_checked=True
                )
                errors = [i.as_dict() for i in sorted(checked.issues, key=lambda i: i.row)]
                bad_rows = len({e["row"] for e in errors})
                imp.valid_rows, imp.error_rows, imp.errors = total - bad_rows, bad_rows, errors
                if not errors:
                    if submit:
                        records = build_records(
                            self.deps, caller, project, period, school, checked.rows,
                            action=Action.IMPORTED, import_id=import_id,
                        )  # fmt: skip
                        transitions, outgoing = await self.records.mark_submitted(
                            session, caller, records, {project.project_code: project}, now
                        )
                        await self.deps.records.insert_many(session, records)
                        await self.deps.records.add_transitions(session, transitions)
                        await self.deps.outbox.add_many(session, outgoing)
                    else:
                        sqlite = session.bind.dialect.name == "sqlite"
                        parts = bulk_row_parts(
                            self.deps, caller, project, period, school, checked.rows,
                            import_id=import_id,
                            now_value=sqlite_datetime(now) if sqlite else now,
                        )  # fmt: skip
                        writer = await self.deps.records.writer(
                            session, bulk=len(checked.rows) > CHUNK_ROWS
                        )
                        try:
                            for part in parts:
                                await writer.add(part)
                        except BaseException:
                            await writer.abort()
                            raise
                        await writer.close()
                    imp.status, imp.committed_at = COMMITTED, now
                    imp.created_count = len(checked.rows)
                await self._keep(session, imp, staged)
            log.info(
                "import %s: %d records stored in %.2f s", import_id, imp.created_count,
                time.perf_counter() - storing,
            )  # fmt: skip
        except IntegrityError:
            raise Conflict(
                "导入期间有相同学生的记录被录入，请重新校验后提交", code="IMPORT_CONFLICT"
            ) from None
        return _summary(imp, dry_run=False)

    async def _keep(
        self, session: AsyncSession, imp: StoredImport, staged: StoredImport | None
    ) -> None:
        if staged is None:
            await self.deps.imports.insert(session, imp)
            return
        await self.deps.imports.finish(
            session, imp.import_id, status=imp.status if imp.status == COMMITTED else STAGED,
            total_rows=imp.total_rows, valid_rows=imp.valid_rows, error_rows=imp.error_rows,
            created_count=imp.created_count, errors=imp.errors, committed_at=imp.committed_at,
        )  # fmt: skip

    async def report(self, caller: CallerContext, import_id: str) -> tuple[str, bytes]:
        """The row-level error report of an import as .xlsx."""
        async with self.deps.db.read() as session:
            imp = await self.deps.imports.get(session, import_id, with_errors=True)
        if imp is None or not (is_system(caller) or caller.in_scope(imp.school_org_path)):
            raise out_of_scope("导入批次", field="import_id")
        title = f"{imp.file_name}：共{imp.total_rows}行，{imp.error_rows}行有错误" + (
            "，已全部导入" if imp.status == COMMITTED else "，未导入"
        )
        return f"导入错误报告-{imp.import_id}.xlsx", xlsx.report(imp.errors, title=title)

    async def purge_expired(self) -> int:
        """Drop the files of staged imports past their expiry (the summaries stay)."""
        t = tables.aid_import
        async with self.deps.db.write() as session:
            result = await session.execute(
                update(t)
                .where(
                    t.c.status == STAGED, t.c.expires_at < self.deps.now(), t.c.content.is_not(None)
                )
                .values(content=None)
            )
        return int(result.rowcount or 0)

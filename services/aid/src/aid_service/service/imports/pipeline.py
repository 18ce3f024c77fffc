"""The validation pipeline of a template import: rows checked locally and by roster in chunks
while the next chunks are prepared, and the streaming commit that stores each chunk that passed
while validating (mixed into ImportService)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from zizhu_common.errors import Conflict
from zizhu_common.rpc import CallerContext

from aid_service import xlsx
from aid_service.domain.enums import Phase
from aid_service.domain.orgs import OrgNode
from aid_service.domain.periods import AidPeriod
from aid_service.domain.projects import Project
from aid_service.domain.records import IdBlock
from aid_service.repository.imports import COMMITTED, FAILED, StoredImport
from aid_service.repository.records import sqlite_datetime
from aid_service.roster import EnrollmentAnswer
from aid_service.service.context import BANK_CARD_CONTEXT
from aid_service.service.entry import (
    Checked,
    EntryRow,
    LocalChecks,
    RosterAnswers,
    RowIssue,
    check_in_database,
    enrollment_queries,
    exclusive_projects,
    record_tuples,
    slot_issues,
    slot_keys,
)
from aid_service.service.imports.commit import _Staging
from aid_service.service.imports.rows import (
    CHUNK_ROWS,
    ImportResult,
    Sink,
    Upload,
    _Rejected,
    _rows,
    _summary,
    log,
)
from aid_service.service.windows import WindowGate


class _Pipeline(_Staging):
    """Validating rows in chunks, and committing while validating (mixed into ImportService)."""

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
                    queries = enrollment_queries(
                        project, period, school, passed, self.deps.blind_index
                    )
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
                    started, busy = time.perf_counter(), time.thread_time()
                    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                    # Idle time only: other tasks (SQLite's inserts) may run meanwhile.
                    self.roster_blocked_s += max(
                        0.0, time.perf_counter() - started - (time.thread_time() - busy)
                    )
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

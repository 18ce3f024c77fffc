"""Staging and committing a checked import: a staged dry run with its row errors, or an all or
nothing commit that re-checks the rows in the writing transaction (mixed into ImportService)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.errors import Conflict, FailedPrecondition, InvalidArgument
from zizhu_common.rpc import CallerContext

from aid_service.domain.enums import Action, Phase
from aid_service.domain.orgs import OrgNode
from aid_service.domain.periods import AidPeriod
from aid_service.domain.projects import Project
from aid_service.repository.imports import COMMITTED, FAILED, STAGED, StoredImport
from aid_service.repository.records import sqlite_datetime
from aid_service.service.context import Deps
from aid_service.service.entry import Checked, build_records, bulk_row_parts, check_in_database
from aid_service.service.imports.rows import CHUNK_ROWS, ImportResult, Upload, _summary, log
from aid_service.service.records import RecordService
from aid_service.service.windows import WindowGate


class _Staging:
    """Staging and committing checked rows (mixed into ImportService)."""

    deps: Deps
    records: RecordService
    roster_blocked_s: float

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

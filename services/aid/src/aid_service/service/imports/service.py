"""ImportService: the template download, the upload / commit entry point, the error report and
the purge of expired staged files; validation and storing live in the pipeline and commit
modules."""

from __future__ import annotations

import hashlib
import time

from sqlalchemy import update
from zizhu_common.bulk import paused_gc
from zizhu_common.errors import InvalidArgument
from zizhu_common.rpc import CallerContext

from aid_service import tables, xlsx
from aid_service.domain.enums import Level, Phase
from aid_service.domain.orgs import OrgNode
from aid_service.domain.periods import AidPeriod
from aid_service.domain.projects import Project
from aid_service.domain.records import new_id
from aid_service.repository.imports import COMMITTED, STAGED, StoredImport
from aid_service.service.context import (
    Deps,
    is_system,
    out_of_scope,
    require_levels,
    require_roles,
    school_of,
)
from aid_service.service.entry import check_in_database
from aid_service.service.imports.pipeline import _Pipeline
from aid_service.service.imports.rows import ImportResult, Upload, _summary, log
from aid_service.service.projects import visible
from aid_service.service.records import RecordService
from aid_service.service.windows import WindowGate


class ImportService(_Pipeline):
    """Templates, uploads, commits and reports."""

    def __init__(self, deps: Deps, records: RecordService) -> None:
        self.deps = deps
        self.records = records
        # Seconds imports' loop thread sat idle waiting for roster's answers, beyond the time
        # their own work overlapped with the calls (for operators and benchmarks).
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

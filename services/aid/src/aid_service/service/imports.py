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
from aid_service.domain.records import new_id
from aid_service.repository.imports import COMMITTED, FAILED, STAGED, StoredImport
from aid_service.repository.records import sqlite_datetime
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
    RowIssue,
    build_records,
    bulk_rows,
    check_in_database,
    check_locally,
    check_with_roster,
)
from aid_service.service.projects import visible
from aid_service.service.records import RecordService
from aid_service.service.windows import WindowGate

log = logging.getLogger(__name__)

SUMMARY_ERRORS = 1000


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


@dataclass(frozen=True)
class Upload:
    """A file as uploaded."""

    file_name: str
    content: bytes


def _rows(parsed: xlsx.ParsedUpload) -> tuple[list[EntryRow], list[RowIssue]]:
    """Entry rows from template rows; cells that cannot be read become row issues."""
    with paused_gc():
        return _entry_rows(parsed)


def _entry_rows(parsed: xlsx.ParsedUpload) -> tuple[list[EntryRow], list[RowIssue]]:
    rows: list[EntryRow] = []
    issues: list[RowIssue] = []
    id_type_of = xlsx.id_type_of
    parse_yuan = xlsx.parse_yuan
    for raw in parsed.rows:
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
        parsed = xlsx.parse_upload(upload.content, project_code=project.project_code)
        total = len(parsed.rows)
        rows, cell_issues = _rows(parsed)
        checked = check_locally(project, rows, today=self.deps.today())
        checked.issues.extend(cell_issues)
        # Roster answers (another process) while a worker thread seals the bank card numbers.
        to_seal = [] if dry_run else list(checked.rows)
        sealing = asyncio.create_task(
            asyncio.to_thread(
                self.deps.sealer.seal_many,
                [r.bank_card_number for r in to_seal],
                context=BANK_CARD_CONTEXT,
            )
        )
        try:
            checked = await check_with_roster(self.deps, caller, project, period, school, checked)
        finally:
            cards = await sealing
        sealed = {id(r): card for r, card in zip(to_seal, cards, strict=True)}
        now = self.deps.now()
        new_import_id = staged.import_id if staged else new_id("I")
        if dry_run:
            async with self.deps.db.read() as session:
                checked = await check_in_database(
                    self.deps, session, project, period, school, checked
                )
            return await self._stage(caller, new_import_id, project, period, school, upload, sha,
                                     checked, total, submit, now)  # fmt: skip
        return await self._commit(caller, new_import_id, staged, project, period, school, upload,
                                  sha, checked, total, submit, now, sealed)  # fmt: skip

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
        sealed: dict[int, str],
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
        try:
            async with self.deps.db.write() as session:
                await WindowGate(self.deps, session, self.deps.now()).require_open(
                    project.project_code, period, school.org_path, Phase.ENTRY
                )
                checked = await check_in_database(
                    self.deps, session, project, period, school, checked
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
                        rows = bulk_rows(
                            self.deps, caller, project, period, school, checked.rows,
                            [sealed.get(id(r), "") for r in checked.rows], import_id=import_id,
                            now_value=sqlite_datetime(now) if sqlite else now,
                        )  # fmt: skip
                        await self.deps.records.insert_rows(session, rows)
                    imp.status, imp.committed_at = COMMITTED, now
                    imp.created_count = len(checked.rows)
                await self._keep(session, imp, staged)
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

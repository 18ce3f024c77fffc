"""Recognition template import (认定结果模板导入): dry run with row errors, staged commit,
all-or-nothing."""

from __future__ import annotations

import json
from datetime import timedelta

from google.protobuf.message import Message
from zizhu_common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from zizhu_common.idnumber import IdentifierError, parse_resident_id
from zizhu_common.rpc import CallerContext

from roster_service import files
from roster_service.domain.common import (
    LEVEL_NAMES,
    ON_ROLL,
    IdType,
    RowError,
    Term,
    new_id,
)
from roster_service.domain.recognition import (
    COLUMN_ALIASES,
    COLUMNS,
    EXAMPLE_ROW,
    RecognitionRow,
    validate_import_row,
)
from roster_service.events import add_events
from roster_service.repository.imports import pack_errors
from roster_service.service.context import Deps
from roster_service.service.views import (
    FileView,
    ImportSummaryView,
)

SHOWN_ERRORS = 1000


def check_term(value: int, field_name: str = "term") -> Term:
    if value not in (Term.AUTUMN, Term.SPRING):
        raise InvalidArgument("学期应为秋季学期或春季学期", code="TERM_REQUIRED", field=field_name)
    return Term(value)


class _Rollback(Exception):
    """Undo an import's writes (dry run, or rows with errors)."""


class RecognitionImportOps:
    """Recognition template import (认定结果模板导入): dry run with row errors, staged commit, (mixed into RecognitionService)."""

    d: Deps

    def template(self) -> FileView:
        """The recognition import template."""
        notes = [
            "家庭经济困难学生认定结果导入模板（第一行为列名，请勿修改；第二行为示例，导入前请删除）。",
            "身份证件号码与学籍号至少填写一项；学生须在本校在籍。",
            "认定档次：特别困难、困难、一般困难、不困难。",
            "认定依据可填写多个特殊群体类别，用顿号分隔，如“低保学生、孤儿学生”。",
            "调整已有认定档次时须填写调整原因。认定日期格式为YYYY-MM-DD或YYYYMMDD。",
            "文件中有任何错误行时整个文件不导入；可下载错误报告修改后重新上传。",
        ]
        return FileView(
            "家庭经济困难学生认定导入模板.xlsx",
            files.XLSX,
            files.template_xlsx(
                title="困难认定",
                columns=COLUMNS,
                example=EXAMPLE_ROW,
                notes=notes,
                required=("level",),
                lists={"认定档次": list(LEVEL_NAMES.values())},
            ),
        )

    async def import_file(
        self,
        caller: CallerContext,
        *,
        school_org_code: str,
        school_year: str,
        term: int,
        file_name: str,
        content: bytes,
        import_id: str,
        dry_run: bool,
    ) -> ImportSummaryView:
        """Validate a recognition file (dry run, staged) or import it all-or-nothing."""
        d = self.d
        now = d.now()
        staged = None
        if import_id:
            async with d.db.read() as session:
                staged = await d.imports.get(session, import_id)
            if (
                staged is None
                or staged.kind != "recognitions"
                or not caller.in_scope(staged.org_path)
            ):
                raise NotFound("导入批次不存在", code="IMPORT_NOT_FOUND", field="import_id")
            if staged.status != "staged" or staged.content is None:
                raise FailedPrecondition(
                    "该导入批次已提交或已失效", code="IMPORT_NOT_STAGED", field="import_id"
                )
            if staged.expires_at.replace(tzinfo=now.tzinfo) < now:
                raise FailedPrecondition(
                    "该导入批次已过期，请重新上传", code="IMPORT_EXPIRED", field="import_id"
                )
            options = json.loads(staged.options)
            content, file_name = staged.content, staged.file_name
            school_org_code, school_year, term = options["school"], options["year"], options["term"]
        elif len(content) > d.settings.import_max_bytes:
            raise ResourceExhausted("文件过大", code="FILE_TOO_LARGE", field="file")
        year = d.school_year(school_year)
        t = check_term(term)
        async with d.db.read() as session:
            school = await d.scope(session, caller, school_org_code)
        if not school.org_code or school.level != "school":
            raise InvalidArgument("请指定学校", code="SCHOOL_REQUIRED", field="school_org_code")
        table = files.open_table(
            content, file_name, aliases=COLUMN_ALIASES, required=("level",), labels=COLUMNS,
            max_rows=200_000,
        )  # fmt: skip
        if not any(f in table.fields.values() for f in ("id_number", "student_number")):
            raise InvalidArgument(
                "文件须包含身份证件号码或学籍号列", code="FILE_COLUMNS_MISSING", field="file"
            )
        today = d.today()
        parsed: list[RecognitionRow] = []
        errors: list[RowError] = []
        total = 0
        for number, raw in table.rows:
            total += 1
            result = validate_import_row(number, raw, today=today)
            if isinstance(result, list):
                errors.extend(result)
            else:
                parsed.append(result)
        if total == 0:
            raise InvalidArgument("文件中没有数据行", code="FILE_EMPTY", field="file")
        import_id = import_id or new_id("I")
        created = updated = 0
        committed = False
        try:
            async with d.db.write() as session:
                keys: dict[int, str] = {}
                bis = {}
                for r in parsed:
                    if r.id_number:
                        try:
                            bis[r.row] = d.id_index(
                                IdType.RESIDENT_ID, parse_resident_id(r.id_number).number
                            )
                        except IdentifierError as exc:
                            errors.append(
                                RowError(
                                    r.row,
                                    COLUMNS["id_number"],
                                    r.id_number[:6] + "****",
                                    exc.code,
                                    exc.message,
                                )
                            )
                by_bi = await d.students.persons_by_bi(session, bis.values())
                numbers = [
                    r.student_number for r in parsed if r.student_number and r.row not in bis
                ]
                by_number = await d.students.students_by_k12_number(session, numbers)
                seen: set[str] = set()
                for r in parsed:
                    sid = (
                        by_bi[bis[r.row]].student_id
                        if r.row in bis and bis[r.row] in by_bi
                        else by_number.get(r.student_number, "")
                    )
                    if r.row in bis and bis[r.row] not in by_bi:
                        sid = ""
                    if not sid:
                        errors.append(
                            RowError(
                                r.row,
                                COLUMNS["id_number"] if r.id_number else COLUMNS["student_number"],
                                r.student_number or "",
                                "STUDENT_NOT_FOUND",
                                "学籍中无此学生",
                            )
                        )
                        continue
                    if sid in seen:
                        errors.append(
                            RowError(
                                r.row,
                                COLUMNS["id_number"],
                                "",
                                "DUPLICATE_IN_FILE",
                                "同一学生在文件中重复",
                            )
                        )
                        continue
                    seen.add(sid)
                    keys[r.row] = sid
                currents = await d.students.current_enrollments(session, list(keys.values()))
                persons = await d.students.persons_by_id(session, list(keys.values()))
                histories = await d.recognitions.rows_for(session, list(keys.values()), [year])
                events: list[tuple[str, Message]] = []
                for r in parsed:
                    sid = keys.get(r.row)
                    if sid is None:
                        continue
                    current = currents.get(sid)
                    if (
                        current is None
                        or current.school_org_code != school.org_code
                        or current.status not in ON_ROLL
                    ):
                        errors.append(
                            RowError(
                                r.row,
                                COLUMNS["id_number"],
                                "",
                                "STUDENT_NOT_AT_SCHOOL",
                                "该学生不在本校在籍",
                            )
                        )
                        continue
                    if r.name and r.name != persons[sid].name:
                        errors.append(
                            RowError(
                                r.row, COLUMNS["name"], r.name, "NAME_MISMATCH", "姓名与学籍不一致"
                            )
                        )
                        continue
                    existing = histories.get((sid, year), [])
                    rid, problems, event = await self._record(
                        session, caller, student_id=sid, school=current, school_year=year, term=t,
                        level=int(r.level), basis_groups=r.basis_groups, basis_note=r.basis_note,
                        recognized_on=r.recognized_on, change_reason=r.change_reason,
                        expected_version=0, import_id=import_id, existing=existing,
                    )  # fmt: skip
                    for field_name, code, message in problems:
                        errors.append(
                            RowError(r.row, COLUMNS.get(field_name, field_name), "", code, message)
                        )
                    if event is not None:
                        events.append(event)
                        if existing:
                            updated += 1
                        else:
                            created += 1
                if errors or dry_run:
                    raise _Rollback
                await add_events(session, d.outbox, events)
                committed = True
        except _Rollback:
            pass
        errors.sort(key=lambda e: e.row)
        error_rows = len({e.row for e in errors})
        ttl = timedelta(seconds=d.settings.import_ttl_s)
        record = {
            "status": "staged"
            if dry_run and not errors
            else ("committed" if committed else "rejected"),
            "total_rows": total,
            "valid_rows": total - error_rows,
            "error_rows": error_rows,
            "created_count": created,
            "updated_count": updated,
            "errors": pack_errors(errors),
            "expires_at": now + ttl,
            "committed_at": now if committed else None,
            "content": content if dry_run and not errors else None,
        }
        async with d.db.write() as session:
            if staged is not None:
                await d.imports.update(session, import_id, record)
            else:
                await d.imports.add(
                    session,
                    {
                        "import_id": import_id,
                        "kind": "recognitions",
                        "org_code": school.org_code,
                        "org_path": school.org_path,
                        "account_id": caller.account_id,
                        "file_name": file_name[:200],
                        "options": json.dumps(
                            {"school": school.org_code, "year": year, "term": int(t)}
                        ),
                        "created_at": now,
                        **record,
                    },
                )
        return ImportSummaryView(
            import_id=import_id,
            file_name=file_name,
            total_rows=total,
            valid_rows=total - error_rows,
            error_rows=error_rows,
            dry_run=dry_run,
            committed=committed,
            created_count=created if committed or dry_run else 0,
            updated_count=updated if committed or dry_run else 0,
            errors=errors[:SHOWN_ERRORS],
            errors_truncated=len(errors) > SHOWN_ERRORS,
            expires_at=now + ttl if dry_run and not errors else None,
        )

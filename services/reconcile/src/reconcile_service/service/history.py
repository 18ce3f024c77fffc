"""The reason dictionary (edited by the nation) and the retired 建档立卡 report: its history
loaded once, shown read-only, and its autumn-2023 reasons carried into the new module."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from zizhu_common.errors import Conflict, InvalidArgument
from zizhu_common.idnumber import IdentifierError, mask_id_number, normalize_resident_id
from zizhu_common.rpc import CallerContext

from reconcile_service.domain.periods import Period
from reconcile_service.domain.reasons import (
    ReasonCode,
    check_dictionary_entry,
    map_legacy_reason,
)
from reconcile_service.repository import records as record_repo
from reconcile_service.repository import runs as run_repo
from reconcile_service.repository.comparison import carry_legacy_reasons
from reconcile_service.repository.readcopy import period_keys
from reconcile_service.repository.records import LegacyRow
from reconcile_service.service.context import (
    Deps,
    audit,
    decode_token,
    encode_token,
    page_limit,
    require,
    resolve_scope,
)
from reconcile_service.service.runs import CARRY_OVER_PERIOD
from reconcile_service.service.unfunded import ALL_LEVELS, BUSINESS

MAX_IMPORT = 5000
RESIDENT_ID = 1


@dataclass
class LegacyInput:
    """One row of the old report to load."""

    period: tuple[str, int]
    project_code: str
    project_name: str
    id_type: int
    id_number: str
    student_name: str
    school_org_code: str
    legacy_reason: str
    reason_code: str
    note: str
    reported_by: str
    reported_at: object | None


@dataclass
class RowProblem:
    """A row the import refuses (row, column, value, why)."""

    row: int
    column: str
    value: str
    code: str
    message: str


class HistoryService:
    """Dictionary and 建档立卡 history."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    # --- dictionary -------------------------------------------------------------------------

    async def dictionary(
        self, caller: CallerContext, *, include_disabled: bool
    ) -> tuple[list[ReasonCode], int]:
        """The reason codes in display order, and the version."""
        async with self.deps.db.read() as session:
            codes, version = await record_repo.dictionary(session)
        return [c for c in codes.values() if include_disabled or c.enabled], version

    async def update_dictionary(
        self, caller: CallerContext, *, entries: Sequence[ReasonCode], expected_version: int
    ) -> tuple[list[ReasonCode], int]:
        """Add or replace codes (nation only); codes are disabled, never deleted."""
        require(
            caller, roles=("admin", "operator"), levels=("national",), action="维护未资助原因字典"
        )
        if not entries:
            raise InvalidArgument("请提供要修改的原因", code="REASONS_REQUIRED", field="reasons")
        seen: set[str] = set()
        for i, entry in enumerate(entries):
            check_dictionary_entry(entry, index=i)
            if entry.code in seen:
                raise InvalidArgument(
                    f"原因代码“{entry.code}”重复",
                    code="REASON_CODE_DUPLICATE",
                    field=f"reasons[{i}].code",
                )
            seen.add(entry.code)
        async with self.deps.db.write() as session:
            _, version = await record_repo.dictionary(session)
            if expected_version and expected_version != version:
                raise Conflict(
                    "原因字典已被他人修改，请刷新后重试",
                    code="DICTIONARY_VERSION_CONFLICT",
                    field="expected_version",
                    details={"version": version},
                )
            version = await record_repo.save_reasons(
                session, entries, actor=caller.account_id, now=self.deps.now()
            )
            await audit(
                self.deps,
                session,
                caller,
                action="UpdateReasonDictionary",
                object_type="reason_code",
                object_id=",".join(e.code for e in entries),
                detail=f"修改未资助原因字典，版本{version}",
            )
            codes, version = await record_repo.dictionary(session)
        return list(codes.values()), version

    # --- retired 建档立卡 report ------------------------------------------------------------

    async def list_legacy(
        self,
        caller: CallerContext,
        *,
        period: Period | None,
        org_code: str,
        project_code: str,
        student_name: str,
        id_number: str,
        page_size: int,
        page_token: str,
    ) -> tuple[list[LegacyRow], str, int]:
        """Reports of schools in scope (read-only history)."""
        require(caller, roles=BUSINESS, levels=ALL_LEVELS, action="查看历史上报原因")
        blind = self.deps.blind_index(id_number) if id_number.strip() else ""
        limit = page_limit(page_size)
        async with self.deps.db.read() as session:
            scope = await resolve_scope(session, caller, org_code)
            period_key = None
            if period is not None:
                row = await run_repo.find_period(session, period)
                if row is None:
                    return [], "", 0
                period_key = row.key
            filters = (scope.org_path, period_key, project_code, student_name, blind)
            position = decode_token(page_token, filters)
            rows, total = await record_repo.list_legacy(
                session,
                scope_path=scope.org_path,
                period_key=period_key,
                project_code=project_code.strip(),
                student_name=student_name.strip(),
                blind_index=blind,
                after=(str(position[0]), int(position[1])) if position else None,
                limit=limit,
            )
            periods = await run_repo.periods_by_key(session, [r.period_key for r in rows])
        for r in rows:
            r.period = periods[r.period_key].period
            r.carried_over = r.period == CARRY_OVER_PERIOD
        token = ""
        if len(rows) == limit:
            token = encode_token([rows[-1].school_org_path, rows[-1].legacy_key], filters)
        return rows, token, total

    async def import_legacy(
        self, caller: CallerContext, rows: Sequence[LegacyInput], *, dry_run: bool
    ) -> tuple[int, list[RowProblem]]:
        """Load the old report's rows (all or nothing); carries autumn-2023 reasons over."""
        require(
            caller, roles=("admin",), levels=("national", "province"), action="导入历史上报原因"
        )
        if not rows:
            raise InvalidArgument("没有要导入的记录", code="ROWS_REQUIRED", field="rows")
        if len(rows) > MAX_IMPORT:
            raise InvalidArgument(
                f"一次最多导入{MAX_IMPORT}条", code="BATCH_TOO_LARGE", field="rows"
            )
        problems: list[RowProblem] = []
        async with self.deps.db.write() as session:
            dictionary, _ = await record_repo.dictionary(session)
            schools = await run_repo.get_orgs(session, [r.school_org_code for r in rows])
            values: list[dict] = []
            periods: list[tuple[str, int]] = []
            seen: set[str] = set()
            for i, row in enumerate(rows, start=1):
                value, problem = self._legacy_row(caller, i, row, dictionary, schools)
                if problem is not None:
                    problems.append(problem)
                    continue
                if value["legacy_id"] in seen:
                    problems.append(
                        RowProblem(i, "身份证件号码", value["id_number_masked"], "DUPLICATE_ROW",
                                   "同一周期、同一项目、同一学生重复")
                    )  # fmt: skip
                    continue
                seen.add(value["legacy_id"])
                values.append(value)
                periods.append(row.period)
            if problems or dry_run:
                return (0 if problems else len(values)), problems
            keys = await period_keys(session, periods)
            now = self.deps.now()
            for value, period in zip(values, periods, strict=True):
                value["period_key"] = keys[period]
                value["imported_at"] = now
            await record_repo.upsert_legacy(session, values)
            carry = keys.get((CARRY_OVER_PERIOD.school_year, CARRY_OVER_PERIOD.term))
            if carry is not None:
                await carry_legacy_reasons(session, period_key=carry)
            await audit(
                self.deps,
                session,
                caller,
                action="ImportLegacyReports",
                object_type="legacy_report",
                detail=f"导入脱贫家庭学生（原建档立卡）历史未资助原因{len(values)}条",
            )
        return len(values), []

    def _legacy_row(
        self,
        caller: CallerContext,
        i: int,
        row: LegacyInput,
        dictionary: dict[str, ReasonCode],
        schools: dict,
    ) -> tuple[dict, RowProblem | None]:
        def bad(column: str, value: str, code: str, message: str) -> tuple[dict, RowProblem]:
            return {}, RowProblem(i, column, value, code, message)

        try:
            period = Period.parse(row.period[0], row.period[1])
        except InvalidArgument as err:
            return bad("资助周期", f"{row.period[0]} {row.period[1]}", err.code, err.message)
        if not row.project_code.strip():
            return bad("项目代码", "", "PROJECT_CODE_REQUIRED", "项目代码不能为空")
        id_type = row.id_type or RESIDENT_ID
        number = row.id_number.strip().upper()
        if id_type == RESIDENT_ID:
            try:
                number = normalize_resident_id(number)
            except IdentifierError as err:
                return bad("身份证件号码", mask_id_number(number), err.code, err.message)
        elif not number:
            return bad("身份证件号码", "", "ID_NUMBER_REQUIRED", "证件号码不能为空")
        if not row.student_name.strip():
            return bad("学生姓名", "", "NAME_REQUIRED", "学生姓名不能为空")
        school = schools.get(row.school_org_code)
        if school is None or school.level != 5 or not caller.in_scope(school.org_path):
            return bad(
                "学校标识码", row.school_org_code, "SCHOOL_NOT_FOUND", "学校不存在或不在本辖区内"
            )
        code, note = row.reason_code.strip(), row.note.strip()
        if code:
            if code not in dictionary:
                return bad("未资助原因代码", code, "REASON_CODE_UNKNOWN", "原因代码不在原因字典中")
        elif row.legacy_reason.strip():
            code, mapped_note = map_legacy_reason(row.legacy_reason, dictionary)
            note = note or mapped_note
        else:
            return bad("未资助原因", "", "REASON_REQUIRED", "未资助原因不能为空")
        if dictionary[code].requires_note and not note:
            note = row.legacy_reason.strip() or "历史上报原因"
        # The person key as roster makes it: the number, prefixed by its type unless resident ID.
        indexed = number if id_type == RESIDENT_ID else f"{id_type}:{number}"
        blind = self.deps.cipher.blind_index(indexed, context=self.deps.settings.id_index_context)
        legacy_id = hashlib.sha256(
            f"{period.school_year}|{period.term}|{row.project_code}|{blind}".encode()
        ).hexdigest()[:40]
        return {
            "legacy_id": legacy_id,
            "project_code": row.project_code.strip(),
            "project_name": row.project_name.strip(),
            "id_type": id_type,
            "id_number_blind_index": blind,
            "id_number_masked": mask_id_number(number),
            "student_name": row.student_name.strip(),
            "school_org_code": school.org_code,
            "school_org_path": school.org_path,
            "school_name": school.name,
            "legacy_reason": row.legacy_reason.strip(),
            "reason_code": code,
            "note": note,
            "reported_by": row.reported_by.strip(),
            "reported_at": row.reported_at,
        }, None

"""The unfunded list (特殊群体学生未资助名单): read it, export it, and report reasons — schools for
their students, each authority level for entries in its area."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.errors import FailedPrecondition, InvalidArgument, NotFound
from zizhu_common.rpc import CallerContext

from reconcile_service.domain.groups import is_group
from reconcile_service.domain.periods import Period
from reconcile_service.domain.reasons import ReasonCode, check_reason
from reconcile_service.domain.scope import LEVELS
from reconcile_service.repository import entries as entry_repo
from reconcile_service.repository import records as record_repo
from reconcile_service.repository import runs as run_repo
from reconcile_service.repository.entries import EntryFilter, EntryRow
from reconcile_service.repository.runs import PeriodRow, RunRow
from reconcile_service.service.context import (
    AUTHORITIES,
    Deps,
    audit,
    decode_token,
    encode_token,
    page_limit,
    require,
    resolve_scope,
)

BUSINESS = ("operator", "auditor", "admin", "viewer")
ALL_LEVELS = ("national", "province", "city", "county", "school")
MAX_REPORT = 1000
MAX_EXPORT = 200_000


@dataclass
class ListQuery:
    """Filters of ListUnfunded / ExportUnfunded as given by the caller."""

    period: Period | None = None
    org_code: str = ""
    statuses: tuple[int, ...] = ()
    groups: tuple[int, ...] = ()
    source: int = 0
    reason_state: int = 0
    reason_codes: tuple[str, ...] = ()
    stage: int = 0
    student_name: str = ""
    id_number: str = ""


@dataclass
class EntryPage:
    """A page of entries with the dictionary to label reasons and the run it reflects."""

    entries: list[EntryRow]
    next_token: str
    total: int
    period: PeriodRow | None
    as_of: RunRow | None
    reasons: dict[str, ReasonCode]


async def view_period(session: AsyncSession, period: Period | None) -> PeriodRow | None:
    """The period a view is about: the one asked for (None if reconcile never saw it), or the
    most recent open one."""
    if period is not None:
        return await run_repo.find_period(session, period)
    row = await run_repo.latest_open_period(session)
    if row is None:
        raise FailedPrecondition(
            "当前没有进行中的资助周期，请指定资助周期", code="NO_OPEN_PERIOD", field="period"
        )
    return row


async def stamp_last_runs(
    session: AsyncSession, entries: Sequence[EntryRow], period: PeriodRow | None
) -> None:
    """An open entry was seen by every successful run covering its school since it opened: show
    the newest such run as its last run."""
    if period is None or not any(e.status == 1 for e in entries):
        return
    runs = await run_repo.recent_successes(session, period=period.period)
    for e in entries:
        if e.status != 1:
            continue
        for run in runs:
            if e.school_org_path.startswith(run.org_path):
                e.last_run_id = run.run_id
                break


class UnfundedService:
    """List, read, export and report reasons on unfunded entries."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def list_entries(
        self, caller: CallerContext, query: ListQuery, *, page_size: int, page_token: str
    ) -> EntryPage:
        """Entries of schools in the caller's subtree (or a sub-org of it), filtered and paged."""
        require(caller, roles=BUSINESS, levels=ALL_LEVELS, action="查看未资助名单")
        for i, g in enumerate(query.groups):
            if not is_group(g):
                raise InvalidArgument(
                    "特殊群体类别无效", code="GROUP_INVALID", field=f"groups[{i}]"
                )
        blind = self.deps.blind_index(query.id_number) if query.id_number.strip() else ""
        limit = page_limit(page_size)
        async with self.deps.db.read() as session:
            scope = await resolve_scope(session, caller, query.org_code)
            period = await view_period(session, query.period)
            reasons, _ = await record_repo.dictionary(session)
            if period is None:
                return EntryPage([], "", 0, None, None, reasons)
            f = EntryFilter(
                period_key=period.key,
                scope_path=scope.org_path,
                statuses=query.statuses or (1,),
                groups=query.groups,
                source=query.source,
                reason_state=query.reason_state,
                reason_codes=query.reason_codes,
                stage=query.stage,
                student_name=query.student_name.strip(),
                id_number_blind_index=blind,
            )
            position = decode_token(page_token, f)
            after = (str(position[0]), int(position[1])) if position else None
            rows, total = await entry_repo.list_entries(session, f, after=after, limit=limit)
            await stamp_last_runs(session, rows, period)
            as_of = await run_repo.last_success(session, period=period.period, path=scope.org_path)
        token = ""
        if len(rows) == limit:
            token = encode_token([rows[-1].school_org_path, rows[-1].entry_key], f)
        return EntryPage(rows, token, total, period, as_of, reasons)

    async def export(self, caller: CallerContext, query: ListQuery) -> EntryPage:
        """Every entry the list would show (at most 200,000), for the .xlsx export."""
        page = await self.list_entries(caller, query, page_size=1000, page_token="")
        rows = list(page.entries)
        token = page.next_token
        while token:
            if len(rows) >= MAX_EXPORT:
                raise FailedPrecondition(
                    f"导出不能超过{MAX_EXPORT}条，请缩小范围", code="EXPORT_TOO_LARGE"
                )
            more = await self.list_entries(caller, query, page_size=1000, page_token=token)
            rows += more.entries
            token = more.next_token
        return replace(page, entries=rows, next_token="")

    async def get(self, caller: CallerContext, entry_id: str) -> tuple[EntryRow, dict, PeriodRow]:
        """One entry in the caller's subtree, with the dictionary and its period."""
        require(caller, roles=BUSINESS, levels=ALL_LEVELS, action="查看未资助名单")
        async with self.deps.db.read() as session:
            entry = (await self._load(session, caller, [entry_id], field="entry_id"))[0]
            reasons, _ = await record_repo.dictionary(session)
            periods = await run_repo.periods_by_key(session, [entry.period_key])
            await stamp_last_runs(session, [entry], periods[entry.period_key])
        return entry, reasons, periods[entry.period_key]

    async def _load(
        self, session: AsyncSession, caller: CallerContext, ids: Sequence[str], *, field: str
    ) -> list[EntryRow]:
        keys: list[int] = []
        for i, value in enumerate(ids):
            name = field if field == "entry_id" else f"{field}[{i}]"
            if not value.strip().isdigit():
                raise NotFound("未资助名单记录不存在", code="ENTRY_NOT_FOUND", field=name)
            keys.append(int(value))
        found = await entry_repo.get_entries(session, keys)
        out = []
        for i, key in enumerate(keys):
            entry = found.get(key)
            if entry is None or not caller.in_scope(entry.school_org_path):
                name = field if field == "entry_id" else f"{field}[{i}]"
                raise NotFound("未资助名单记录不存在", code="ENTRY_NOT_FOUND", field=name)
            out.append(entry)
        return out

    async def _reportable(
        self, session: AsyncSession, caller: CallerContext, entry_ids: Sequence[str]
    ) -> tuple[list[EntryRow], dict[int, PeriodRow]]:
        ids = list(dict.fromkeys(i.strip() for i in entry_ids))
        if not ids:
            raise InvalidArgument(
                "请选择要填报原因的学生", code="ENTRY_IDS_REQUIRED", field="entry_ids"
            )
        if len(ids) > MAX_REPORT:
            raise InvalidArgument(
                f"一次最多填报{MAX_REPORT}条", code="BATCH_TOO_LARGE", field="entry_ids"
            )
        entries = await self._load(session, caller, ids, field="entry_ids")
        periods = await run_repo.periods_by_key(session, [e.period_key for e in entries])
        now = self.deps.now()
        for i, entry in enumerate(entries):
            if entry.status != 1:
                raise FailedPrecondition(
                    "该学生已获资助或不再纳入未资助名单，无需填报原因",
                    code="ENTRY_CLOSED",
                    field=f"entry_ids[{i}]",
                )
            dates = periods[entry.period_key].dates
            if dates.deadline_passed(now):
                raise FailedPrecondition(
                    f"{dates.period.label}未资助原因填报已于{dates.deadline_on.isoformat()}截止",
                    code="REASON_DEADLINE_PASSED",
                    field=f"entry_ids[{i}]",
                    details={"deadline_on": dates.deadline_on.isoformat()},
                )
        return entries, periods

    async def report_reason(
        self, caller: CallerContext, *, entry_ids: Sequence[str], reason_code: str, note: str
    ) -> tuple[list[EntryRow], dict]:
        """A school reports one reason for open entries of its own students (all or nothing)."""
        require(caller, roles=("operator",), levels=("school",), action="填报学校未资助原因")
        async with self.deps.db.write() as session:
            reasons, _ = await record_repo.dictionary(session)
            code, text = check_reason(reason_code, note, reasons)
            entries, _ = await self._reportable(session, caller, entry_ids)
            for i, entry in enumerate(entries):
                if entry.school_org_code != caller.org_code and "system" not in caller.roles:
                    raise NotFound(
                        "未资助名单记录不存在", code="ENTRY_NOT_FOUND", field=f"entry_ids[{i}]"
                    )
            keys = [e.entry_key for e in entries]
            await entry_repo.set_school_reason(
                session,
                keys,
                code=code.code,
                note=text,
                actor=caller.account_id,
                org_code=caller.org_code,
                now=self.deps.now(),
            )
            await audit(
                self.deps,
                session,
                caller,
                action="ReportReason",
                object_type="unfunded_entry",
                object_id=",".join(str(k) for k in keys[:20]),
                detail=f"填报未资助原因 {code.code} {code.label}，共{len(keys)}人",
            )
            updated = await entry_repo.get_entries(session, keys)
        return [updated[k] for k in keys], reasons

    async def report_authority_reason(
        self, caller: CallerContext, *, entry_ids: Sequence[str], reason_code: str, note: str
    ) -> tuple[list[EntryRow], dict]:
        """An authority fills its own level's reason on open entries in its subtree."""
        require(caller, roles=("operator",), levels=AUTHORITIES, action="填报本级未资助原因")
        async with self.deps.db.write() as session:
            reasons, _ = await record_repo.dictionary(session)
            code, text = check_reason(reason_code, note, reasons)
            entries, _ = await self._reportable(session, caller, entry_ids)
            org = await run_repo.get_org(session, caller.org_code)
            keys = [e.entry_key for e in entries]
            await entry_repo.set_authority_reason(
                session,
                keys,
                level=LEVELS.get(caller.level, 0),
                org_code=caller.org_code,
                org_name=org.name if org else "",
                code=code.code,
                note=text,
                actor=caller.account_id,
                now=self.deps.now(),
            )
            await audit(
                self.deps,
                session,
                caller,
                action="ReportAuthorityReason",
                object_type="unfunded_entry",
                object_id=",".join(str(k) for k in keys[:20]),
                detail=f"填报本级未资助原因 {code.code} {code.label}，共{len(keys)}人",
            )
            updated = await entry_repo.get_entries(session, keys)
        return [updated[k] for k in keys], reasons

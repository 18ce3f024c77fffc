"""Data-verification findings (数据核查疑似问题): read them, resolve them with an audited note,
count them by region × rule; and the quotas (名额) R09 checks against."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.errors import FailedPrecondition, InvalidArgument, NotFound
from zizhu_common.rpc import CallerContext
from zizhu_contracts.reconcile.v1 import events_pb2

from reconcile_service.domain.periods import Period
from reconcile_service.domain.rules import LIVE, RESOLUTIONS, STATUS_NAMES
from reconcile_service.domain.scope import LEVELS, SCHOOL
from reconcile_service.events import FINDING_RESOLVED, event_meta
from reconcile_service.repository import findings as finding_repo
from reconcile_service.repository import records as record_repo
from reconcile_service.repository import runs as run_repo
from reconcile_service.repository import stats as stats_repo
from reconcile_service.repository.findings import ActionRow, FindingFilter, FindingRow
from reconcile_service.repository.records import QuotaRow
from reconcile_service.repository.runs import PeriodRow
from reconcile_service.service.context import (
    AUTHORITIES,
    Deps,
    Scope,
    audit,
    decode_token,
    encode_token,
    page_limit,
    require,
    resolve_scope,
)
from reconcile_service.service.unfunded import ALL_LEVELS, BUSINESS

MAX_RESOLVE = 1000
MAX_QUOTAS = 1000
NOTE_MAX = 500


@dataclass
class FindingQuery:
    """Filters of ListFindings."""

    period: Period | None = None
    org_code: str = ""
    rule_codes: tuple[str, ...] = ()
    severity: int = 0
    statuses: tuple[int, ...] = ()
    project_code: str = ""
    student_id: str = ""
    record_id: str = ""


@dataclass
class FindingStatsRow:
    """Counts of one row: (rule, severity) → status → n."""

    kind: int
    org_code: str
    org_name: str
    org_level: int
    org_path: str
    counts: dict[tuple[str, int], dict[int, int]] = field(default_factory=dict)


class FindingService:
    """Findings and quotas."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def list_findings(
        self, caller: CallerContext, query: FindingQuery, *, page_size: int, page_token: str
    ) -> tuple[list[FindingRow], str, int, dict[int, PeriodRow]]:
        """Findings of orgs in scope (default: open and confirmed)."""
        require(caller, roles=BUSINESS, levels=ALL_LEVELS, action="查看数据核查问题")
        limit = page_limit(page_size)
        async with self.deps.db.read() as session:
            scope = await resolve_scope(session, caller, query.org_code)
            period_key = None
            if query.period is not None:
                row = await run_repo.find_period(session, query.period)
                if row is None:
                    return [], "", 0, {}
                period_key = row.key
            f = FindingFilter(
                scope_path=scope.org_path,
                period_key=period_key,
                rule_codes=tuple(c.strip().upper() for c in query.rule_codes if c.strip()),
                severity=query.severity,
                statuses=query.statuses or LIVE,
                project_code=query.project_code.strip(),
                student_id=query.student_id.strip(),
                record_id=query.record_id.strip(),
            )
            position = decode_token(page_token, f)
            after = (str(position[0]), int(position[1])) if position else None
            rows, total = await finding_repo.list_findings(session, f, after=after, limit=limit)
            periods = await run_repo.periods_by_key(session, [r.period_key for r in rows])
        token = ""
        if len(rows) == limit:
            token = encode_token([rows[-1].org_path, rows[-1].finding_key], f)
        return rows, token, total, periods

    async def get(
        self, caller: CallerContext, finding_id: str
    ) -> tuple[FindingRow, list[ActionRow], PeriodRow | None]:
        """One finding in scope with its history."""
        require(caller, roles=BUSINESS, levels=ALL_LEVELS, action="查看数据核查问题")
        async with self.deps.db.read() as session:
            row = (await self._load(session, caller, [finding_id], field="finding_id"))[0]
            history = await finding_repo.actions(session, row.finding_key)
            periods = await run_repo.periods_by_key(session, [row.period_key])
        return row, history, periods.get(row.period_key)

    async def _load(
        self, session: AsyncSession, caller: CallerContext, ids: Sequence[str], *, field: str
    ) -> list[FindingRow]:
        keys = []
        for i, value in enumerate(ids):
            name = field if field == "finding_id" else f"{field}[{i}]"
            if not value.strip().isdigit():
                raise NotFound("数据核查问题不存在", code="FINDING_NOT_FOUND", field=name)
            keys.append(int(value))
        found = await finding_repo.get_findings(session, keys)
        out = []
        for i, key in enumerate(keys):
            row = found.get(key)
            if row is None or not caller.in_scope(row.org_path):
                name = field if field == "finding_id" else f"{field}[{i}]"
                raise NotFound("数据核查问题不存在", code="FINDING_NOT_FOUND", field=name)
            out.append(row)
        return out

    async def resolve(
        self, caller: CallerContext, *, finding_ids: Sequence[str], resolution: int, note: str
    ) -> tuple[list[FindingRow], dict[int, PeriodRow]]:
        """Confirm, mark fixed or dismiss open/confirmed findings, with an audited note."""
        require(caller, roles=("operator", "auditor"), levels=ALL_LEVELS, action="处理数据核查问题")
        if resolution not in RESOLUTIONS:
            raise InvalidArgument(
                "处理结果应为确认问题、已整改或排除", code="RESOLUTION_INVALID", field="resolution"
            )
        text = (note or "").strip()
        if not text:
            raise InvalidArgument("请填写处理说明", code="NOTE_REQUIRED", field="note")
        if len(text) > NOTE_MAX:
            raise InvalidArgument(
                f"处理说明不能超过{NOTE_MAX}个字", code="NOTE_TOO_LONG", field="note"
            )
        ids = list(dict.fromkeys(i.strip() for i in finding_ids))
        if not ids:
            raise InvalidArgument(
                "请选择要处理的问题", code="FINDING_IDS_REQUIRED", field="finding_ids"
            )
        if len(ids) > MAX_RESOLVE:
            raise InvalidArgument(
                f"一次最多处理{MAX_RESOLVE}条", code="BATCH_TOO_LARGE", field="finding_ids"
            )
        now = self.deps.now()
        async with self.deps.db.write() as session:
            rows = await self._load(session, caller, ids, field="finding_ids")
            for i, row in enumerate(rows):
                if row.status not in LIVE:
                    raise FailedPrecondition(
                        f"该问题当前状态为“{STATUS_NAMES.get(row.status, '')}”，不能再处理",
                        code="FINDING_CLOSED",
                        field=f"finding_ids[{i}]",
                    )
            await finding_repo.resolve(
                session,
                rows,
                status=resolution,
                note=text,
                actor=caller.account_id,
                actor_org_code=caller.org_code,
                now=now,
            )
            events = []
            for row in rows:
                msg = events_pb2.FindingResolved(
                    finding_id=str(row.finding_key),
                    rule_code=row.rule_code,
                    severity=row.severity,  # type: ignore[arg-type]
                    status=resolution,  # type: ignore[arg-type]
                    record_ids=row.record_ids,
                    org_code=row.org_code,
                )
                msg.resolved_at.FromDatetime(now)
                msg.meta.CopyFrom(event_meta(caller, org_path=row.org_path))
                events.append((FINDING_RESOLVED, msg))
            await self.deps.outbox.add_many(session, events)  # type: ignore[arg-type]
            await audit(
                self.deps,
                session,
                caller,
                action="ResolveFinding",
                object_type="finding",
                object_id=",".join(ids[:20]),
                detail=f"数据核查问题处理为“{STATUS_NAMES[resolution]}”，共{len(rows)}条",
            )
            updated = await finding_repo.get_findings(session, [r.finding_key for r in rows])
            periods = await run_repo.periods_by_key(session, [r.period_key for r in rows])
        return [updated[r.finding_key] for r in rows], periods

    async def stats(
        self,
        caller: CallerContext,
        *,
        period: Period | None,
        org_code: str,
        expand_direct_schools: bool,
    ) -> list[FindingStatsRow]:
        """Counts by rule and status: total, directly-run schools, then each child region."""
        require(caller, roles=BUSINESS, levels=ALL_LEVELS, action="查看数据核查统计")
        async with self.deps.db.read() as session:
            scope = await resolve_scope(session, caller, org_code)
            period_key = None
            if period is not None:
                row = await run_repo.find_period(session, period)
                if row is None:
                    return [_empty(1, scope)]
                period_key = row.key
            figures = await stats_repo.finding_figures(
                session, period_key=period_key, root_path=scope.org_path
            )
            kids = {o.org_code: o for o in await run_repo.children(session, scope.org_code)}
            kids.update(
                await run_repo.get_orgs(session, [c for c in figures if c not in kids and c])
            )
        total = _empty(1, scope)
        for counts in figures.values():
            _add(total.counts, counts)
        rows = [total]
        if scope.level == SCHOOL:
            return rows
        schools = sorted((o for o in kids.values() if o.level == SCHOOL), key=lambda o: o.org_code)
        if schools:
            direct = FindingStatsRow(2, scope.org_code, f"{scope.name}直属学校", scope.level,
                                     scope.org_path)  # fmt: skip
            for o in schools:
                _add(direct.counts, figures.get(o.org_code, {}))
            rows.append(direct)
            if expand_direct_schools or scope.level == LEVELS["county"]:
                for o in schools:
                    one = FindingStatsRow(4, o.org_code, o.name, o.level, o.org_path)
                    _add(one.counts, figures.get(o.org_code, {}))
                    rows.append(one)
        for o in sorted((o for o in kids.values() if o.level != SCHOOL), key=lambda o: o.org_code):
            one = FindingStatsRow(3, o.org_code, o.name, o.level, o.org_path)
            _add(one.counts, figures.get(o.org_code, {}))
            rows.append(one)
        return rows

    # --- quotas ----------------------------------------------------------------------------

    async def set_quotas(
        self, caller: CallerContext, quotas: Sequence[tuple[str, str, str, int]]
    ) -> list[QuotaRow]:
        """Set places per (project, school year, org in the caller's subtree); 0 removes."""
        require(caller, roles=("operator", "admin"), levels=AUTHORITIES, action="设置资助名额")
        if not quotas:
            raise InvalidArgument("请提供名额", code="QUOTAS_REQUIRED", field="quotas")
        if len(quotas) > MAX_QUOTAS:
            raise InvalidArgument(
                f"一次最多设置{MAX_QUOTAS}条", code="BATCH_TOO_LARGE", field="quotas"
            )
        now = self.deps.now()
        rows: list[QuotaRow] = []
        async with self.deps.db.write() as session:
            for i, (project_code, school_year, org_code, places) in enumerate(quotas):
                if not project_code.strip():
                    raise InvalidArgument(
                        "项目代码不能为空",
                        code="PROJECT_CODE_REQUIRED",
                        field=f"quotas[{i}].project_code",
                    )
                Period.parse(school_year, 1, field=f"quotas[{i}]")
                if places < 0:
                    raise InvalidArgument(
                        "名额不能为负数", code="PLACES_INVALID", field=f"quotas[{i}].places"
                    )
                try:
                    scope = await resolve_scope(session, caller, org_code)
                except NotFound as err:
                    err.field = f"quotas[{i}].org_code"
                    raise
                rows.append(
                    QuotaRow(project_code.strip(), school_year, scope.org_code, scope.org_path,
                             scope.name, places, caller.account_id, now)
                )  # fmt: skip
            await record_repo.save_quotas(session, rows)
            await audit(
                self.deps,
                session,
                caller,
                action="SetQuotas",
                object_type="quota",
                detail=f"设置资助名额{len(rows)}条",
            )
        return rows

    async def list_quotas(
        self, caller: CallerContext, *, school_year: str, org_code: str, project_code: str
    ) -> list[QuotaRow]:
        """Quotas of orgs in scope."""
        require(caller, roles=BUSINESS, levels=ALL_LEVELS, action="查看资助名额")
        async with self.deps.db.read() as session:
            scope = await resolve_scope(session, caller, org_code)
            return await record_repo.list_quotas(
                session,
                scope_path=scope.org_path,
                school_year=school_year.strip(),
                project_code=project_code.strip(),
            )


def _empty(kind: int, scope: Scope) -> FindingStatsRow:
    return FindingStatsRow(kind, scope.org_code, scope.name, scope.level, scope.org_path)


def _add(target: dict, source: dict) -> None:
    for key, statuses in source.items():
        bucket = target.setdefault(key, {})
        for status, n in statuses.items():
            bucket[status] = bucket.get(status, 0) + n

"""Comparison runs: started on demand by an authority or by the 02:00 schedule, one at a time
across replicas, each recorded with its periods, times and counts. A run is one transaction:
it either lands whole (entries, statistics, findings, RunCompleted) or not at all (RunFailed)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.errors import Conflict, FailedPrecondition, NotFound
from zizhu_common.rpc import CallerContext
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.reconcile.v1 import events_pb2

from reconcile_service.domain.periods import AUTUMN, Period, shanghai_today
from reconcile_service.events import (
    FINDING_RAISED,
    FINDING_RESOLVED,
    RUN_COMPLETED,
    RUN_FAILED,
    event_meta,
)
from reconcile_service.repository import findings as finding_repo
from reconcile_service.repository import runs as run_repo
from reconcile_service.repository.comparison import compare_period
from reconcile_service.repository.dirty import consume_marks, prepare_dirty, take_marks
from reconcile_service.repository.runs import FAILED, RUNNING, SUCCEEDED, PeriodRow, RunRow
from reconcile_service.repository.verification import RuleScope, evaluate
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

log = logging.getLogger(__name__)

SCHEDULED, MANUAL = 1, 2  # RunTrigger
# The retired report's reasons of this period are carried into the new module (seed 003).
CARRY_OVER_PERIOD = Period("2023-2024", AUTUMN)
# Above this share of changed students a full comparison is cheaper than an incremental one.
INCREMENTAL_SHARE = 0.25
INCREMENTAL_FLOOR = 1000


def new_run_id() -> str:
    """A fresh run id."""
    return uuid.uuid4().hex


class RunService:
    """Start, execute, read and list comparison runs."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.tasks: dict[str, asyncio.Task[None]] = {}

    # --- starting ---------------------------------------------------------------------------

    async def request(
        self,
        caller: CallerContext,
        *,
        periods: Sequence[Period],
        org_code: str,
        include_verification: bool,
    ) -> tuple[RunRow, bool]:
        """Start a run in the background (or answer the running one that covers the scope)."""
        require(caller, roles=("operator", "admin"), levels=AUTHORITIES, action="发起比对")
        async with self.deps.db.read() as session:
            scope = await resolve_scope(session, caller, org_code)
            targets = await self._targets(session, periods)
        if scope.level == 5:
            raise FailedPrecondition(
                "比对范围应为地区（主管部门），不能是单个学校",
                code="RUN_SCOPE_SCHOOL",
                field="org_code",
            )
        run = RunRow(
            run_id=new_run_id(),
            trigger=MANUAL,
            periods=[t.period for t in targets],
            org_code=scope.org_code,
            org_path=scope.org_path,
            include_verification=include_verification,
            status=RUNNING,
            triggered_by=caller.account_id,
            schedule_slot=None,
            started_at=self.deps.now(),
        )
        if not await self.deps.lock.try_acquire(run.run_id):
            return await self._answer_running(scope.org_path)
        try:
            async with self.deps.db.write() as session:
                await run_repo.fail_interrupted(session, except_run=run.run_id, now=self.deps.now())
                await run_repo.insert_run(session, run)
                await audit(
                    self.deps,
                    session,
                    caller,
                    action="RunComparison",
                    object_type="comparison_run",
                    object_id=run.run_id,
                    detail="手动比对：" + "、".join(p.label for p in run.periods),
                    org_path=scope.org_path,
                )
        except BaseException:
            await self.deps.lock.release(run.run_id)
            raise
        self.tasks[run.run_id] = asyncio.create_task(self._execute_holding(run))
        self.tasks[run.run_id].add_done_callback(lambda _t: self.tasks.pop(run.run_id, None))
        return run, False

    async def _answer_running(self, scope_path: str) -> tuple[RunRow, bool]:
        holder = await self.deps.lock.holder()
        current = None
        if holder:
            async with self.deps.db.read() as session:
                current = await run_repo.get_run(session, holder)
        if current and current.status == RUNNING and scope_path.startswith(current.org_path):
            return current, True
        raise Conflict(
            "另一项比对正在进行，请稍后再试",
            code="RUN_IN_PROGRESS",
            details={"run_id": holder or ""},
        )

    async def _targets(self, session: AsyncSession, periods: Sequence[Period]) -> list[PeriodRow]:
        if not periods:
            found = await run_repo.open_periods(session)
            if not found:
                raise FailedPrecondition("当前没有进行中的资助周期", code="NO_OPEN_PERIOD")
            return found
        out = []
        for i, p in enumerate(dict.fromkeys(periods)):
            row = await run_repo.find_period(session, p)
            if row is None or row.status != 1:
                raise FailedPrecondition(
                    f"{p.label}未开放，不能比对",
                    code="PERIOD_NOT_OPEN",
                    field=f"periods[{i}]",
                )
            out.append(row)
        return out

    async def run_scheduled(self, slot: str) -> RunRow | None:
        """The 02:00 run of a slot, unless it already succeeded or another replica holds the
        lock (then None: the caller retries later)."""
        async with self.deps.db.read() as session:
            if await run_repo.slot_succeeded(session, slot):
                return None
        run = RunRow(
            run_id=new_run_id(),
            trigger=SCHEDULED,
            periods=[],
            org_code="",
            org_path="/",
            include_verification=self.deps.settings.daily_verification,
            status=RUNNING,
            triggered_by="system:scheduler",
            schedule_slot=slot,
            started_at=self.deps.now(),
        )
        if not await self.deps.lock.try_acquire(run.run_id):
            return None
        async with self.deps.lock.kept(run.run_id):
            async with self.deps.db.write() as session:
                if await run_repo.slot_succeeded(session, slot):
                    return None
                await run_repo.fail_interrupted(session, except_run=run.run_id, now=self.deps.now())
                run.periods = [p.period for p in await run_repo.open_periods(session)]
                run.started_at = self.deps.now()
                await run_repo.insert_run(session, run)
            await self._execute(run)
        return run

    async def slot_done(self, slot: str) -> bool:
        """True when the scheduled run of the slot succeeded (on any replica)."""
        async with self.deps.db.read() as session:
            return await run_repo.slot_succeeded(session, slot)

    # --- executing --------------------------------------------------------------------------

    async def _execute_holding(self, run: RunRow) -> None:
        async with self.deps.lock.kept(run.run_id):
            await self._execute(run)

    async def _execute(self, run: RunRow) -> None:
        clock = time.perf_counter()
        try:
            async with self.deps.db.write() as session:
                await self._compare(session, run, clock)
        except asyncio.CancelledError:
            await self._fail(run, "服务停止，比对已中止", clock)
            raise
        except Exception as exc:
            log.exception("comparison run %s failed", run.run_id)
            await self._fail(run, f"比对失败：{type(exc).__name__}", clock)

    async def _compare(self, session: AsyncSession, run: RunRow, clock: float) -> None:
        now = self.deps.now()
        today = shanghai_today(now)
        targets = []
        for p in run.periods:
            row = await run_repo.find_period(session, p)
            if row is not None:
                targets.append(row)
        hits, period_of, counts = [], {}, []
        whole_tree = run.org_path == "/"
        open_keys = {p.key for p in await run_repo.open_periods(session)}
        # Marks are forgotten only by a run over the whole tree and every open period.
        consume = whole_tree and open_keys <= {t.key for t in targets}
        marks = await take_marks(session) if whole_tree else 0
        for target in targets:
            started = time.perf_counter()
            as_of = target.dates.as_of(today)
            incremental = False
            if whole_tree:
                incremental = await self._incremental(session, target, as_of, marks)
            c = await compare_period(
                session,
                period_key=target.key,
                starts_on=target.dates.starts_on,
                as_of=as_of,
                scope_path=run.org_path,
                run_id=run.run_id,
                now=now,
                carry_period_key=target.key if target.period == CARRY_OVER_PERIOD else None,
                incremental=incremental,
            )
            if whole_tree:
                await run_repo.save_baseline(
                    session,
                    period_key=target.key,
                    as_of=as_of.isoformat(),
                    starts_on=target.dates.starts_on.isoformat(),
                    ends_on=target.dates.ends_on.isoformat(),
                    run_id=run.run_id,
                )
            if run.include_verification:
                scope = RuleScope(
                    target.period, target.key, target.dates.starts_on,
                    target.dates.as_of(today), run.org_path,
                )  # fmt: skip
                for hit in await evaluate(session, scope):
                    if hit.fingerprint not in period_of:
                        period_of[hit.fingerprint] = target.key
                        hits.append(hit)
            counts.append((target, c, int((time.perf_counter() - started) * 1000)))
        if consume:
            await consume_marks(session)
        outcome = finding_repo.RunOutcome()
        if run.include_verification:
            outcome = await finding_repo.apply_hits(
                session,
                hits,
                period_key_of=period_of,
                period_keys=[t.key for t in targets],
                scope_path=run.org_path,
                run_id=run.run_id,
                now=now,
            )
        raised = Counter(f.period_key for f in outcome.raised)
        cleared = Counter(f.period_key for f in outcome.cleared)
        run.period_counts = [
            {
                "school_year": t.period.school_year,
                "term": t.period.term,
                **asdict(c),
                "findings_raised": raised[t.key],
                "findings_cleared": cleared[t.key],
                "duration_ms": ms,
            }
            for t, c, ms in counts
        ]
        run.periods = [t.period for t in targets]
        run.students_checked = sum(c.students_checked for _, c, _ in counts)
        run.students_funded = sum(c.students_funded for _, c, _ in counts)
        run.unfunded_opened = sum(c.opened for _, c, _ in counts)
        run.unfunded_closed = sum(c.closed for _, c, _ in counts)
        run.unfunded_reopened = sum(c.reopened for _, c, _ in counts)
        run.unfunded_open = sum(c.open_after for _, c, _ in counts)
        run.findings_raised = len(outcome.raised)
        run.findings_cleared = len(outcome.cleared)
        run.status = SUCCEEDED
        run.finished_at = self.deps.now()
        run.duration_ms = int((time.perf_counter() - clock) * 1000)
        await run_repo.finish_run(session, run)
        completed = events_pb2.RunCompleted(
            run_id=run.run_id,
            trigger=run.trigger,
            periods=[_period_pb(p) for p in run.periods],
            org_code=run.org_code,
            students_checked=run.students_checked,
            unfunded_opened=run.unfunded_opened,
            unfunded_closed=run.unfunded_closed,
            unfunded_open=run.unfunded_open,
            findings_raised=run.findings_raised,
            findings_cleared=run.findings_cleared,
        )
        completed.started_at.FromDatetime(run.started_at)
        completed.finished_at.FromDatetime(run.finished_at)
        completed.meta.CopyFrom(event_meta(org_path=run.org_path))
        completed.meta.correlation_id = run.run_id
        events = [(RUN_COMPLETED, completed)]
        periods = await run_repo.periods_by_key(
            session, [f.period_key for f in outcome.raised + outcome.cleared]
        )
        for f in outcome.raised:
            msg = events_pb2.FindingRaised(
                finding_id=str(f.finding_key),
                rule_code=f.rule_code,
                severity=f.severity,
                org_code=f.org_code,
                org_path=f.org_path,
                student_id=f.student_id,
                project_code=f.project_code,
                record_ids=f.record_ids,
                summary=f.summary,
                run_id=run.run_id,
            )
            if f.period_key in periods:
                msg.period.CopyFrom(_period_pb(periods[f.period_key].period))
            msg.meta.CopyFrom(event_meta(org_path=f.org_path))
            events.append((FINDING_RAISED, msg))
        for f in outcome.cleared:
            msg = events_pb2.FindingResolved(
                finding_id=str(f.finding_key),
                rule_code=f.rule_code,
                severity=f.severity,
                status=f.status,
                record_ids=f.record_ids,
                org_code=f.org_code,
            )
            msg.resolved_at.FromDatetime(now)
            msg.meta.CopyFrom(event_meta(org_path=f.org_path))
            events.append((FINDING_RESOLVED, msg))
        await self.deps.outbox.add_many(session, events)  # type: ignore[arg-type]
        log.info(
            "comparison run %s: %d students, %d open, %d opened, %d closed, %d findings in %d ms",
            run.run_id,
            run.students_checked,
            run.unfunded_open,
            run.unfunded_opened,
            run.unfunded_closed,
            run.findings_raised,
            run.duration_ms,
        )

    async def _incremental(
        self, session: AsyncSession, target: PeriodRow, as_of: date, marks: int
    ) -> bool:
        """Whether the period can be compared incrementally: a baseline with the same dates, an
        as-of day not before it, and few enough changed students; prepares the dirty set."""
        base = await run_repo.baseline(session, target.key)
        if (
            base is None
            or base.candidates == 0  # nothing to start from (or the cache was lost)
            or base.starts_on != target.dates.starts_on.isoformat()
            or base.ends_on != target.dates.ends_on.isoformat()
            or base.as_of > as_of.isoformat()
            or marks > max(INCREMENTAL_FLOOR, base.candidates * INCREMENTAL_SHARE)
        ):
            return False
        dirty = await prepare_dirty(
            session,
            starts_on=target.dates.starts_on,
            as_of=as_of,
            previous_as_of=date.fromisoformat(base.as_of),
        )
        return dirty <= max(INCREMENTAL_FLOOR, base.candidates * INCREMENTAL_SHARE)

    async def _fail(self, run: RunRow, message: str, clock: float) -> None:
        run.status = FAILED
        run.finished_at = self.deps.now()
        run.duration_ms = int((time.perf_counter() - clock) * 1000)
        run.error_message = message
        failed = events_pb2.RunFailed(
            run_id=run.run_id,
            trigger=run.trigger,
            periods=[_period_pb(p) for p in run.periods],
            org_code=run.org_code,
            error_message=message,
        )
        failed.started_at.FromDatetime(run.started_at)
        failed.failed_at.FromDatetime(run.finished_at)
        failed.meta.CopyFrom(event_meta(org_path=run.org_path))
        try:
            async with self.deps.db.write() as session:
                await run_repo.finish_run(session, run)
                await self.deps.outbox.add(session, RUN_FAILED, failed)
        except Exception:
            log.exception("could not record the failure of run %s", run.run_id)

    # --- reading ------------------------------------------------------------------------------

    async def get(self, caller: CallerContext, run_id: str) -> RunRow:
        """One run whose scope lies in the caller's subtree or contains it."""
        async with self.deps.db.read() as session:
            run = await run_repo.get_run(session, run_id)
        if run is None or not _visible(caller, run):
            raise NotFound("比对记录不存在", code="RUN_NOT_FOUND", field="run_id")
        if run.status == RUNNING and run.run_id not in self.tasks:
            if await self.deps.lock.holder() != run.run_id:
                async with self.deps.db.write() as session:
                    await run_repo.fail_interrupted(session, only=run.run_id, now=self.deps.now())
                    run = await run_repo.get_run(session, run_id) or run
        return run

    async def list_runs(
        self,
        caller: CallerContext,
        *,
        period: Period | None,
        statuses: Sequence[int],
        trigger: int,
        page_size: int,
        page_token: str,
        org_code: str = "",
    ) -> tuple[list[RunRow], str, int]:
        """Runs whose scope lies in the org's subtree (default the caller's) or contains it."""
        limit = page_limit(page_size)
        async with self.deps.db.read() as session:
            scope = await resolve_scope(session, caller, org_code)
            filters = (scope.org_path, period, tuple(statuses), trigger)
            position = decode_token(page_token, filters)
            after = None
            if position:
                after = (datetime.fromisoformat(position[0]), str(position[1]))
            rows, total = await run_repo.list_runs(
                session,
                scope_path=scope.org_path,
                statuses=statuses,
                trigger=trigger,
                period=period,
                after=after,
                limit=limit,
            )
        token = ""
        if len(rows) == limit:
            token = encode_token([rows[-1].started_at.isoformat(), rows[-1].run_id], filters)
        return rows, token, total

    async def wait(self, run_id: str) -> None:
        """Wait for a run started in this process to finish (tests, demo seeding)."""
        task = self.tasks.get(run_id)
        if task is not None:
            await asyncio.shield(task)


def _visible(caller: CallerContext, run: RunRow) -> bool:
    return caller.in_scope(run.org_path) or caller.org_path.startswith(run.org_path)


def _period_pb(p: Period) -> common_pb2.AidPeriod:
    return common_pb2.AidPeriod(school_year=p.school_year, term=p.term)  # type: ignore[arg-type]

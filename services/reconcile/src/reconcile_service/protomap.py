"""Rows of the service layer → protobuf messages of zizhu_contracts.reconcile.v1."""

from __future__ import annotations

from datetime import datetime

from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.reconcile.v1 import reconcile_pb2 as pb

from reconcile_service.domain.groups import GROUPS, ISSUED, SELF_COLLECTED, bit
from reconcile_service.domain.periods import Period
from reconcile_service.domain.reasons import ReasonCode
from reconcile_service.domain.rules import RULES
from reconcile_service.repository.entries import EntryRow
from reconcile_service.repository.findings import ActionRow, FindingRow
from reconcile_service.repository.records import LegacyRow, QuotaRow, StatementRow
from reconcile_service.repository.runs import PeriodRow, RunRow
from reconcile_service.repository.stats import Cell
from reconcile_service.service.findings import FindingStatsRow
from reconcile_service.service.stats import StatsRow


def ts(value: datetime | None, target: object) -> None:
    """Set a Timestamp field from an aware datetime (unset when None)."""
    if value is not None:
        target.FromDatetime(value)  # type: ignore[attr-defined]


def period_pb(p: Period) -> common_pb2.AidPeriod:
    """AidPeriod of a period."""
    return common_pb2.AidPeriod(school_year=p.school_year, term=p.term)  # type: ignore[arg-type]


def run_pb(run: RunRow) -> pb.Run:
    """A run with its totals and per-period counts."""
    msg = pb.Run(
        run_id=run.run_id,
        trigger=run.trigger,  # type: ignore[arg-type]
        periods=[period_pb(p) for p in run.periods],
        org_code=run.org_code,
        org_path=run.org_path,
        include_verification=run.include_verification,
        status=run.status,  # type: ignore[arg-type]
        triggered_by=run.triggered_by,
        students_checked=run.students_checked,
        unfunded_opened=run.unfunded_opened,
        unfunded_closed=run.unfunded_closed,
        unfunded_open=run.unfunded_open,
        findings_raised=run.findings_raised,
        findings_cleared=run.findings_cleared,
        error_message=run.error_message,
        duration_ms=run.duration_ms,
        schedule_slot=run.schedule_slot or "",
        unfunded_reopened=run.unfunded_reopened,
        students_funded=run.students_funded,
    )
    ts(run.started_at, msg.started_at)
    ts(run.finished_at, msg.finished_at)
    for c in run.period_counts:
        msg.period_counts.add(
            period=period_pb(Period(c["school_year"], c["term"])),
            students_checked=c.get("students_checked", 0),
            students_funded=c.get("students_funded", 0),
            unfunded_opened=c.get("opened", 0),
            unfunded_closed=c.get("closed", 0),
            unfunded_reopened=c.get("reopened", 0),
            unfunded_open=c.get("open_after", 0),
            findings_raised=c.get("findings_raised", 0),
            findings_cleared=c.get("findings_cleared", 0),
            duration_ms=c.get("duration_ms", 0),
        )
    return msg


def reason_pb(r: ReasonCode) -> pb.ReasonCode:
    """A dictionary entry."""
    return pb.ReasonCode(
        code=r.code,
        label=r.label,
        description=r.description,
        requires_note=r.requires_note,
        enabled=r.enabled,
        sort_order=r.sort_order,
    )


def _label(code: str | None, reasons: dict[str, ReasonCode]) -> str:
    return reasons[code].label if code and code in reasons else ""


def entry_pb(
    e: EntryRow, reasons: dict[str, ReasonCode], period: PeriodRow | None
) -> pb.UnfundedEntry:
    """An unfunded entry with its groups (one per group × source) and every level's reason."""
    msg = pb.UnfundedEntry(
        entry_id=str(e.entry_key),
        student_id=e.student_id,
        student_name=e.student_name,
        id_number_masked=e.id_number_masked,
        school_org_code=e.school_org_code,
        school_name=e.school_name,
        school_org_path=e.school_org_path,
        stage=e.stage,  # type: ignore[arg-type]
        grade=e.grade,
        class_name=e.class_name,
        status=e.status,  # type: ignore[arg-type]
        last_run_id=e.last_run_id,
    )
    if period is not None:
        msg.period.CopyFrom(period_pb(period.period))
        msg.reason_deadline_on = period.dates.deadline_on.isoformat()
    for g in GROUPS:
        if e.issued_mask & bit(g):
            msg.groups.add(group=g, source=ISSUED)  # type: ignore[arg-type]
        if e.self_mask & bit(g):
            msg.groups.add(group=g, source=SELF_COLLECTED)  # type: ignore[arg-type]
        if e.groups_mask & bit(g) and not (e.issued_mask | e.self_mask) & bit(g):
            msg.groups.add(group=g)  # type: ignore[arg-type]
    ts(e.first_found_at, msg.first_found_at)
    ts(e.closed_at, msg.closed_at)
    ts(e.reopened_at, msg.reopened_at)
    if e.reason_code:
        msg.school_reason.CopyFrom(
            pb.ReasonReport(
                level=common_pb2.ORG_LEVEL_SCHOOL,
                org_code=e.reason_org_code or e.school_org_code,
                org_name=e.school_name,
                reason_code=e.reason_code,
                reason_label=_label(e.reason_code, reasons),
                note=e.reason_note,
                reported_by=e.reason_by,
                carried_over=e.reason_carried_over,
            )
        )
        ts(e.reason_at, msg.school_reason.reported_at)
    for a in e.authority_reasons:
        report = msg.authority_reasons.add(
            level=a.org_level,  # type: ignore[arg-type]
            org_code=a.org_code,
            org_name=a.org_name,
            reason_code=a.reason_code,
            reason_label=_label(a.reason_code, reasons),
            note=a.note,
            reported_by=a.reported_by,
        )
        ts(a.reported_at, report.reported_at)
    return msg


def _group_count(group: int, c: Cell) -> pb.GroupCount:
    return pb.GroupCount(
        group=group,  # type: ignore[arg-type]
        students=c.students,
        issued_students=c.issued,
        self_collected_students=c.self_collected,
        funded=c.funded,
        unfunded=c.unfunded,
        reason_reported=c.reported,
        reason_pending=max(0, c.unfunded - c.reported),
    )


def org_ref(code: str, name: str, level: int, path: str) -> common_pb2.OrgRef:
    """An OrgRef for display."""
    return common_pb2.OrgRef(org_code=code, name=name, level=level, org_path=path)  # type: ignore[arg-type]


def statement_pb(
    s: StatementRow, reasons: dict[str, ReasonCode], period: Period | None
) -> pb.AuthorityStatement:
    """An authority's statement for a period."""
    msg = pb.AuthorityStatement(
        org=org_ref(s.org_code, s.org_name, s.org_level, s.org_path),
        group=s.special_group,  # type: ignore[arg-type]
        reason_code=s.reason_code,
        reason_label=_label(s.reason_code, reasons),
        note=s.note,
        reported_by=s.reported_by,
    )
    if period is not None:
        msg.period.CopyFrom(period_pb(period))
    ts(s.reported_at, msg.reported_at)
    return msg


def stats_row_pb(
    row: StatsRow, reasons: dict[str, ReasonCode], period: Period | None
) -> pb.UnfundedStatsRow:
    """A statistics row: all groups, the 13 groups in order, reasons by code, statements."""
    msg = pb.UnfundedStatsRow(
        kind=row.kind,  # type: ignore[arg-type]
        org=org_ref(row.org_code, row.org_name, row.org_level, row.org_path),
        all_groups=_group_count(0, row.cells.get(0, Cell())),
        groups=[_group_count(g, row.cells.get(g, Cell())) for g in GROUPS],
    )
    for code, n in sorted(row.reasons.items()):
        msg.reasons.add(reason_code=code, reason_label=_label(code, reasons), count=n)
    for code, n in sorted(row.authority_reasons.items()):
        msg.authority_reasons.add(reason_code=code, reason_label=_label(code, reasons), count=n)
    msg.statements.extend(statement_pb(s, reasons, period) for s in row.statements)
    return msg


def legacy_pb(r: LegacyRow) -> pb.LegacyReport:
    """A report of the retired 建档立卡 report."""
    msg = pb.LegacyReport(
        legacy_id=r.legacy_id,
        project_code=r.project_code,
        project_name=r.project_name,
        student_id=r.student_id,
        student_name=r.student_name,
        id_number_masked=r.id_number_masked,
        school_org_code=r.school_org_code,
        school_name=r.school_name,
        school_org_path=r.school_org_path,
        legacy_reason=r.legacy_reason,
        reason_code=r.reason_code,
        note=r.note,
        reported_by=r.reported_by,
        carried_over=r.carried_over,
    )
    if r.period is not None:
        msg.period.CopyFrom(period_pb(r.period))
    ts(r.reported_at, msg.reported_at)
    return msg


def finding_pb(f: FindingRow, period: PeriodRow | None) -> pb.Finding:
    """A finding."""
    rule = RULES.get(f.rule_code)
    msg = pb.Finding(
        finding_id=str(f.finding_key),
        rule_code=f.rule_code,
        rule_name=rule.name if rule else "",
        severity=f.severity,  # type: ignore[arg-type]
        status=f.status,  # type: ignore[arg-type]
        org_code=f.org_code,
        org_name=f.org_name,
        org_path=f.org_path,
        student_id=f.student_id,
        student_name=f.student_name,
        id_number_masked=f.id_number_masked,
        project_code=f.project_code,
        record_ids=f.record_ids,
        summary=f.summary,
        facts=f.facts,
        run_id=f.run_id,
        resolution_note=f.resolution_note,
        resolved_by=f.resolved_by,
    )
    if period is not None:
        msg.period.CopyFrom(period_pb(period.period))
    ts(f.found_at, msg.found_at)
    ts(f.last_seen_at, msg.last_seen_at)
    ts(f.resolved_at, msg.resolved_at)
    return msg


def action_pb(a: ActionRow) -> pb.FindingAction:
    """A step of a finding's history."""
    msg = pb.FindingAction(
        from_status=a.from_status,  # type: ignore[arg-type]
        to_status=a.to_status,  # type: ignore[arg-type]
        note=a.note,
        actor=a.actor,
        actor_org_code=a.actor_org_code,
        run_id=a.run_id,
    )
    ts(a.at, msg.at)
    return msg


def finding_stats_pb(row: FindingStatsRow) -> pb.FindingStatsRow:
    """Counts by rule (every rule of the catalogue, in order) and status."""
    msg = pb.FindingStatsRow(
        kind=row.kind,  # type: ignore[arg-type]
        org=org_ref(row.org_code, row.org_name, row.org_level, row.org_path),
    )
    for code, rule in RULES.items():
        for severity in sorted({rule.severity, *(s for c, s in row.counts if c == code)}):
            counts = row.counts.get((code, severity), {})
            if severity != rule.severity and not counts:
                continue
            msg.rules.add(
                rule_code=code,
                rule_name=rule.name,
                severity=severity,  # type: ignore[arg-type]
                open=counts.get(1, 0),
                confirmed=counts.get(2, 0),
                fixed=counts.get(3, 0),
                dismissed=counts.get(4, 0),
            )
    return msg


def quota_pb(q: QuotaRow) -> pb.Quota:
    """A quota."""
    msg = pb.Quota(
        project_code=q.project_code,
        school_year=q.school_year,
        org=org_ref(q.org_code, q.org_name, 0, q.org_path),
        places=q.places,
        set_by=q.set_by,
    )
    ts(q.set_at, msg.set_at)
    return msg

"""Domain objects ↔ contract messages (aid.v1 and common.v1)."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp
from zizhu_contracts.aid.v1 import aid_pb2
from zizhu_contracts.common.v1 import common_pb2

from aid_service.domain.enums import ExclusionScope, Level
from aid_service.domain.periods import AidPeriod, Period
from aid_service.domain.projects import AmountTier, Exclusion, Project
from aid_service.domain.records import AidRecord, Transition
from aid_service.domain.windows import Governing, Window


def ts(value: datetime | None) -> Timestamp | None:
    """A Timestamp, or None for None."""
    if value is None:
        return None
    out = Timestamp()
    out.FromDatetime(value)
    return out


def period_msg(p: AidPeriod) -> common_pb2.AidPeriod:
    """common.v1.AidPeriod."""
    return common_pb2.AidPeriod(school_year=p.school_year, term=int(p.term))  # type: ignore[arg-type]


def tiers_from(msgs: object) -> tuple[AmountTier, ...]:
    """Tiers from repeated AmountTier."""
    return tuple(AmountTier(m.tier_code, m.name, m.amount_fen) for m in msgs)  # type: ignore[attr-defined]


def exclusions_from(msgs: object) -> tuple[Exclusion, ...]:
    """Exclusions from repeated Exclusion (scope defaults to the school year)."""
    return tuple(
        Exclusion(
            m.project_code, ExclusionScope(m.scope) if m.scope else ExclusionScope.SCHOOL_YEAR
        )
        for m in msgs  # type: ignore[attr-defined]
    )


def levels_from(values: object) -> list[Level]:
    """Levels from repeated OrgLevel (UNSPECIFIED refused by the domain as invalid)."""
    out = []
    for v in values:  # type: ignore[attr-defined]
        out.append(Level(v) if v else Level.SCHOOL)
    return out


def project_msg(p: Project) -> aid_pb2.Project:
    """aid.v1.Project."""
    msg = aid_pb2.Project(
        project_code=p.project_code,
        name=p.name,
        owner_type=int(p.owner_type),  # type: ignore[arg-type]
        owner_org_code=p.owner_org_code,
        owner_org_path=p.owner_org_path,
        owner_level=int(p.owner_level),  # type: ignore[arg-type]
        stage=int(p.stage),  # type: ignore[arg-type]
        category=int(p.category),  # type: ignore[arg-type]
        tiers=[
            aid_pb2.AmountTier(tier_code=t.tier_code, name=t.name, amount_fen=t.amount_fen)
            for t in p.tiers
        ],
        allow_custom_amount=p.allow_custom_amount,
        min_amount_fen=p.min_amount_fen,
        max_amount_fen=p.max_amount_fen,
        requires_recognition=p.requires_recognition,
        min_hardship_level=int(p.min_hardship_level or 0),  # type: ignore[arg-type]
        exclusions=[
            aid_pb2.Exclusion(project_code=e.project_code, scope=int(e.scope))  # type: ignore[arg-type]
            for e in p.exclusions
        ],
        audit_levels=[int(x) for x in p.audit_levels],  # type: ignore[misc]
        annual=p.annual,
        start_school_year=p.start_school_year,
        end_school_year=p.end_school_year,
        status=int(p.status),  # type: ignore[arg-type]
        policy_basis=p.policy_basis,
        description=p.description,
        created_by=p.created_by,
        version=p.version,
        quota_per_school=p.quota_per_school,
    )
    if p.created_at:
        msg.created_at.FromDatetime(p.created_at)
    if p.updated_at:
        msg.updated_at.FromDatetime(p.updated_at)
    return msg


def period_info_msg(p: Period) -> aid_pb2.Period:
    """aid.v1.Period."""
    msg = aid_pb2.Period(
        period=period_msg(p.period),
        status=int(p.status),  # type: ignore[arg-type]
        starts_on=p.starts_on.isoformat(),
        ends_on=p.ends_on.isoformat(),
        deadline_on=p.deadline_on.isoformat(),
    )
    if p.opened_at:
        msg.opened_at.FromDatetime(p.opened_at)
    if p.closed_at:
        msg.closed_at.FromDatetime(p.closed_at)
    return msg


def window_msg(w: Window, *, now: datetime) -> aid_pb2.Window:
    """aid.v1.Window with open_now computed."""
    msg = aid_pb2.Window(
        window_id=w.window_id,
        project_code=w.project_code,
        period=period_msg(w.period),
        phase=int(w.phase),  # type: ignore[arg-type]
        org_code=w.org_code,
        org_path=w.org_path,
        extension=w.extension,
        reason=w.reason,
        set_by=w.set_by,
        open_now=w.open_at(now),
        is_default=w.is_default,
    )
    msg.starts_at.FromDatetime(w.starts_at)
    msg.ends_at.FromDatetime(w.ends_at)
    if w.set_at:
        msg.set_at.FromDatetime(w.set_at)
    return msg


def governing_msgs(items: list[Governing], *, now: datetime) -> list[aid_pb2.EffectiveWindow]:
    """aid.v1.EffectiveWindow per phase."""
    out = []
    for g in items:
        msg = aid_pb2.EffectiveWindow(phase=int(g.phase), open_now=g.open_now)  # type: ignore[arg-type]
        if g.window is not None:
            msg.window.CopyFrom(window_msg(g.window, now=now))
        out.append(msg)
    return out


def record_msg(
    r: AidRecord, *, project_name: str = "", school_name: str = "", id_number: str = ""
) -> aid_pb2.AidRecord:
    """aid.v1.AidRecord (the full ID number only when given, i.e. an audited read)."""
    msg = aid_pb2.AidRecord(
        record_id=r.record_id,
        project_code=r.project_code,
        project_name=project_name,
        project_category=int(r.category),  # type: ignore[arg-type]
        owner_type=int(r.owner_type),  # type: ignore[arg-type]
        stage=int(r.stage),  # type: ignore[arg-type]
        period=period_msg(r.period),
        student_id=r.student_id,
        student_name=r.student_name,
        id_number_masked=r.id_number_masked,
        id_number=id_number,
        id_number_blind_index=r.id_number_blind_index,
        student_number=r.student_number,
        school_org_code=r.school_org_code,
        school_name=school_name,
        school_org_path=r.school_org_path,
        grade=r.grade,
        class_name=r.class_name,
        amount_fen=r.amount_fen,
        tier_code=r.tier_code,
        hardship_level=int(r.hardship_level or 0),  # type: ignore[arg-type]
        bank_name=r.bank_name,
        bank_card_masked=r.bank_card_masked,
        remark=r.remark,
        status=int(r.status),  # type: ignore[arg-type]
        pending_level=int(r.pending_level or 0),  # type: ignore[arg-type]
        pending_org_code=r.pending_org_code,
        audit_chain=[int(lvl) for lvl, _ in r.audit_chain],  # type: ignore[misc]
        last_opinion=r.last_opinion,
        entered_by=r.entered_by,
        version=r.version,
    )
    for name in ("entered_at", "submitted_at", "approved_at", "updated_at"):
        value = getattr(r, name)
        if value is not None:
            getattr(msg, name).FromDatetime(value)
    return msg


def transition_msg(x: Transition) -> aid_pb2.RecordTransition:
    """aid.v1.RecordTransition."""
    msg = aid_pb2.RecordTransition(
        seq=x.seq,
        action=int(x.action),  # type: ignore[arg-type]
        from_status=int(x.from_status or 0),  # type: ignore[arg-type]
        to_status=int(x.to_status),  # type: ignore[arg-type]
        level=int(x.level),  # type: ignore[arg-type]
        org_code=x.org_code,
        org_name=x.org_name,
        actor_account_id=x.actor_account_id,
        opinion=x.opinion,
        amount_fen=x.amount_fen,
    )
    msg.at.FromDatetime(x.at)
    return msg

"""Aid records (资助名单) and their audit chain: school entry → school audit → each authority
level of the project's chain → approved; a return at any level sends the record to the school."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from aid_service.domain.enums import (
    EDITABLE_STATUSES,
    Action,
    Category,
    Decision,
    HardshipLevel,
    IdType,
    Level,
    OwnerType,
    RecordStatus,
    Stage,
)
from aid_service.domain.periods import AidPeriod
from aid_service.domain.projects import Project

ChainStep = tuple[Level, str]  # (authority level, org code)


def new_id(prefix: str) -> str:
    """A time-ordered id: prefix + 12 hex digits of milliseconds + 12 random hex digits."""
    return f"{prefix}{int(time.time() * 1000):012x}{os.urandom(6).hex()}"


class IdBlock:
    """Time-ordered ids for a bulk insert: one random stem, then a counter (cheap per row)."""

    def __init__(self, prefix: str) -> None:
        self._stem = f"{prefix}{int(time.time() * 1000):012x}{os.urandom(3).hex()}"
        self._n = 0

    def next(self) -> str:
        """The next id of the block (prefix + 24 hex digits, like new_id)."""
        self._n += 1
        return f"{self._stem}{self._n:06x}"


def dedup_key(project: Project, period: AidPeriod, student_id: str) -> str:
    """The slot a live record holds: one per student × project × period (× year if annual)."""
    when = period.school_year if project.annual else period.key
    return f"{project.project_code}|{when}|{student_id}"


@dataclass
class AidRecord:
    """One student's aid under one project in one period."""

    record_id: str
    project_code: str
    period: AidPeriod
    student_id: str
    id_number_blind_index: str
    id_number_masked: str
    id_type: IdType
    student_name: str
    student_number: str
    school_org_code: str
    school_org_path: str
    stage: Stage
    category: Category
    owner_type: OwnerType
    grade: str
    class_name: str
    amount_fen: int
    tier_code: str
    hardship_level: HardshipLevel | None
    bank_name: str = ""
    bank_card_enc: str = ""
    bank_card_masked: str = ""
    remark: str = ""
    status: RecordStatus = RecordStatus.DRAFT
    pending_level: Level | None = None
    pending_org_code: str = ""
    audit_chain: tuple[ChainStep, ...] = ()
    last_opinion: str = ""
    entered_by: str = ""
    entered_at: datetime | None = None
    entry_action: Action = Action.ENTERED
    entered_amount_fen: int = 0
    import_id: str = ""
    submitted_by: str = ""
    submitted_at: datetime | None = None
    approved_at: datetime | None = None
    approved_level: Level | None = None
    updated_at: datetime | None = None
    version: int = 1
    dedup_key: str | None = None

    @property
    def editable(self) -> bool:
        """True while the school may change or delete it (draft or returned)."""
        return self.status in EDITABLE_STATUSES


@dataclass
class Transition:
    """One step of a record's history (actor, level, time, opinion)."""

    record_id: str
    seq: int
    action: Action
    from_status: RecordStatus | None
    to_status: RecordStatus
    level: Level
    org_code: str
    actor_account_id: str
    opinion: str
    amount_fen: int
    at: datetime
    org_name: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def creation_transition(r: AidRecord) -> Transition:
    """The first step of every history, kept on the record itself (录入 or 模板导入)."""
    assert r.entered_at is not None
    return Transition(
        record_id=r.record_id,
        seq=1,
        action=r.entry_action,
        from_status=None,
        to_status=RecordStatus.DRAFT,
        level=Level.SCHOOL,
        org_code=r.school_org_code,
        actor_account_id=r.entered_by,
        opinion=f"导入批次 {r.import_id}" if r.import_id else "",
        amount_fen=r.entered_amount_fen,
        at=r.entered_at,
    )


def audit_chain(project: Project, ancestors: Sequence[ChainStep]) -> tuple[ChainStep, ...]:
    """The authorities that re-audit a school's record, bottom-up.

    ancestors: the school's ancestors (root first) with their levels. The chain is the project's
    audit levels found among them, at or below the owner's level; a school with none of them
    above it (a 部属高校 under the nation, a provincial school) is audited by its managing
    authority. School and social projects stop at the school.
    """
    if project.owner_type in (OwnerType.SCHOOL, OwnerType.SOCIAL):
        return ()
    wanted = set(project.audit_levels)
    steps = [
        (lvl, code)
        for lvl, code in ancestors
        if lvl in wanted and lvl >= project.owner_level and lvl is not Level.SCHOOL
    ]
    if not steps and ancestors and ancestors[-1][0] is not Level.SCHOOL:
        steps = [ancestors[-1]]
    return tuple(sorted(steps, key=lambda s: s[0], reverse=True))


@dataclass(frozen=True)
class Step:
    """Where a record goes after a decision."""

    status: RecordStatus
    pending_level: Level | None
    pending_org_code: str
    final_level: Level | None = None


def awaiting(record: AidRecord) -> tuple[Level, str] | None:
    """(level, org code) whose auditors must act on the record now, if any."""
    if record.status is RecordStatus.PENDING_SCHOOL_AUDIT:
        return Level.SCHOOL, record.school_org_code
    if record.status is RecordStatus.PENDING_AUTHORITY_AUDIT and record.pending_level:
        return record.pending_level, record.pending_org_code
    return None


def after_submit(chain: Sequence[ChainStep], school_org_code: str) -> Step:
    """Submitted (上报): the school audit comes first."""
    del chain
    return Step(RecordStatus.PENDING_SCHOOL_AUDIT, Level.SCHOOL, school_org_code)


def after_decision(record: AidRecord, decision: Decision) -> Step:
    """The next state after an approval or a return at the level the record awaits."""
    here = awaiting(record)
    assert here is not None, "only a pending record takes a decision"
    level = here[0]
    if decision is Decision.RETURN:
        return Step(RecordStatus.RETURNED, None, "")
    chain = list(record.audit_chain)
    if level is Level.SCHOOL:
        remaining = chain
    else:
        idx = next((i for i, s in enumerate(chain) if s[0] is level), len(chain) - 1)
        remaining = chain[idx + 1 :]
    if not remaining:
        return Step(RecordStatus.APPROVED, None, "", final_level=level)
    nxt = remaining[0]
    return Step(RecordStatus.PENDING_AUTHORITY_AUDIT, nxt[0], nxt[1])


@dataclass(frozen=True)
class Refusal:
    """Why one record of a batch cannot take an action."""

    record_id: str
    code: str
    message: str


def audit_refusal(
    record: AidRecord, *, caller_level: Level, caller_org: str, caller_account: str
) -> Refusal | None:
    """Why the caller may not audit this record now (None when it may)."""
    here = awaiting(record)
    if here is None:
        return Refusal(
            record.record_id,
            "RECORD_NOT_PENDING",
            f"记录当前状态为“{record.status.label}”，不在审核中",
        )
    level, org = here
    if level is not caller_level or org != caller_org:
        return Refusal(
            record.record_id,
            "NOT_AWAITING_CALLER",
            f"记录正等待{level.label}审核（{org}），不是本单位",
        )
    if record.entered_by == caller_account or record.submitted_by == caller_account:
        return Refusal(
            record.record_id,
            "FOUR_EYES",
            "同一账号不能审核自己录入或上报的记录（四眼原则）",
        )
    return None


def edit_refusal(record: AidRecord) -> Refusal | None:
    """Why the school may not edit, delete or submit the record (None when it may)."""
    if record.editable:
        return None
    return Refusal(
        record.record_id,
        "RECORD_NOT_EDITABLE",
        f"记录当前状态为“{record.status.label}”，只有待上报或已退回的记录可以修改、删除或上报",
    )


def mask_bank_card(card: str) -> str:
    """Bank card for display: first 4 and last 4 digits."""
    if len(card) <= 8:
        return "*" * len(card)
    return card[:4] + "*" * (len(card) - 8) + card[-4:]


def check_bank_card(card: str) -> str | None:
    """Why a bank card number is malformed (None when fine); 12–19 digits."""
    if not card:
        return None
    if not card.isdigit() or not 12 <= len(card) <= 19:
        return "银行卡号应为12至19位数字"
    return None

"""Data verification (数据核查): the rule catalogue, what a hit carries, and the finding life
cycle. The rules themselves are set-based queries (repository.verification); this module names
them, words their summaries and decides status changes."""

from __future__ import annotations

from dataclasses import dataclass, field

ERROR, WARNING = 1, 2  # FindingSeverity
OPEN, CONFIRMED, FIXED, DISMISSED, CLEARED = 1, 2, 3, 4, 5  # FindingStatus
STATUS_NAMES = {
    OPEN: "待处理",
    CONFIRMED: "确认问题",
    FIXED: "已整改",
    DISMISSED: "排除",
    CLEARED: "已消除",
}
RESOLUTIONS = (CONFIRMED, FIXED, DISMISSED)
# Statuses a later run keeps watching: still found → stays; gone → CLEARED.
LIVE = (OPEN, CONFIRMED)


@dataclass(frozen=True)
class Rule:
    """One verification rule of the catalogue (DOMAIN.md §7)."""

    code: str
    name: str
    severity: int


RULES: dict[str, Rule] = {
    r.code: r
    for r in (
        Rule("R01", "同一学生同一项目同一周期在多所学校获资助", ERROR),
        Rule("R02", "同一学校内重复资助", ERROR),
        Rule("R03", "资助金额不符合标准", ERROR),
        Rule("R04", "资助周期内不在校仍获资助", ERROR),
        Rule("R05", "身份信息异常", ERROR),
        Rule("R06", "同一学年享受互斥资助", ERROR),
        Rule("R07", "助困类资助无困难认定", WARNING),
        Rule("R09", "超出资助名额", ERROR),
        Rule("R11", "学校不设该学段", ERROR),
        Rule("R12", "资助金额超过已下达资金", WARNING),
    )
}

# Plausible age (in years, at the start of the school year) per stage, for R05.
AGE_RANGE: dict[int, tuple[int, int]] = {
    1: (2, 8),  # 学前
    2: (5, 18),  # 义务教育
    3: (12, 23),  # 普通高中
    4: (12, 45),  # 中职
    5: (14, 70),  # 本专科
    6: (18, 75),  # 研究生
}


@dataclass
class Hit:
    """One thing a rule found in a run: becomes a finding or keeps an existing one alive."""

    rule_code: str
    fingerprint: str
    org_code: str
    org_path: str
    summary: str
    severity: int = 0
    student_key: int | None = None
    student_id: str = ""
    project_code: str = ""
    record_ids: list[str] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.severity:
            self.severity = RULES[self.rule_code].severity


def fingerprint(rule_code: str, *parts: object) -> str:
    """A stable identity of a hit across runs (same rule, same facts → same finding)."""
    return "|".join([rule_code, *(str(p) for p in parts)])[:400]


def status_after_run(status: int, found: bool) -> int | None:
    """The status a finding takes when a run does (found) or does not find it again; None keeps
    it. DISMISSED stays dismissed (the school explained it); FIXED or CLEARED found again
    reopens; a live finding no longer found is CLEARED."""
    if found:
        return OPEN if status in (FIXED, CLEARED) else None
    return CLEARED if status in LIVE else None


def yuan(fen: int) -> str:
    """Fen as a yuan amount for summaries (e.g. 115000 → "1150.00元")."""
    return f"{fen / 100:.2f}元"

"""Value objects of the funding service: levels, fund sources, ledger lines, org and project
copies, periods and fiscal years. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum

MAX_AMOUNT_FEN = 10**14  # 1 万亿元: far above any single allocation, far below int64 overflow


class Level(StrEnum):
    """The five levels of use (五级应用), as carried in the caller context."""

    NATIONAL = "national"  # 国家
    PROVINCE = "province"  # 省
    CITY = "city"  # 市
    COUNTY = "county"  # 县
    SCHOOL = "school"  # 校

    @property
    def rank(self) -> int:
        """0 for national … 4 for school."""
        return LEVEL_ORDER.index(self)


LEVEL_ORDER = (Level.NATIONAL, Level.PROVINCE, Level.CITY, Level.COUNTY, Level.SCHOOL)
LEVEL_NAMES = {
    Level.NATIONAL: "国家",
    Level.PROVINCE: "省级",
    Level.CITY: "市级",
    Level.COUNTY: "县级",
    Level.SCHOOL: "学校",
}


class FundSource(IntEnum):
    """Where the money comes from (资金来源); values are the proto enum numbers."""

    CENTRAL = 1  # 中央
    PROVINCE = 2  # 省级
    CITY = 3  # 市级
    COUNTY = 4  # 县级
    SCHOOL = 5  # 学校
    SOCIAL = 6  # 社会

    @property
    def label(self) -> str:
        """Chinese name shown to users."""
        return SOURCE_NAMES[self]

    @property
    def level(self) -> Level | None:
        """The level whose own money this source is; None for social money."""
        return SOURCE_LEVEL.get(self)


SOURCE_NAMES = {
    FundSource.CENTRAL: "中央",
    FundSource.PROVINCE: "省级",
    FundSource.CITY: "市级",
    FundSource.COUNTY: "县级",
    FundSource.SCHOOL: "学校",
    FundSource.SOCIAL: "社会",
}
SOURCE_LEVEL = {
    FundSource.CENTRAL: Level.NATIONAL,
    FundSource.PROVINCE: Level.PROVINCE,
    FundSource.CITY: Level.CITY,
    FundSource.COUNTY: Level.COUNTY,
    FundSource.SCHOOL: Level.SCHOOL,
}
OWN_SOURCE = {level: source for source, level in SOURCE_LEVEL.items()}


class AllocationKind(StrEnum):
    """A ledger line passes money down (下达) or records an org's own money (本级安排)."""

    TRANSFER = "transfer"  # 下达
    CONTRIBUTION = "contribution"  # 本级安排

    @property
    def label(self) -> str:
        """Chinese name shown to users."""
        return "下达" if self is AllocationKind.TRANSFER else "本级安排"


class AllocationStatus(StrEnum):
    """Allocations are never edited or deleted; a correction reverses one (冲销)."""

    ACTIVE = "active"  # 有效
    REVERSED = "reversed"  # 已冲销

    @property
    def label(self) -> str:
        """Chinese name shown to users."""
        return "有效" if self is AllocationStatus.ACTIVE else "已冲销"


class Term(IntEnum):
    """Term of a school year; values are the proto enum numbers."""

    AUTUMN = 1  # 秋季学期 (Sep–Jan, opens the school year)
    SPRING = 2  # 春季学期 (Feb–Jul)


TERM_NAMES = {Term.AUTUMN: "秋季学期", Term.SPRING: "春季学期"}


@dataclass(frozen=True)
class Period:
    """An aid period (资助周期): school year "2024-2025" and term."""

    school_year: str
    term: Term

    @property
    def fiscal_year(self) -> str:
        """The fiscal year the period counts towards: the calendar year its term starts in."""
        first = int(self.school_year[:4])
        return str(first if self.term is Term.AUTUMN else first + 1)

    @property
    def label(self) -> str:
        """e.g. "2024-2025学年秋季学期"."""
        return f"{self.school_year}学年{TERM_NAMES[self.term]}"


def periods_of_fiscal_year(fiscal_year: str) -> list[Period]:
    """The two periods counting towards a fiscal year: its spring term and its autumn term."""
    y = int(fiscal_year)
    return [Period(f"{y - 1}-{y}", Term.SPRING), Period(f"{y}-{y + 1}", Term.AUTUMN)]


@dataclass(frozen=True)
class OrgNode:
    """The read copy of an identity org: code, name, level, explicit parent, materialised path."""

    code: str
    name: str
    level: Level
    parent_code: str | None
    path: str
    active: bool = True

    def contains(self, path: str) -> bool:
        """True when path lies in this org's subtree (the org itself included)."""
        return path.startswith(self.path)


@dataclass(frozen=True)
class ProjectRef:
    """The read copy of an aid project: what funding needs to validate and display it."""

    code: str
    name: str
    owner_org_code: str
    owner_org_path: str
    owner_level: Level | None
    category: int = 0
    stage: int = 0
    active: bool = True


@dataclass(frozen=True)
class AllocationLineInput:
    """One requested line of an allocation document."""

    to_org_code: str
    source: int
    amount_fen: int
    note: str = ""


@dataclass(frozen=True)
class AllocationInput:
    """An allocation document as requested (下达文件)."""

    project_code: str
    fiscal_year: str
    from_org_code: str
    document_number: str
    document_date: str
    allocated_on: str
    note: str
    lines: tuple[AllocationLineInput, ...]


@dataclass
class Allocation:
    """One line of the ledger."""

    allocation_id: str
    document_id: str
    kind: AllocationKind
    project_code: str
    fiscal_year: str
    from_org: OrgNode
    to_org: OrgNode
    source: FundSource
    amount_fen: int
    document_number: str
    document_date: str
    allocated_on: str
    note: str
    status: AllocationStatus
    entered_by: str
    entered_at: datetime
    project_name: str = ""
    reversal_reason: str = ""
    reversed_by: str = ""
    reversed_at: datetime | None = None


@dataclass(frozen=True)
class ShareLine:
    """One source's part of a cost share, in basis points (10000 = 100 %)."""

    source: FundSource
    basis_points: int


@dataclass(frozen=True)
class CostShare:
    """The cost sharing (分担比例) of a project for a region's subtree and a fiscal year."""

    project_code: str
    fiscal_year: str
    region: OrgNode
    shares: tuple[ShareLine, ...]
    document_number: str = ""
    set_by: str = ""
    set_at: datetime | None = None

    def part(self, source: FundSource) -> int:
        """Basis points of a source (0 when absent)."""
        return next((s.basis_points for s in self.shares if s.source == source), 0)


@dataclass
class Balance:
    """Per-source figures of one org, project and fiscal year (the lock unit of allocations)."""

    received_fen: int = 0
    contributed_fen: int = 0
    allocated_down_fen: int = 0

    @property
    def available_fen(self) -> int:
        """What the org may still pass down from this source."""
        return self.received_fen + self.contributed_fen - self.allocated_down_fen


@dataclass
class Figures:
    """Summary figures of an org (or a group of orgs) for one fiscal year."""

    received_fen: int = 0
    own_contribution_fen: int = 0
    allocated_down_fen: int = 0
    subtree_contributed_fen: int = 0
    school_funds_fen: int = 0
    executed_fen: int = 0
    executed_count: int = 0
    received_by_source: dict[FundSource, int] = field(default_factory=dict)
    funds_by_source: dict[FundSource, int] = field(default_factory=dict)
    expected_by_source: dict[FundSource, int] = field(default_factory=dict)

    @property
    def funds_fen(self) -> int:
        """Money of the subtree: received from above plus every contribution inside it."""
        return self.received_fen + self.subtree_contributed_fen

    @property
    def retained_fen(self) -> int:
        """Kept at the org's own level (本级结余)."""
        return self.received_fen + self.own_contribution_fen - self.allocated_down_fen

    @property
    def balance_fen(self) -> int:
        """Funds not yet executed (negative when overspent)."""
        return self.funds_fen - self.executed_fen

    @property
    def overspent(self) -> bool:
        """Approved aid above the subtree's funds (数据核查 R12)."""
        return self.executed_fen > self.funds_fen

    @property
    def execution_rate_bp(self) -> int:
        """executed / funds in basis points; 0 when there are no funds."""
        if self.funds_fen <= 0:
            return 0
        return self.executed_fen * 10_000 // self.funds_fen

    def add(self, other: Figures) -> None:
        """Accumulate another org's figures (subtotals, sums over projects)."""
        self.received_fen += other.received_fen
        self.own_contribution_fen += other.own_contribution_fen
        self.allocated_down_fen += other.allocated_down_fen
        self.subtree_contributed_fen += other.subtree_contributed_fen
        self.school_funds_fen += other.school_funds_fen
        self.executed_fen += other.executed_fen
        self.executed_count += other.executed_count
        for mine, theirs in (
            (self.received_by_source, other.received_by_source),
            (self.funds_by_source, other.funds_by_source),
            (self.expected_by_source, other.expected_by_source),
        ):
            for source, amount in theirs.items():
                mine[source] = mine.get(source, 0) + amount

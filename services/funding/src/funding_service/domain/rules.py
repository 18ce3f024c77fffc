"""Rules of the funding ledger: input checks, the pass-down limit per source, cost-share checks,
and the split of execution by cost share. Pure functions; errors carry a Chinese message, a
stable code and the field at fault."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from zizhu_common.errors import FailedPrecondition, InvalidArgument, NotFound

from funding_service.domain.model import (
    MAX_AMOUNT_FEN,
    OWN_SOURCE,
    AllocationInput,
    AllocationKind,
    Balance,
    FundSource,
    Level,
    OrgNode,
    Period,
    ShareLine,
    Term,
)

MAX_LINES = 1000
MAX_DOCUMENT_NUMBER = 100
MAX_NOTE = 500
MAX_LINE_NOTE = 200
MAX_REASON = 500
_FISCAL_YEAR = re.compile(r"^(19|20|21)\d{2}$")
_SCHOOL_YEAR = re.compile(r"^(\d{4})-(\d{4})$")


def yuan(fen: int) -> str:
    """Fen as a yuan amount for messages: 1234567 → "12,345.67元"."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d}元"


def check_fiscal_year(value: str, *, field: str = "fiscal_year") -> str:
    """A fiscal year "YYYY" (1900–2199)."""
    value = (value or "").strip()
    if not _FISCAL_YEAR.match(value):
        raise InvalidArgument(
            f"财政年度格式错误：{value or '（空）'}，应为四位年份，如 2024",
            code="FISCAL_YEAR_INVALID",
            field=field,
        )
    return value


def check_period(school_year: str, term: int, *, field: str = "period") -> Period:
    """An aid period: school year "YYYY-YYYY" (consecutive years) and a term."""
    m = _SCHOOL_YEAR.match((school_year or "").strip())
    if not m or int(m.group(2)) != int(m.group(1)) + 1:
        raise InvalidArgument(
            f"学年格式错误：{school_year or '（空）'}，应为如 2024-2025 的相邻两年",
            code="SCHOOL_YEAR_INVALID",
            field=f"{field}.school_year",
        )
    if term not in (Term.AUTUMN, Term.SPRING):
        raise InvalidArgument("学期须为秋季或春季", code="TERM_INVALID", field=f"{field}.term")
    return Period(school_year.strip(), Term(term))


def check_date(value: str, *, field: str, required: bool = True) -> str:
    """A calendar date "YYYY-MM-DD" (also accepts the template form YYYYMMDD)."""
    value = (value or "").strip()
    if not value:
        if required:
            raise InvalidArgument("日期不能为空", code="DATE_REQUIRED", field=field)
        return ""
    text = value
    if re.fullmatch(r"\d{8}", value):
        text = f"{value[:4]}-{value[4:6]}-{value[6:]}"
    try:
        parsed = date.fromisoformat(text) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else None
    except ValueError:
        parsed = None
    if parsed is None or not 1900 <= parsed.year <= 2199:
        raise InvalidArgument(
            f"日期格式错误：{value}，应为 YYYY-MM-DD", code="DATE_INVALID", field=field
        )
    return parsed.isoformat()


def check_text(value: str, *, field: str, label: str, limit: int, required: bool) -> str:
    """Trimmed text within a length limit."""
    value = (value or "").strip()
    if required and not value:
        raise InvalidArgument(f"{label}不能为空", code=f"{_code(field)}_REQUIRED", field=field)
    if len(value) > limit:
        raise InvalidArgument(
            f"{label}不能超过{limit}个字符", code=f"{_code(field)}_TOO_LONG", field=field
        )
    return value


def _code(field: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", field.split(".")[-1].upper()).strip("_")


def check_source(value: int, *, field: str) -> FundSource:
    """A known fund source."""
    try:
        return FundSource(value)
    except ValueError:
        raise InvalidArgument(
            "资金来源无效，应为中央、省级、市级、县级、学校或社会",
            code="FUND_SOURCE_INVALID",
            field=field,
        ) from None


def validate_allocation(req: AllocationInput) -> AllocationInput:
    """Check the shape of an allocation document before anything is looked up."""
    if not req.project_code.strip():
        raise InvalidArgument(
            "项目代码不能为空", code="PROJECT_CODE_REQUIRED", field="project_code"
        )
    fiscal_year = check_fiscal_year(req.fiscal_year)
    document_number = check_text(
        req.document_number,
        field="document_number",
        label="文号",
        limit=MAX_DOCUMENT_NUMBER,
        required=True,
    )
    document_date = check_date(req.document_date, field="document_date")
    allocated_on = check_date(req.allocated_on, field="allocated_on", required=False)
    note = check_text(req.note, field="note", label="备注", limit=MAX_NOTE, required=False)
    if not req.lines:
        raise InvalidArgument("至少需要一条下达明细", code="LINES_REQUIRED", field="lines")
    if len(req.lines) > MAX_LINES:
        raise InvalidArgument(
            f"一份文件最多{MAX_LINES}条明细", code="LINES_TOO_MANY", field="lines"
        )
    seen: dict[tuple[str, int], int] = {}
    lines = []
    for i, line in enumerate(req.lines):
        prefix = f"lines[{i}]"
        code = (line.to_org_code or "").strip()
        if not code:
            raise InvalidArgument(
                f"第{i + 1}条明细缺少接收单位",
                code="TO_ORG_REQUIRED",
                field=f"{prefix}.to_org_code",
            )
        source = check_source(line.source, field=f"{prefix}.source")
        if line.amount_fen <= 0:
            raise InvalidArgument(
                f"第{i + 1}条明细金额须大于0",
                code="AMOUNT_NOT_POSITIVE",
                field=f"{prefix}.amount_fen",
            )
        if line.amount_fen > MAX_AMOUNT_FEN:
            raise InvalidArgument(
                f"第{i + 1}条明细金额超出上限",
                code="AMOUNT_TOO_LARGE",
                field=f"{prefix}.amount_fen",
            )
        key = (code, int(source))
        if key in seen:
            raise InvalidArgument(
                f"第{i + 1}条与第{seen[key] + 1}条明细的接收单位和资金来源重复，请合并",
                code="LINE_DUPLICATE",
                field=f"{prefix}.to_org_code",
            )
        seen[key] = i
        line_note = check_text(
            line.note, field=f"{prefix}.note", label="明细备注", limit=MAX_LINE_NOTE, required=False
        )
        lines.append(type(line)(code, int(source), line.amount_fen, line_note))
    return AllocationInput(
        project_code=req.project_code.strip(),
        fiscal_year=fiscal_year,
        from_org_code=(req.from_org_code or "").strip(),
        document_number=document_number,
        document_date=document_date,
        allocated_on=allocated_on or document_date,
        note=note,
        lines=tuple(lines),
    )


def unknown_line_org(index: int) -> NotFound:
    """The answer for a line naming an org that does not exist or lies outside the allocating
    org's subtree: the same 404 for both, naming neither the org nor anything about it."""
    return NotFound(
        f"第{index + 1}条：接收单位不存在或不在本辖区内",
        code="ORG_NOT_FOUND",
        field=f"lines[{index}].to_org_code",
    )


def line_kind(from_org: OrgNode, to_org: OrgNode, source: FundSource, index: int) -> AllocationKind:
    """Classify a line: to the org itself (own contribution) or to a direct child (transfer).

    An org outside from_org's subtree answers NOT_FOUND without its name (the scope rule); one
    inside it that is not a direct child answers ALLOCATION_NOT_CHILD."""
    field = f"lines[{index}].to_org_code"
    if not from_org.contains(to_org.path):
        raise unknown_line_org(index)
    if to_org.code == from_org.code:
        own = OWN_SOURCE[from_org.level]
        if source not in (own, FundSource.SOCIAL):
            raise InvalidArgument(
                f"第{index + 1}条为本级安排，资金来源只能是{own.label}或社会",
                code="CONTRIBUTION_SOURCE_INVALID",
                field=f"lines[{index}].source",
            )
        return AllocationKind.CONTRIBUTION
    if to_org.parent_code != from_org.code:
        raise InvalidArgument(
            f"第{index + 1}条：{to_org.name}（{to_org.code}）不是{from_org.name}的直属下级，"
            "资金只能下达至直属下级地区或直属学校",
            code="ALLOCATION_NOT_CHILD",
            field=field,
        )
    if not to_org.active:
        raise InvalidArgument(
            f"第{index + 1}条：{to_org.name}（{to_org.code}）已撤销，不能再下达资金",
            code="ORG_RETIRED",
            field=field,
        )
    return AllocationKind.TRANSFER


@dataclass(frozen=True)
class Shortfall:
    """A source the document passes down more of than the org has."""

    source: FundSource
    requested_fen: int
    available_fen: int


def check_pass_down(
    balances: Mapping[FundSource, Balance],
    contributions: Mapping[FundSource, int],
    transfers: Mapping[FundSource, int],
) -> None:
    """Refuse a document that passes down, for any source, more than the org received plus what
    it contributes (including this document's own contribution lines)."""
    short = []
    for source in sorted(transfers):
        bal = balances.get(source, Balance())
        available = bal.available_fen + contributions.get(source, 0)
        if transfers[source] > available:
            short.append(Shortfall(source, transfers[source], available))
    if short:
        parts = "；".join(
            f"{s.source.label}资金本次下达{yuan(s.requested_fen)}，可下达余额{yuan(s.available_fen)}"
            for s in short
        )
        raise FailedPrecondition(
            f"下达金额超过本级可下达资金（上级下达加本级安排减已下达）：{parts}",
            code="FUNDS_INSUFFICIENT",
            field="lines",
            details={
                "shortfalls": [
                    {
                        "source": s.source.name,
                        "requested_fen": s.requested_fen,
                        "available_fen": s.available_fen,
                    }
                    for s in short
                ]
            },
        )


def check_reversal_keeps_cover(
    org: OrgNode, source: FundSource, balance: Balance, amount_fen: int
) -> None:
    """A reversal may not leave an org having passed down more than it still has."""
    if balance.available_fen - amount_fen < 0:
        raise FailedPrecondition(
            f"{org.name}已将该笔{source.label}资金继续下达（可下达余额{yuan(balance.available_fen)}，"
            f"冲销{yuan(amount_fen)}），请先冲销其向下级的下达",
            code="ALLOCATION_PASSED_DOWN",
            field="allocation_id",
            details={
                "org_code": org.code,
                "source": source.name,
                "available_fen": balance.available_fen,
                "amount_fen": amount_fen,
            },
        )


def validate_shares(shares: Sequence[ShareLine]) -> tuple[ShareLine, ...]:
    """Cost-share parts: known sources, each once, 0–10000 bp, summing to exactly 10000."""
    if not shares:
        raise InvalidArgument("分担比例不能为空", code="COST_SHARE_REQUIRED", field="shares")
    seen: set[FundSource] = set()
    out = []
    for i, line in enumerate(shares):
        source = check_source(int(line.source), field=f"shares[{i}].source")
        if source in seen:
            raise InvalidArgument(
                f"资金来源{source.label}重复",
                code="COST_SHARE_DUPLICATE",
                field=f"shares[{i}].source",
            )
        seen.add(source)
        if not 0 <= line.basis_points <= 10_000:
            raise InvalidArgument(
                "分担比例须在0%至100%之间",
                code="COST_SHARE_OUT_OF_RANGE",
                field=f"shares[{i}].basis_points",
            )
        if line.basis_points:
            out.append(ShareLine(source, line.basis_points))
    total = sum(s.basis_points for s in out)
    if total != 10_000:
        raise InvalidArgument(
            f"分担比例合计须为100%，当前为{total / 100:g}%",
            code="COST_SHARE_SUM",
            field="shares",
            details={"total_basis_points": total},
        )
    return tuple(sorted(out, key=lambda s: s.source))


def check_shares_fixed_above(
    shares: Sequence[ShareLine], fixed: Sequence[ShareLine], caller_level: Level
) -> None:
    """Parts of levels above the caller's, fixed by an ancestor's share, stay as they are."""
    mine = {s.source: s.basis_points for s in shares}
    theirs = {s.source: s.basis_points for s in fixed}
    for source in FundSource:
        level = source.level
        if level is None or level.rank >= caller_level.rank:
            continue
        if mine.get(source, 0) != theirs.get(source, 0):
            raise FailedPrecondition(
                f"{source.label}分担比例由上级确定为{theirs.get(source, 0) / 100:g}%，本级不可修改",
                code="COST_SHARE_FIXED_ABOVE",
                field="shares",
                details={"source": source.name, "basis_points": theirs.get(source, 0)},
            )


def split_by_share(amount_fen: int, shares: Iterable[ShareLine]) -> dict[FundSource, int]:
    """Split an amount by basis points (largest remainder, so the parts sum to the amount)."""
    shares = [s for s in shares if s.basis_points > 0]
    if not shares or amount_fen == 0:
        return {}
    raw = [(s.source, amount_fen * s.basis_points) for s in shares]
    parts = {src: v // 10_000 for src, v in raw}
    left = amount_fen - sum(parts.values())
    for src, _ in sorted(raw, key=lambda r: (-(r[1] % 10_000), r[0]))[: max(left, 0)]:
        parts[src] += 1
    return parts


def governing(path: str, shares_by_path: Mapping[str, Sequence[ShareLine]]) -> str | None:
    """The region path whose cost share governs path: the nearest one on the path (itself first)."""
    best = None
    for region in shares_by_path:
        if path.startswith(region) and (best is None or len(region) > len(best)):
            best = region
    return best


def expected_split(
    path: str,
    executed_by_path: Mapping[str, int],
    shares_by_path: Mapping[str, Sequence[ShareLine]],
) -> dict[FundSource, int]:
    """What each source should bear of the execution of path's subtree: regions inside it with
    their own cost share count under that share, the rest under the share governing path.

    executed_by_path must hold path and every share region inside it."""
    inner = [r for r in shares_by_path if r != path and r.startswith(path)]
    top = [r for r in inner if not any(o != r and r.startswith(o) for o in inner)]
    out: dict[FundSource, int] = {}
    rest = executed_by_path.get(path, 0)
    for region in top:
        rest -= executed_by_path.get(region, 0)
        for src, v in expected_split(region, executed_by_path, shares_by_path).items():
            out[src] = out.get(src, 0) + v
    gov = governing(path, shares_by_path)
    if gov is not None and rest > 0:
        for src, v in split_by_share(rest, shares_by_path[gov]).items():
            out[src] = out.get(src, 0) + v
    return out


def path_codes(path: str) -> list[str]:
    """Org codes of a materialised path, root first: "/000000/440000/" → ["000000", "440000"]."""
    return [c for c in path.split("/") if c]


def ancestor_paths(path: str) -> list[str]:
    """Paths of the node and each ancestor, root first."""
    codes = path_codes(path)
    return ["/" + "/".join(codes[: i + 1]) + "/" for i in range(len(codes))]


def subtree_upper(path: str) -> str:
    """Exclusive upper bound of the paths inside path's subtree (paths hold digits and '/')."""
    return path[:-1] + chr(ord(path[-1]) + 1)

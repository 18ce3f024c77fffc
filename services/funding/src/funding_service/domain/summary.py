"""The fund summary of an authority (资金执行情况): a TOTAL row for the org, its directly-run
schools (one subtotal, or one row each), then one row per child region — the layout of the
real system's statistics pages. Pure assembly from per-org figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from funding_service.domain.model import Figures, FundSource, Level, OrgNode

TOTAL, DIRECT_SCHOOLS, CHILD_REGION, SCHOOL = "total", "direct_schools", "child_region", "school"


@dataclass
class SummaryRow:
    """One row: its kind, its org (None for the directly-run schools subtotal), its figures."""

    kind: str
    org: OrgNode | None
    figures: Figures


def org_figures(
    per_project: Mapping[str, Figures] | None,
    by_source: Mapping[FundSource, tuple[int, int]] | None = None,
    expected: Mapping[FundSource, int] | None = None,
) -> Figures:
    """One org's figures summed over projects, with its per-source splits when given."""
    out = Figures()
    for fig in (per_project or {}).values():
        out.add(fig)
    for source, (received, subtree_contributed) in (by_source or {}).items():
        if received:
            out.received_by_source[source] = received
        if received + subtree_contributed:
            out.funds_by_source[source] = received + subtree_contributed
    for source, amount in (expected or {}).items():
        if amount:
            out.expected_by_source[source] = amount
    return out


def assemble(
    root: OrgNode,
    children: Sequence[OrgNode],
    figures: Mapping[str, Figures],
    *,
    expand_direct_schools: bool,
) -> list[SummaryRow]:
    """Rows of the summary of root, from each org's figures (orgs without any are zero)."""
    rows = [SummaryRow(TOTAL, root, figures.get(root.code, Figures()))]
    if root.level is Level.SCHOOL:
        return rows
    schools = [c for c in children if c.level is Level.SCHOOL and (c.active or c.code in figures)]
    regions = [
        c for c in children if c.level is not Level.SCHOOL and (c.active or c.code in figures)
    ]
    if schools:
        if expand_direct_schools:
            rows += [SummaryRow(SCHOOL, s, figures.get(s.code, Figures())) for s in schools]
        else:
            subtotal = Figures()
            for s in schools:
                subtotal.add(figures.get(s.code, Figures()))
            rows.append(SummaryRow(DIRECT_SCHOOLS, None, subtotal))
    rows += [SummaryRow(CHILD_REGION, r, figures.get(r.code, Figures())) for r in regions]
    return rows

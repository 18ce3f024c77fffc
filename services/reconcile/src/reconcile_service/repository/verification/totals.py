"""Rules over totals (R09 quota, R12 funds): counts and sums compared with what was set."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy.ext.asyncio import AsyncSession

from reconcile_service.domain.rules import Hit, fingerprint, yuan
from reconcile_service.repository.verification.base import RuleScope, rows_of


async def r09_quota(session: AsyncSession, s: RuleScope) -> list[Hit]:
    """R09: more students approved for a project in a school year than the org's quota."""
    rows = await rows_of(
        session,
        f"""
        SELECT q.project_code, q.org_code, q.org_path, q.places,
               (SELECT COUNT(DISTINCT r.student_key)
                  FROM aid_record r JOIN period p ON p.period_key = r.period_key
                 WHERE r.project_code = q.project_code AND r.status = 5
                   AND p.school_year = q.school_year
                   AND r.school_org_path LIKE q.org_path || '%') AS used
        FROM quota q
        WHERE q.school_year = :school_year {s.where_scope("q.org_path")}
        """,
        s.params,
    )
    return [
        Hit(
            "R09",
            fingerprint("R09", r["project_code"], s.period.school_year, r["org_code"]),
            r["org_code"],
            r["org_path"],
            f"本学年获资助学生{r['used']}人，超出名额{r['places']}人",
            project_code=r["project_code"],
            facts={"places": str(r["places"]), "students": str(r["used"])},
        )
        for r in rows
        if r["used"] > r["places"]
    ]


async def r12_funds(session: AsyncSession, s: RuleScope) -> list[Hit]:
    """R12: approved aid in an org's subtree above the funds recorded for it (allocations
    received plus its own contributions) for the project and fiscal year."""
    fy = s.period.fiscal_year
    funds = await rows_of(
        session,
        """
        SELECT project_code, to_org_code, MAX(to_org_path) AS path, SUM(amount_fen) AS amount
        FROM allocation WHERE fiscal_year = :fy AND NOT reversed
        GROUP BY project_code, to_org_code
        """,
        {"fy": fy},
    )
    funds = [f for f in funds if s.contains(f["path"])]
    if not funds:
        return []
    autumn_year = f"{fy}-{int(fy) + 1}"
    spring_year = f"{int(fy) - 1}-{fy}"
    spent_rows = await rows_of(
        session,
        """
        SELECT r.project_code, r.school_org_path, SUM(r.amount_fen) AS amount
        FROM aid_record r JOIN period p ON p.period_key = r.period_key
        WHERE r.status = 5
          AND ((p.school_year = :autumn AND p.term = 1) OR (p.school_year = :spring AND p.term = 2))
        GROUP BY r.project_code, r.school_org_path
        """,
        {"autumn": autumn_year, "spring": spring_year},
    )
    spent: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for r in spent_rows:
        spent[r["project_code"]].append((r["school_org_path"], int(r["amount"])))
    hits = []
    for f in funds:
        total = sum(a for path, a in spent[f["project_code"]] if path.startswith(f["path"]))
        if total > int(f["amount"]):
            hits.append(
                Hit(
                    "R12",
                    fingerprint("R12", f["project_code"], fy, f["to_org_code"]),
                    f["to_org_code"],
                    f["path"],
                    f"{fy}年度已审核通过资助{yuan(total)}，超过已下达资金{yuan(int(f['amount']))}",
                    project_code=f["project_code"],
                    facts={
                        "fiscal_year": fy,
                        "approved_fen": str(total),
                        "funds_fen": str(int(f["amount"])),
                    },
                )
            )
    return hits

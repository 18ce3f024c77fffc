"""Data verification rules (数据核查) as set-based queries over the read copy.

Each rule returns the hits of one period in one scope; the caller turns hits into findings.
Approved records are the subject of every rule except R09/R12, which compare totals.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from reconcile_service.domain.rules import Hit
from reconcile_service.repository.verification.base import RuleScope
from reconcile_service.repository.verification.records import (
    r01_multi_school,
    r02_duplicate,
    r03_amount,
    r04_not_enrolled,
    r05_identity,
    r06_exclusive,
    r07_recognition,
    r11_stage,
)
from reconcile_service.repository.verification.totals import r09_quota, r12_funds

RULE_QUERIES = (
    r01_multi_school,
    r02_duplicate,
    r03_amount,
    r04_not_enrolled,
    r05_identity,
    r06_exclusive,
    r07_recognition,
    r09_quota,
    r11_stage,
    r12_funds,
)


async def evaluate(session: AsyncSession, s: RuleScope) -> list[Hit]:
    """Every rule's hits for one period and scope, one per fingerprint."""
    hits: dict[str, Hit] = {}
    for query in RULE_QUERIES:
        for hit in await query(session, s):
            hits.setdefault(hit.fingerprint, hit)
    return list(hits.values())


__all__ = ["RULE_QUERIES", "RuleScope", "evaluate"]

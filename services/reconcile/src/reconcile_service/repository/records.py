"""Reconcile's smaller records: the reason dictionary, authority statements, the retired
建档立卡 report's history, and quotas (名额)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from reconcile_service import tables as t
from reconcile_service.domain.periods import Period
from reconcile_service.domain.reasons import ReasonCode
from reconcile_service.repository.sql import aware, chunks, upsert

# --- reason dictionary ----------------------------------------------------------------------------


async def dictionary(session: AsyncSession) -> tuple[dict[str, ReasonCode], int]:
    """Every reason code (enabled or not) and the dictionary version."""
    C = t.reason_code
    rows = await session.execute(select(C).order_by(C.c.sort_order, C.c.code))
    codes = {
        r.code: ReasonCode(
            r.code, r.label, r.description, bool(r.requires_note), bool(r.enabled), r.sort_order
        )
        for r in rows
    }
    version = (
        await session.execute(
            select(t.reason_dictionary.c.version).where(t.reason_dictionary.c.id == 1)
        )
    ).scalar_one_or_none()
    return codes, int(version or 0)


async def save_reasons(
    session: AsyncSession, entries: Sequence[ReasonCode], *, actor: str, now: datetime
) -> int:
    """Add or replace entries and bump the version; returns the new version."""
    stmt = upsert(session, t.reason_code)
    cols = (
        "label",
        "description",
        "requires_note",
        "enabled",
        "sort_order",
        "updated_by",
        "updated_at",
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["code"], set_={c: stmt.excluded[c] for c in cols}
    )
    await session.execute(
        stmt,
        [
            {
                "code": e.code,
                "label": e.label,
                "description": e.description,
                "requires_note": e.requires_note,
                "enabled": e.enabled,
                "sort_order": e.sort_order,
                "updated_by": actor,
                "updated_at": now,
            }
            for e in entries
        ],
    )
    D = t.reason_dictionary
    await session.execute(update(D).where(D.c.id == 1).values(version=D.c.version + 1))
    return int((await session.execute(select(D.c.version).where(D.c.id == 1))).scalar_one())


# --- authority statements ---------------------------------------------------------------------------


@dataclass
class StatementRow:
    """An authority's statement for a period (special_group 0 = all groups)."""

    org_code: str
    org_path: str
    org_level: int
    org_name: str
    period_key: int
    special_group: int
    reason_code: str
    note: str
    reported_by: str
    reported_at: datetime | None


async def save_statement(session: AsyncSession, row: StatementRow) -> None:
    """File or replace a statement."""
    stmt = upsert(session, t.authority_statement)
    values = {**row.__dict__}
    stmt = stmt.on_conflict_do_update(
        index_elements=["org_code", "period_key", "special_group"],
        set_={
            c: stmt.excluded[c]
            for c in (
                "org_path",
                "org_level",
                "org_name",
                "reason_code",
                "note",
                "reported_by",
                "reported_at",
            )
        },
    )
    await session.execute(stmt, values)


async def statements(
    session: AsyncSession,
    *,
    period_key: int,
    root_path: str,
    org_codes: Sequence[str] | None = None,
) -> list[StatementRow]:
    """Statements of a period by orgs under root (or only the given orgs)."""
    T = t.authority_statement
    cond: list[Any] = [T.c.period_key == period_key]
    if root_path != "/":
        cond.append(T.c.org_path.startswith(root_path, autoescape=True))
    if org_codes is not None:
        if not org_codes:
            return []
        cond.append(T.c.org_code.in_(list(org_codes)))
    rows = await session.execute(select(T).where(*cond).order_by(T.c.org_path, T.c.special_group))
    out = []
    for r in rows:
        v = dict(r._mapping)
        v["reported_at"] = aware(v["reported_at"])
        out.append(StatementRow(**v))
    return out


# --- retired 建档立卡 report ------------------------------------------------------------------------


@dataclass
class LegacyRow:
    """One report of the retired 建档立卡 unfunded report."""

    legacy_key: int
    legacy_id: str
    period_key: int
    project_code: str
    project_name: str
    id_type: int
    id_number_blind_index: str
    id_number_masked: str
    student_name: str
    school_org_code: str
    school_org_path: str
    school_name: str
    legacy_reason: str
    reason_code: str
    note: str
    reported_by: str
    reported_at: datetime | None
    imported_at: datetime | None
    student_id: str = ""
    period: Period | None = None
    # Autumn-2023 reports are carried into the unfunded module.
    carried_over: bool = False


async def upsert_legacy(session: AsyncSession, rows: Sequence[dict]) -> None:
    """Load reports; a re-import of the same period × project × person replaces the row."""
    stmt = upsert(session, t.legacy_report)
    cols = [c.name for c in t.legacy_report.columns if c.name not in ("legacy_key", "legacy_id")]
    stmt = stmt.on_conflict_do_update(
        index_elements=["legacy_id"], set_={c: stmt.excluded[c] for c in cols}
    )
    for part in chunks(list(rows), 1000):
        await session.execute(stmt, list(part))


async def list_legacy(
    session: AsyncSession,
    *,
    scope_path: str,
    period_key: int | None,
    project_code: str,
    student_name: str,
    blind_index: str,
    after: tuple[str, int] | None,
    limit: int,
) -> tuple[list[LegacyRow], int]:
    """A page of legacy reports in scope, with the matched student id when known."""
    L, S = t.legacy_report, t.student
    cond: list[Any] = []
    if scope_path != "/":
        cond.append(L.c.school_org_path.startswith(scope_path, autoescape=True))
    if period_key:
        cond.append(L.c.period_key == period_key)
    if project_code:
        cond.append(L.c.project_code == project_code)
    if student_name:
        cond.append(L.c.student_name.startswith(student_name, autoescape=True))
    if blind_index:
        cond.append(L.c.id_number_blind_index == blind_index)
    page = list(cond)
    if after is not None:
        page.append(
            or_(
                L.c.school_org_path > after[0],
                and_(L.c.school_org_path == after[0], L.c.legacy_key > after[1]),
            )
        )
    student_id = (
        select(func.min(S.c.student_id))
        .where(
            S.c.id_number_blind_index == L.c.id_number_blind_index, S.c.id_number_blind_index != ""
        )
        .scalar_subquery()
    )
    rows = await session.execute(
        select(L, student_id.label("student_id"))
        .where(*page)
        .order_by(L.c.school_org_path, L.c.legacy_key)
        .limit(limit)
    )
    out = []
    for r in rows:
        v = dict(r._mapping)
        v["student_id"] = v["student_id"] or ""
        v["reported_at"] = aware(v["reported_at"])
        v["imported_at"] = aware(v["imported_at"])
        out.append(LegacyRow(**v))
    total = (await session.execute(select(func.count()).select_from(L).where(*cond))).scalar_one()
    return out, int(total)


# --- quotas -------------------------------------------------------------------------------------------


@dataclass
class QuotaRow:
    """Places of a project in a school year for an org's subtree."""

    project_code: str
    school_year: str
    org_code: str
    org_path: str
    org_name: str
    places: int
    set_by: str
    set_at: datetime | None


async def save_quotas(session: AsyncSession, rows: Sequence[QuotaRow]) -> None:
    """Set or remove (places 0) quotas."""
    Q = t.quota
    keep = [r for r in rows if r.places > 0]
    for r in rows:
        if r.places <= 0:
            await session.execute(
                delete(Q).where(
                    Q.c.project_code == r.project_code,
                    Q.c.school_year == r.school_year,
                    Q.c.org_code == r.org_code,
                )
            )
    if keep:
        stmt = upsert(session, Q)
        stmt = stmt.on_conflict_do_update(
            index_elements=["project_code", "school_year", "org_code"],
            set_={
                c: stmt.excluded[c] for c in ("org_path", "org_name", "places", "set_by", "set_at")
            },
        )
        await session.execute(stmt, [r.__dict__ for r in keep])


async def list_quotas(
    session: AsyncSession, *, scope_path: str, school_year: str, project_code: str
) -> list[QuotaRow]:
    """Quotas of orgs under scope."""
    Q = t.quota
    cond: list[Any] = []
    if scope_path != "/":
        cond.append(Q.c.org_path.startswith(scope_path, autoescape=True))
    if school_year:
        cond.append(Q.c.school_year == school_year)
    if project_code:
        cond.append(Q.c.project_code == project_code)
    rows = await session.execute(
        select(Q).where(*cond).order_by(Q.c.school_year, Q.c.project_code, Q.c.org_path)
    )
    out = []
    for r in rows:
        v = dict(r._mapping)
        v["set_at"] = aware(v["set_at"])
        out.append(QuotaRow(**v))
    return out

"""Projects, periods and time windows."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from aid_service import tables as t
from aid_service.domain.enums import (
    Category,
    ExclusionScope,
    HardshipLevel,
    Level,
    OwnerType,
    PeriodStatus,
    Phase,
    ProjectStatus,
    Stage,
    Term,
)
from aid_service.domain.periods import AidPeriod, Period
from aid_service.domain.projects import AmountTier, Exclusion, Project
from aid_service.domain.windows import Window
from aid_service.repository.common import aware, prefix_range, utc

_p = t.aid_project
_pd = t.aid_period
_w = t.aid_window


def _project(row: Any) -> Project:
    return Project(
        project_code=row.project_code,
        name=row.name,
        owner_type=OwnerType(row.owner_type),
        owner_org_code=row.owner_org_code,
        owner_org_path=row.owner_org_path,
        owner_level=Level(row.owner_level),
        stage=Stage(row.stage),
        category=Category(row.category),
        tiers=tuple(AmountTier(**x) for x in json.loads(row.tiers)),
        allow_custom_amount=bool(row.allow_custom_amount),
        min_amount_fen=row.min_amount_fen,
        max_amount_fen=row.max_amount_fen,
        requires_recognition=bool(row.requires_recognition),
        min_hardship_level=HardshipLevel(row.min_hardship_level)
        if row.min_hardship_level
        else None,
        exclusions=tuple(
            Exclusion(x["project_code"], ExclusionScope(x["scope"]))
            for x in json.loads(row.exclusions)
        ),
        audit_levels=tuple(Level(int(x)) for x in row.audit_levels.split(",") if x),
        annual=bool(row.annual),
        start_school_year=row.start_school_year,
        end_school_year=row.end_school_year,
        status=ProjectStatus(row.status),
        policy_basis=row.policy_basis,
        description=row.description,
        quota_per_school=row.quota_per_school,
        created_by=row.created_by,
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
        version=row.version,
    )


def _project_values(p: Project) -> dict[str, Any]:
    return {
        "project_code": p.project_code,
        "name": p.name,
        "owner_type": int(p.owner_type),
        "owner_org_code": p.owner_org_code,
        "owner_org_path": p.owner_org_path,
        "owner_level": int(p.owner_level),
        "stage": int(p.stage),
        "category": int(p.category),
        "tiers": json.dumps(
            [
                {"tier_code": x.tier_code, "name": x.name, "amount_fen": x.amount_fen}
                for x in p.tiers
            ],
            ensure_ascii=False,
        ),
        "allow_custom_amount": p.allow_custom_amount,
        "min_amount_fen": p.min_amount_fen,
        "max_amount_fen": p.max_amount_fen,
        "requires_recognition": p.requires_recognition,
        "min_hardship_level": int(p.min_hardship_level) if p.min_hardship_level else None,
        "exclusions": json.dumps(
            [{"project_code": x.project_code, "scope": int(x.scope)} for x in p.exclusions]
        ),
        "audit_levels": ",".join(str(int(x)) for x in p.audit_levels),
        "annual": p.annual,
        "start_school_year": p.start_school_year,
        "end_school_year": p.end_school_year,
        "status": int(p.status),
        "policy_basis": p.policy_basis,
        "description": p.description,
        "quota_per_school": p.quota_per_school,
        "created_by": p.created_by,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
        "version": p.version,
    }


class ProjectRepository:
    """aid_project."""

    async def get(self, session: AsyncSession, code: str) -> Project | None:
        """One project by code."""
        row = (await session.execute(select(_p).where(_p.c.project_code == code))).first()
        return _project(row) if row else None

    async def get_many(self, session: AsyncSession, codes: Sequence[str]) -> dict[str, Project]:
        """Projects by code."""
        if not codes:
            return {}
        rows = await session.execute(select(_p).where(_p.c.project_code.in_(list(set(codes)))))
        return {r.project_code: _project(r) for r in rows}

    async def insert(self, session: AsyncSession, p: Project) -> None:
        """Store a new project."""
        await session.execute(_p.insert().values(**_project_values(p)))

    async def update(self, session: AsyncSession, p: Project, expected_version: int) -> bool:
        """Replace a project if its version is still expected_version; False otherwise."""
        values = _project_values(p)
        values.pop("project_code")
        result = await session.execute(
            update(_p)
            .where(and_(_p.c.project_code == p.project_code, _p.c.version == expected_version))
            .values(**values)
        )
        return result.rowcount == 1

    async def search(
        self,
        session: AsyncSession,
        *,
        owner_subtree: str | None = None,
        applicable_to: str | None = None,
        owner_types: Sequence[OwnerType] = (),
        stages: Sequence[Stage] = (),
        categories: Sequence[Category] = (),
        school_year: str = "",
        include_disabled: bool = False,
        query: str = "",
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[Project], int]:
        """Projects owned in a subtree, or applicable to an org (owned by it or an ancestor)."""
        conds: list[Any] = []
        if owner_subtree is not None:
            conds.append(prefix_range(_p.c.owner_org_path, owner_subtree))
        if applicable_to is not None:
            ancestors = [
                applicable_to[: i + 1] for i, ch in enumerate(applicable_to) if ch == "/" and i
            ]
            conds.append(_p.c.owner_org_path.in_(ancestors))
        if owner_types:
            conds.append(_p.c.owner_type.in_([int(x) for x in owner_types]))
        if stages:
            conds.append(_p.c.stage.in_([int(x) for x in stages]))
        if categories:
            conds.append(_p.c.category.in_([int(x) for x in categories]))
        if school_year:
            conds.append(or_(_p.c.start_school_year == "", _p.c.start_school_year <= school_year))
            conds.append(or_(_p.c.end_school_year == "", _p.c.end_school_year >= school_year))
        if not include_disabled:
            conds.append(_p.c.status == int(ProjectStatus.ACTIVE))
        if query:
            like = f"%{query}%"
            conds.append(or_(_p.c.name.like(like), _p.c.project_code.like(like)))
        where = and_(*conds) if conds else true()
        total = (await session.execute(select(func.count()).select_from(_p).where(where))).scalar()
        rows = await session.execute(
            select(_p)
            .where(where)
            .order_by(_p.c.owner_level, _p.c.stage, _p.c.project_code)
            .offset(offset)
            .limit(limit)
        )
        return [_project(r) for r in rows], int(total or 0)

    async def excluding(self, session: AsyncSession, code: str) -> list[Project]:
        """Projects that list code among their exclusions (checked both ways)."""
        rows = await session.execute(select(_p).where(_p.c.exclusions.like(f'%"{code}"%')))
        return [p for p in map(_project, rows) if any(e.project_code == code for e in p.exclusions)]


def _period(row: Any) -> Period:
    return Period(
        period=AidPeriod(row.school_year, Term(row.term)),
        status=PeriodStatus(row.status),
        starts_on=row.starts_on,
        ends_on=row.ends_on,
        deadline_on=row.deadline_on,
        opened_at=aware(row.opened_at),
        closed_at=aware(row.closed_at),
        opened_by=row.opened_by,
    )


class PeriodRepository:
    """aid_period."""

    async def get(self, session: AsyncSession, period: AidPeriod) -> Period | None:
        """One period."""
        row = (
            await session.execute(
                select(_pd).where(
                    and_(_pd.c.school_year == period.school_year, _pd.c.term == int(period.term))
                )
            )
        ).first()
        return _period(row) if row else None

    async def save(self, session: AsyncSession, p: Period, *, new: bool) -> None:
        """Insert or update a period."""
        values = {
            "status": int(p.status),
            "starts_on": p.starts_on,
            "ends_on": p.ends_on,
            "deadline_on": p.deadline_on,
            "opened_at": p.opened_at,
            "closed_at": p.closed_at,
            "opened_by": p.opened_by,
        }
        if new:
            await session.execute(
                _pd.insert().values(
                    school_year=p.period.school_year, term=int(p.period.term), **values
                )
            )
        else:
            await session.execute(
                update(_pd)
                .where(
                    and_(
                        _pd.c.school_year == p.period.school_year, _pd.c.term == int(p.period.term)
                    )
                )
                .values(**values)
            )

    async def list(
        self, session: AsyncSession, statuses: Sequence[PeriodStatus], offset: int, limit: int
    ) -> tuple[list[Period], int]:
        """Periods newest first."""
        where = _pd.c.status.in_([int(s) for s in statuses]) if statuses else true()
        total = (await session.execute(select(func.count()).select_from(_pd).where(where))).scalar()
        rows = await session.execute(
            select(_pd)
            .where(where)
            .order_by(_pd.c.school_year.desc(), _pd.c.term.desc())
            .offset(offset)
            .limit(limit)
        )
        return [_period(r) for r in rows], int(total or 0)


def _window(row: Any) -> Window:
    return Window(
        window_id=row.window_id,
        project_code=row.project_code,
        period=AidPeriod(row.school_year, Term(row.term)),
        phase=Phase(row.phase),
        org_code=row.org_code,
        org_path=row.org_path,
        starts_at=aware(row.starts_at),  # type: ignore[arg-type]
        ends_at=aware(row.ends_at),  # type: ignore[arg-type]
        extension=bool(row.extension),
        reason=row.reason,
        set_by=row.set_by,
        set_at=aware(row.set_at),
    )


class WindowRepository:
    """aid_window and its change log."""

    async def for_project(
        self, session: AsyncSession, project_code: str, period: AidPeriod
    ) -> list[Window]:
        """Every window of a project in a period."""
        rows = await session.execute(
            select(_w).where(
                and_(
                    _w.c.project_code == project_code,
                    _w.c.school_year == period.school_year,
                    _w.c.term == int(period.term),
                )
            )
        )
        return [_window(r) for r in rows]

    async def for_projects(
        self, session: AsyncSession, keys: Sequence[tuple[str, AidPeriod]]
    ) -> dict[tuple[str, AidPeriod], list[Window]]:
        """Windows of several project × period pairs."""
        out: dict[tuple[str, AidPeriod], list[Window]] = {k: [] for k in keys}
        codes = list({k[0] for k in keys})
        if not codes:
            return out
        rows = await session.execute(select(_w).where(_w.c.project_code.in_(codes)))
        for r in rows:
            w = _window(r)
            if (w.project_code, w.period) in out:
                out[(w.project_code, w.period)].append(w)
        return out

    async def get(self, session: AsyncSession, window_id: str) -> Window | None:
        """One window."""
        row = (await session.execute(select(_w).where(_w.c.window_id == window_id))).first()
        return _window(row) if row else None

    async def find_slot(self, session: AsyncSession, w: Window) -> Window | None:
        """The window occupying w's slot (project, period, phase, org, extension), if any."""
        row = (
            await session.execute(
                select(_w).where(
                    and_(
                        _w.c.project_code == w.project_code,
                        _w.c.school_year == w.period.school_year,
                        _w.c.term == int(w.period.term),
                        _w.c.phase == int(w.phase),
                        _w.c.org_code == w.org_code,
                        _w.c.extension == w.extension,
                    )
                )
            )
        ).first()
        return _window(row) if row else None

    async def replace(self, session: AsyncSession, w: Window) -> None:
        """Store w, replacing the window in its slot."""
        await session.execute(delete(_w).where(_w.c.window_id == w.window_id))
        await session.execute(
            _w.insert().values(
                window_id=w.window_id,
                project_code=w.project_code,
                school_year=w.period.school_year,
                term=int(w.period.term),
                phase=int(w.phase),
                org_code=w.org_code,
                org_path=w.org_path,
                starts_at=utc(w.starts_at),
                ends_at=utc(w.ends_at),
                extension=w.extension,
                reason=w.reason,
                set_by=w.set_by,
                set_at=w.set_at,
            )
        )

    async def log(
        self, session: AsyncSession, w: Window, *, action: str, actor: str, actor_org: str
    ) -> None:
        """Keep one change of a window (set, close, extend)."""
        await session.execute(
            t.aid_window_change.insert().values(
                window_id=w.window_id,
                action=action,
                project_code=w.project_code,
                school_year=w.period.school_year,
                term=int(w.period.term),
                phase=int(w.phase),
                org_code=w.org_code,
                starts_at=utc(w.starts_at),
                ends_at=utc(w.ends_at),
                reason=w.reason,
                actor_account_id=actor,
                actor_org_code=actor_org,
                at=w.set_at,
            )
        )

    async def search(
        self,
        session: AsyncSession,
        *,
        project_code: str,
        period: AidPeriod | None,
        phase: Phase | None,
        org_path: str,
        include_extensions: bool,
        offset: int,
        limit: int,
    ) -> tuple[list[Window], int]:
        """Windows of orgs inside org_path's subtree and of its ancestors."""
        ancestors = [org_path[: i + 1] for i, ch in enumerate(org_path) if ch == "/" and i]
        conds: list[Any] = [
            or_(prefix_range(_w.c.org_path, org_path), _w.c.org_path.in_(ancestors))
        ]
        if project_code:
            conds.append(_w.c.project_code == project_code)
        if period is not None:
            conds.append(_w.c.school_year == period.school_year)
            conds.append(_w.c.term == int(period.term))
        if phase is not None:
            conds.append(_w.c.phase == int(phase))
        if not include_extensions:
            conds.append(_w.c.extension.is_(False))
        where = and_(*conds)
        total = (await session.execute(select(func.count()).select_from(_w).where(where))).scalar()
        rows = await session.execute(
            select(_w)
            .where(where)
            .order_by(_w.c.project_code, _w.c.school_year, _w.c.term, _w.c.phase, _w.c.org_path)
            .offset(offset)
            .limit(limit)
        )
        return [_window(r) for r in rows], int(total or 0)

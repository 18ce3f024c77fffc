"""Database checks run inside the writing transaction: one record per student × project × period,
mutually exclusive projects, and quota slots."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from aid_service.domain.enums import ExclusionScope
from aid_service.domain.orgs import OrgNode
from aid_service.domain.periods import AidPeriod
from aid_service.domain.projects import Project
from aid_service.domain.records import dedup_key
from aid_service.service.context import Deps
from aid_service.service.entry.rows import Checked, EntryRow, RowIssue


async def check_in_database(
    deps: Deps,
    session: AsyncSession,
    project: Project,
    period: AidPeriod,
    school: OrgNode,
    checked: Checked,
    *,
    ignore_record_id: str = "",
    slots_checked: bool = False,
) -> Checked:
    """Slot taken, mutually exclusive projects, quota: inside the writing transaction.
    slots_checked: the slots were looked up already (a pipelined import, see slot_issues);
    the unique slot index still refuses one taken in between."""
    rows = checked.rows
    issues = checked.issues
    if not rows:
        return checked
    keys = [dedup_key(project, period, r.answer.student_id) for r in rows]  # type: ignore[union-attr]
    taken = {} if slots_checked else await deps.records.taken_slots(session, keys)
    taken.pop("", None)
    conflicts: dict[str, str] = {}
    others = await exclusive_projects(deps, session, project)
    if others:
        found = await deps.records.live_of_students(
            session,
            student_ids=[r.answer.student_id for r in rows],  # type: ignore[union-attr]
            project_codes=list(others),
            school_year=period.school_year,
        )
        for student_id, code, term, record_id in found:
            if record_id == ignore_record_id:
                continue
            scope = others[code]
            if scope is ExclusionScope.SCHOOL_YEAR or term is period.term:
                conflicts.setdefault(student_id, code)
    ok: list[EntryRow] = []
    for r, key in zip(rows, keys, strict=True):
        a = r.answer
        assert a is not None
        holder = taken.get(key)
        if holder and holder != ignore_record_id:
            when = period.school_year + "学年" if project.annual else period.label
            issues.append(RowIssue(r.row, "id_number", a.id_number_masked, "DUPLICATE_RECORD",
                                   f"该学生{when}已有本项目资助记录（记录号{holder}）"))  # fmt: skip
            continue
        if a.student_id in conflicts:
            other = conflicts[a.student_id]
            issues.append(RowIssue(r.row, "id_number", a.id_number_masked, "EXCLUSIVE_PROJECT",
                                   f"该学生本{'学年' if others[other] is ExclusionScope.SCHOOL_YEAR else '学期'}"
                                   f"已有互斥项目“{other}”的资助记录，不能同时享受"))  # fmt: skip
            continue
        ok.append(r)
    if project.quota_per_school and ok:
        used = await deps.records.live_count(
            session,
            school_org_code=school.org_code,
            project_code=project.project_code,
            period=period,
        )
        room = max(project.quota_per_school - used, 0)
        for r in ok[room:]:
            issues.append(RowIssue(r.row, "id_number", r.answer.id_number_masked, "QUOTA_EXCEEDED",  # type: ignore[union-attr]
                                   f"超出本校名额{project.quota_per_school}人（已用{used}人）"))  # fmt: skip
        ok = ok[:room]
    issues.sort(key=lambda i: i.row)
    return Checked(ok, issues)


async def exclusive_projects(
    deps: Deps, session: AsyncSession, project: Project
) -> dict[str, ExclusionScope]:
    """Projects excluded by this one or excluding it, with the widest scope."""
    out = {e.project_code: e.scope for e in project.exclusions}
    for other in await deps.projects.excluding(session, project.project_code):
        for e in other.exclusions:
            if e.project_code == project.project_code:
                prior = out.get(other.project_code)
                out[other.project_code] = (
                    ExclusionScope.SCHOOL_YEAR
                    if ExclusionScope.SCHOOL_YEAR in (prior, e.scope)
                    else e.scope
                )
    return out


def slot_keys(project: Project, period: AidPeriod, rows: Sequence[EntryRow]) -> list[str]:
    """The slot (dedup key) each roster-confirmed row would take."""
    slot = dedup_key(project, period, "")
    return [slot + r.answer.student_id for r in rows]  # type: ignore[union-attr]


def slot_issues(
    project: Project,
    period: AidPeriod,
    rows: Sequence[EntryRow],
    keys: Sequence[str],
    taken: dict[str, str],
    issues: list[RowIssue],
) -> list[EntryRow]:
    """The rows whose slot is free; a DUPLICATE_RECORD issue for the others."""
    if not taken:
        return list(rows)
    when = period.school_year + "学年" if project.annual else period.label
    ok: list[EntryRow] = []
    for r, key in zip(rows, keys, strict=True):
        holder = taken.get(key)
        if holder:
            issues.append(RowIssue(r.row, "id_number", r.answer.id_number_masked,  # type: ignore[union-attr]
                                   "DUPLICATE_RECORD",
                                   f"该学生{when}已有本项目资助记录（记录号{holder}）"))  # fmt: skip
        else:
            ok.append(r)
    return ok

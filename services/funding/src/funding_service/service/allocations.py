"""Use cases of the allocation ledger: allocate (下达 and 本级安排), reverse (冲销), read, list
and export within the caller's subtree."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
)
from zizhu_common.rpc import CallerContext

from funding_service import xlsx
from funding_service.domain.model import (
    Allocation,
    AllocationInput,
    AllocationKind,
    AllocationStatus,
    FundSource,
    OrgNode,
)
from funding_service.domain.rules import (
    MAX_REASON,
    check_pass_down,
    check_reversal_keeps_cover,
    check_text,
    line_kind,
    unknown_line_org,
    validate_allocation,
)
from funding_service.events import (
    ALLOCATION_MADE,
    ALLOCATION_REVERSED,
    allocation_made,
    allocation_reversed,
)
from funding_service.repository import AllocationFilter
from funding_service.service.context import (
    Deps,
    is_system,
    next_page_token,
    org_in_scope,
    page_window,
    require_role,
)
from funding_service.service.ledger import Deltas, write

MAX_EXPORT_ROWS = 100_000
WRITE_ROLES = ("operator",)


def new_id(prefix: str) -> str:
    """A fresh identifier: prefix + 32 hex digits."""
    return prefix + uuid.uuid4().hex


@dataclass(frozen=True)
class AllocationPage:
    """One page of allocations with the total count and amount over every page."""

    allocations: list[Allocation]
    next_page_token: str
    total: int
    total_amount_fen: int


class AllocationService:
    """The allocation ledger."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def allocate(self, caller: CallerContext, req: AllocationInput) -> list[Allocation]:
        """Record an allocation document, all or nothing."""
        require_role(caller, *WRITE_ROLES)
        req = validate_allocation(req)
        deps = self.deps
        now = deps.now()
        async with deps.db.write() as session:
            from_code = req.from_org_code or caller.org_code
            from_org = await org_in_scope(deps, session, caller, from_code, field="from_org_code")
            if from_org.code != caller.org_code and not is_system(caller):
                raise PermissionDenied(
                    "各级只能录入本级的资金下达，不能代下级录入",
                    code="ALLOCATION_OWN_LEVEL_ONLY",
                    field="from_org_code",
                )
            if not from_org.active:
                raise FailedPrecondition(
                    f"{from_org.name}已撤销，不能再下达资金",
                    code="ORG_RETIRED",
                    field="from_org_code",
                )
            project = await deps.projects.get(session, req.project_code)
            if project is None:
                raise NotFound(
                    f"资助项目不存在：{req.project_code}",
                    code="PROJECT_NOT_FOUND",
                    field="project_code",
                )
            if not from_org.path.startswith(project.owner_org_path):
                raise FailedPrecondition(
                    f"项目{project.name}由其他地区设立，本级不能为其安排资金",
                    code="PROJECT_NOT_IN_CHAIN",
                    field="project_code",
                )
            targets = await deps.orgs.get_many(session, [line.to_org_code for line in req.lines])
            document_id = new_id("FD")
            lines: list[Allocation] = []
            for i, line in enumerate(req.lines):
                to_org = (
                    from_org if line.to_org_code == from_org.code else targets.get(line.to_org_code)
                )
                if to_org is None or not (is_system(caller) or caller.in_scope(to_org.path)):
                    raise unknown_line_org(i)
                source = FundSource(line.source)
                kind = line_kind(from_org, to_org, source, i)
                lines.append(
                    Allocation(
                        allocation_id=new_id("FA"),
                        document_id=document_id,
                        kind=kind,
                        project_code=project.code,
                        fiscal_year=req.fiscal_year,
                        from_org=from_org,
                        to_org=to_org,
                        source=source,
                        amount_fen=line.amount_fen,
                        document_number=req.document_number,
                        document_date=req.document_date,
                        allocated_on=req.allocated_on,
                        note=line.note or req.note,
                        status=AllocationStatus.ACTIVE,
                        entered_by=caller.account_id,
                        entered_at=now,
                        project_name=project.name,
                    )
                )
            taken = await deps.allocations.duplicates(
                session,
                document_number=req.document_number,
                project_code=project.code,
                fiscal_year=req.fiscal_year,
                from_org_code=from_org.code,
            )
            for i, a in enumerate(lines):
                if (a.to_org.code, int(a.source)) in taken:
                    raise AlreadyExists(
                        f"第{i + 1}条：文号{a.document_number}已录入{a.to_org.name}的{a.source.label}资金，"
                        "如需更正请先冲销原记录",
                        code="ALLOCATION_DUPLICATE",
                        field=f"lines[{i}].to_org_code",
                    )
            deltas = Deltas()
            contributions: dict[FundSource, int] = defaultdict(int)
            transfers: dict[FundSource, int] = defaultdict(int)
            for a in lines:
                deltas.allocation(a, +1)
                bucket = contributions if a.kind is AllocationKind.CONTRIBUTION else transfers
                bucket[a.source] += a.amount_fen
            locked = await deps.ledger.lock_balances(session, deltas.touched_balances())
            balances = {
                FundSource(k[3]): b
                for k, b in locked.items()
                if k[0] == from_org.code and k[1] == project.code and k[2] == req.fiscal_year
            }
            check_pass_down(balances, contributions, transfers)
            await deps.allocations.insert_many(session, lines)
            await write(deps, session, deltas, caller)
            await deps.outbox.add_many(
                session, [(ALLOCATION_MADE, allocation_made(a, caller)) for a in lines]
            )
        return lines

    async def reverse(self, caller: CallerContext, allocation_id: str, reason: str) -> Allocation:
        """Reverse (冲销) one allocation of the caller's own org, with a reason."""
        require_role(caller, *WRITE_ROLES)
        reason = check_text(
            reason, field="reason", label="冲销原因", limit=MAX_REASON, required=True
        )
        deps = self.deps
        now = deps.now()
        async with deps.db.write() as session:
            row = await deps.allocations.get_row(session, allocation_id.strip(), lock=True)
            if row is None or not (
                caller.in_scope(row.from_org_path) or caller.in_scope(row.to_org_path)
            ):
                raise NotFound(
                    "资金下达记录不存在", code="ALLOCATION_NOT_FOUND", field="allocation_id"
                )
            if row.from_org_code != caller.org_code and not is_system(caller):
                raise PermissionDenied(
                    "只能冲销本级录入的资金下达",
                    code="ALLOCATION_OWN_LEVEL_ONLY",
                    field="allocation_id",
                )
            if row.status == AllocationStatus.REVERSED.value:
                raise FailedPrecondition(
                    "该笔资金下达已冲销", code="ALLOCATION_ALREADY_REVERSED", field="allocation_id"
                )
            orgs = await deps.orgs.get_many(session, [row.from_org_code, row.to_org_code])
            names = await deps.projects.names(session, [row.project_code])
            a = deps.allocations.to_domain([row], orgs, names)[0]
            deltas = Deltas()
            deltas.allocation(a, -1)
            locked = await deps.ledger.lock_balances(session, deltas.touched_balances())
            # The recipient of a transfer (or the contributor itself) must still cover what it
            # has passed down once this money is gone.
            holder: OrgNode = a.to_org
            key = (holder.code, a.project_code, a.fiscal_year, int(a.source))
            check_reversal_keeps_cover(holder, a.source, locked[key], a.amount_fen)
            await deps.allocations.mark_reversed(
                session, a.allocation_id, reason=reason, by=caller.account_id, at=now
            )
            a.status = AllocationStatus.REVERSED
            a.reversal_reason, a.reversed_by, a.reversed_at = reason, caller.account_id, now
            await write(deps, session, deltas, caller)
            await deps.outbox.add(session, ALLOCATION_REVERSED, allocation_reversed(a, caller, now))
        return a

    async def get(self, caller: CallerContext, allocation_id: str) -> Allocation:
        """One allocation made by or to an org inside the caller's subtree."""
        deps = self.deps
        async with deps.db.read() as session:
            row = await deps.allocations.get_row(session, (allocation_id or "").strip())
            if row is None or not (
                caller.in_scope(row.from_org_path) or caller.in_scope(row.to_org_path)
            ):
                raise NotFound(
                    "资金下达记录不存在", code="ALLOCATION_NOT_FOUND", field="allocation_id"
                )
            orgs = await deps.orgs.get_many(session, [row.from_org_code, row.to_org_code])
            names = await deps.projects.names(session, [row.project_code])
        return deps.allocations.to_domain([row], orgs, names)[0]

    async def _filter(
        self, session: AsyncSession, caller: CallerContext, org_code: str, **kw: Any
    ) -> AllocationFilter:
        root = await org_in_scope(self.deps, session, caller, org_code)
        return AllocationFilter(scope_path=root.path, **kw)

    async def list_page(
        self,
        caller: CallerContext,
        *,
        org_code: str,
        filters: dict[str, Any],
        page_size: int,
        page_token: str,
    ) -> AllocationPage:
        """Allocations made by or to orgs of a subtree, newest first."""
        deps = self.deps
        async with deps.db.read() as session:
            f = await self._filter(session, caller, org_code, **filters)
            offset, limit = page_window(page_size, page_token, f)
            total, amount = await deps.allocations.count_and_total(session, f)
            rows = await deps.allocations.page(session, f, offset=offset, limit=limit)
            allocations = await self._domain(session, rows)
        return AllocationPage(allocations, next_page_token(offset, limit, total, f), total, amount)

    async def export(
        self, caller: CallerContext, *, org_code: str, filters: dict[str, Any]
    ) -> tuple[bytes, int]:
        """The matching allocations as an .xlsx workbook, and how many rows it holds."""
        deps = self.deps
        async with deps.db.read() as session:
            f = await self._filter(session, caller, org_code, **filters)
            total, _ = await deps.allocations.count_and_total(session, f)
            if total > MAX_EXPORT_ROWS:
                raise FailedPrecondition(
                    f"符合条件的记录有{total}条，超过单次导出上限{MAX_EXPORT_ROWS}条，请缩小查询范围",
                    code="EXPORT_TOO_LARGE",
                    details={"total": total, "limit": MAX_EXPORT_ROWS},
                )
            rows = await deps.allocations.page(session, f, offset=0, limit=MAX_EXPORT_ROWS)
            allocations = await self._domain(session, rows)
        return xlsx.allocations_workbook(allocations), len(allocations)

    async def _domain(self, session: AsyncSession, rows: Sequence[Any]) -> list[Allocation]:
        deps = self.deps
        codes = {r.from_org_code for r in rows} | {r.to_org_code for r in rows}
        orgs = await deps.orgs.get_many(session, codes)
        names = await deps.projects.names(session, {r.project_code for r in rows})
        return deps.allocations.to_domain(rows, orgs, names)

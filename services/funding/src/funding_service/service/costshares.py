"""Cost sharing (分担比例): per project, fiscal year and region, each source's part of the
execution. Data, never code: the nation sets the central part per province (by tier), a
province refines its own subtree without touching the parts fixed above it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from zizhu_common.errors import InvalidArgument, NotFound, PermissionDenied
from zizhu_common.rpc import CallerContext

from funding_service.domain.model import CostShare, Level, ShareLine
from funding_service.domain.rules import (
    MAX_DOCUMENT_NUMBER,
    check_fiscal_year,
    check_shares_fixed_above,
    check_text,
    validate_shares,
)
from funding_service.events import COST_SHARE_SET, cost_share_set
from funding_service.service.context import (
    Deps,
    is_system,
    next_page_token,
    org_in_scope,
    page_window,
    require_role,
)

WRITE_ROLES = ("operator", "admin")


@dataclass(frozen=True)
class CostSharePage:
    """A page of cost shares."""

    shares: list[CostShare]
    next_page_token: str
    total: int


class CostShareService:
    """Setting and listing cost shares."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def set(
        self,
        caller: CallerContext,
        *,
        project_code: str,
        fiscal_year: str,
        region_org_code: str,
        shares: Sequence[ShareLine],
        document_number: str,
    ) -> CostShare:
        """Set or replace the cost share of a region below the caller's org (the nation may also
        set the root's): the caller's own share comes from above and its parts stay fixed."""
        require_role(caller, *WRITE_ROLES)
        fiscal_year = check_fiscal_year(fiscal_year)
        lines = validate_shares(shares)
        document_number = check_text(
            document_number,
            field="document_number",
            label="文号",
            limit=MAX_DOCUMENT_NUMBER,
            required=False,
        )
        deps = self.deps
        async with deps.db.write() as session:
            project = await deps.projects.get(session, (project_code or "").strip())
            if project is None:
                raise NotFound(
                    f"资助项目不存在：{project_code}",
                    code="PROJECT_NOT_FOUND",
                    field="project_code",
                )
            region = await org_in_scope(
                deps, session, caller, region_org_code, field="region_org_code"
            )
            if region.level is Level.SCHOOL:
                raise InvalidArgument(
                    "分担比例按地区设置，不能设置到学校",
                    code="COST_SHARE_REGION_INVALID",
                    field="region_org_code",
                )
            if not is_system(caller) and Level(caller.level) is not Level.NATIONAL:
                if region.code == caller.org_code:
                    raise PermissionDenied(
                        "本级的分担比例由上级设定，只能为下辖地区设置分担比例",
                        code="COST_SHARE_OWN_REGION",
                        field="region_org_code",
                    )
                caller_org = await deps.orgs.get(session, caller.org_code)
                if caller_org is not None:
                    fixed = await deps.cost_shares.governing(
                        session,
                        project_code=project.code,
                        fiscal_year=fiscal_year,
                        path=caller_org.path,
                    )
                    if fixed is not None:
                        check_shares_fixed_above(lines, fixed, Level(caller.level))
            share = CostShare(
                project_code=project.code,
                fiscal_year=fiscal_year,
                region=region,
                shares=lines,
                document_number=document_number,
                set_by=caller.account_id,
                set_at=deps.now(),
            )
            await deps.cost_shares.upsert(session, share)
            await deps.outbox.add(session, COST_SHARE_SET, cost_share_set(share, caller))
        return share

    async def list_page(
        self,
        caller: CallerContext,
        *,
        project_code: str,
        fiscal_year: str,
        org_code: str,
        page_size: int,
        page_token: str,
    ) -> CostSharePage:
        """Shares set for the org's ancestors, the org and regions below it."""
        if fiscal_year:
            fiscal_year = check_fiscal_year(fiscal_year)
        deps = self.deps
        async with deps.db.read() as session:
            root = await org_in_scope(deps, session, caller, org_code)
            shares = await deps.cost_shares.for_view(
                session,
                path=root.path,
                fiscal_year=fiscal_year or None,
                project_code=(project_code or "").strip() or None,
                orgs=deps.orgs,
            )
        filters = (root.code, project_code, fiscal_year)
        offset, limit = page_window(page_size, page_token, filters)
        return CostSharePage(
            shares[offset : offset + limit],
            next_page_token(offset, limit, len(shares), filters),
            len(shares),
        )

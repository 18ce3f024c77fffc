"""Aid routes for statistics by org, project, stage or category."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from zizhu_contracts.aid.v1 import aid_pb2 as pb

from gateway.deps import Aid, CurrentUser
from gateway.policy import guard
from gateway.routes.aid.base import (
    BULK_DEADLINE_S,
    ORG_IN_QUERY,
    RootOrg,
    router,
)
from gateway.schemas.aid import (
    CategoryName,
    DimensionName,
    ProjectCode,
    SchoolYear,
    StatsRead,
    TermName,
    category_value,
    period_msg,
    stats_read,
)
from gateway.schemas.aid.projects import (
    stage_number,
)
from gateway.schemas.common import (
    StageName,
)


@router.get(
    "/aid/stats",
    response_model=StatsRead,
    summary="资助统计（按地区、项目、学段、类别；记录数与金额按状态）",
    **guard("aid.stats", ORG_IN_QUERY),
)
async def aid_stats(
    caller: CurrentUser,
    aid: Aid,
    school_year: Annotated[SchoolYear | None, Query(description="默认：当前学期")] = None,
    term: Annotated[TermName | None, Query()] = None,
    org_code: RootOrg = None,
    project_code: Annotated[ProjectCode | None, Query()] = None,
    categories: Annotated[list[CategoryName] | None, Query()] = None,
    stage: Annotated[StageName | None, Query()] = None,
    group_by: Annotated[list[DimensionName] | None, Query()] = None,
    expand_direct_schools: bool = False,
) -> StatsRead:
    """Total, directly-run schools and each child region (with group_by=org)."""
    dims = {"org": pb.STATS_DIMENSION_ORG, "project": pb.STATS_DIMENSION_PROJECT,
            "stage": pb.STATS_DIMENSION_STAGE, "category": pb.STATS_DIMENSION_CATEGORY}  # fmt: skip
    resp = await aid.Stats(
        pb.StatsRequest(
            period=period_msg(school_year, term) if school_year and term else None,
            org_code=org_code or "",
            project_code=project_code or "",
            categories=[category_value(c) for c in categories or ()],  # type: ignore[misc]
            stage=stage_number(stage),  # type: ignore[arg-type]
            group_by=[dims[d] for d in group_by or ()],
            expand_direct_schools=expand_direct_schools,
        ),
        caller=caller,
        deadline_s=BULK_DEADLINE_S,
    )
    stats = stats_read(resp)
    stats.rows = [
        r for r in stats.rows if not r.org.org_path or caller.keeps(r.org.org_path, "row")
    ]
    return stats

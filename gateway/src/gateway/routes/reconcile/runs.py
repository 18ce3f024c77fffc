"""Reconcile routes for comparison runs (比对任务): start, list, read."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from zizhu_common.errors import NotFound
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.reconcile.v1 import reconcile_pb2 as pb

from gateway.deps import CurrentUser, Reconcile
from gateway.policy import governs, guard
from gateway.routes.reconcile.base import (
    ORG_IN_BODY,
    ORG_IN_QUERY,
    RUN_IN_PATH,
    RootOrg,
    RunId,
    SchoolYearQuery,
    TermQuery,
    router,
)
from gateway.schemas.common import (
    PageSize,
    PageToken,
    page_request,
)
from gateway.schemas.reconcile import (
    RunStatusName,
    TriggerName,
    period_pb,
    run_status_value,
    term_value,
    trigger_value,
)
from gateway.schemas.reconcile.runs import (
    RunCreate,
    RunPage,
    RunRead,
    run_read,
)


@router.post(
    "/runs",
    response_model=RunRead,
    status_code=202,
    summary="手动发起数据比对",
    **guard("comparison.run", ORG_IN_BODY),
)
async def start_run(body: RunCreate, caller: CurrentUser, reconcile: Reconcile) -> RunRead:
    """Compare now (the 02:00 job runs the same code): returns at once; poll the run. If a run
    covering the area is in progress, that run is returned (`already_running`)."""
    resp = await reconcile.RunComparison(
        pb.RunComparisonRequest(
            periods=[
                common_pb2.AidPeriod(school_year=p.school_year, term=term_value(p.term))  # type: ignore[arg-type]
                for p in body.periods
            ],
            org_code=body.org_code or "",
            include_verification=body.include_verification,
        ),
        caller=caller,
    )
    return run_read(resp.run, already_running=resp.already_running)


@router.get(
    "/runs",
    response_model=RunPage,
    summary="数据比对记录",
    **guard("comparison.read", ORG_IN_QUERY),
)
async def list_runs(
    caller: CurrentUser,
    reconcile: Reconcile,
    org_code: RootOrg = None,
    school_year: SchoolYearQuery = None,
    term: TermQuery = None,
    status: Annotated[list[RunStatusName] | None, Query()] = None,
    trigger: TriggerName | None = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> RunPage:
    """Runs covering the area (its own, and those of the levels above), newest first."""
    period = period_pb(school_year, term)
    resp = await reconcile.ListRuns(
        pb.ListRunsRequest(
            period=period,
            statuses=[run_status_value(s) for s in status or ()],  # type: ignore[misc]
            trigger=trigger_value(trigger) if trigger else 0,  # type: ignore[arg-type]
            page=page_request(page_size, page_token),
            org_code=org_code or "",
        ),
        caller=caller,
    )
    return RunPage(
        items=[run_read(r) for r in resp.runs if governs(caller, r.org_path, "数据比对")],
        next_page_token=resp.page.next_page_token,
        total=resp.page.total,
    )


@router.get(
    "/runs/{run_id}",
    response_model=RunRead,
    summary="查看数据比对",
    **guard("comparison.read", RUN_IN_PATH),
)
async def get_run(run_id: RunId, caller: CurrentUser, reconcile: Reconcile) -> RunRead:
    """One run with its periods, times and counts."""
    resp = await reconcile.GetRun(pb.GetRunRequest(run_id=run_id), caller=caller)
    # A run covers its root's subtree: the caller sees its own area's runs and those above it.
    if not governs(caller, resp.run.org_path, "数据比对"):
        raise NotFound("数据比对不存在或不在本辖区内", code="NOT_FOUND", field="run_id")
    return run_read(resp.run)

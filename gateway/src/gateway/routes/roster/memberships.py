"""Roster routes for special-group memberships: lists, school verification, self-collection, ending,
progress and default levels."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.roster.v1 import roster_pb2 as pb

from gateway.deps import CurrentUser, Roster
from gateway.policy import guard
from gateway.routes.roster.base import (
    MEMBERSHIP_IN_PATH,
    MEMBERSHIPS_IN_BODY,
    ORG_IN_BODY,
    ORG_IN_QUERY,
    STUDENT_IN_BODY,
    Id,
    RootOrg,
    YearQuery,
    _id_type,
    router,
)
from gateway.schemas.common import (
    PageSize,
    PageToken,
    page_request,
)
from gateway.schemas.roster import (
    GroupName,
    MembershipStatusName,
    SourceName,
    VerificationName,
    group_value,
    level_value,
    read,
    value,
)
from gateway.schemas.roster.groups import (
    DefaultLevelRead,
    DefaultLevelsRead,
    DefaultLevelsUpdate,
    MembershipBatchRead,
    MembershipEndCreate,
    MembershipPage,
    MembershipRead,
    ProgressRead,
    SelfCollectedCreate,
    VerifyCreate,
    membership_read,
    progress_read,
)


@router.get(
    "/roster/special-groups/memberships",
    response_model=MembershipPage,
    summary="特殊群体学生名单",
    **guard("special_group.read", ORG_IN_QUERY),
)
async def list_memberships(
    caller: CurrentUser,
    roster: Roster,
    org_code: RootOrg = None,
    school_year: YearQuery = None,
    student_id: Annotated[str | None, Query(max_length=40)] = None,
    groups: Annotated[list[GroupName] | None, Query()] = None,
    source: Annotated[SourceName | None, Query()] = None,
    statuses: Annotated[list[MembershipStatusName] | None, Query()] = None,
    verification_statuses: Annotated[list[VerificationName] | None, Query()] = None,
    batch_id: Annotated[str | None, Query(max_length=40)] = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> MembershipPage:
    """Memberships of students at schools in a subtree."""
    resp = await roster.ListMemberships(
        pb.ListMembershipsRequest(
            org_code=org_code or "",
            school_year=school_year or "",
            student_id=student_id or "",
            groups=[group_value(g) for g in groups or ()],
            source=value(common_pb2.MembershipSource, "MEMBERSHIP_SOURCE_", source),
            statuses=[value(pb.MembershipStatus, "MEMBERSHIP_STATUS_", s) for s in statuses or ()],
            verification_statuses=[
                value(pb.VerificationStatus, "VERIFICATION_STATUS_", v)
                for v in verification_statuses or ()
            ],
            batch_id=batch_id or "",
            page=page_request(page_size, page_token),
        ),
        caller=caller,
    )
    return MembershipPage(
        items=[
            membership_read(m)
            for m in resp.memberships
            if caller.keeps(m.school_org_path, "特殊群体名单")
        ],
        next_page_token=resp.page.next_page_token,
        total=resp.page.total,
    )


@router.post(
    "/roster/special-groups/memberships/verify",
    response_model=MembershipBatchRead,
    summary="核实下发名单（确认或核实不符）",
    **guard("special_group.verify", MEMBERSHIPS_IN_BODY),
)
async def verify_memberships(
    body: VerifyCreate, caller: CurrentUser, roster: Roster
) -> MembershipBatchRead:
    """Confirm or dispute (with a note) issued memberships of the caller's students; all or
    nothing."""
    resp = await roster.VerifyMembership(
        pb.VerifyMembershipRequest(
            membership_ids=body.membership_ids,
            result=value(pb.VerificationStatus, "VERIFICATION_STATUS_", body.result),
            note=body.note,
        ),
        caller=caller,
    )
    return MembershipBatchRead(items=[membership_read(m) for m in resp.memberships])


@router.post(
    "/roster/special-groups/memberships",
    response_model=MembershipRead,
    status_code=201,
    summary="自采集特殊群体学生",
    **guard("special_group.verify", STUDENT_IN_BODY),
)
async def add_self_collected(
    body: SelfCollectedCreate, caller: CurrentUser, roster: Roster
) -> MembershipRead:
    """Add a member the issued lists missed, with a description of the evidence."""
    resp = await roster.AddSelfCollectedMembership(
        pb.AddSelfCollectedMembershipRequest(
            student_id=body.student_id,
            id_type=_id_type(body.id_type) if body.id_number else 0,
            id_number=body.id_number,
            group=group_value(body.group),
            valid_from=body.valid_from,
            valid_to=body.valid_to,
            evidence_note=body.evidence_note,
            school_year=body.school_year,
        ),
        caller=caller,
    )
    return membership_read(resp.membership)


@router.post(
    "/roster/special-groups/memberships/{membership_id}/end",
    response_model=MembershipRead,
    summary="特殊群体退出",
    **guard("special_group.verify", MEMBERSHIP_IN_PATH),
)
async def end_membership(
    membership_id: Id, body: MembershipEndCreate, caller: CurrentUser, roster: Roster
) -> MembershipRead:
    """End a membership; it stays as history."""
    resp = await roster.EndMembership(
        pb.EndMembershipRequest(
            membership_id=membership_id, ended_on=body.ended_on, reason=body.reason
        ),
        caller=caller,
    )
    return membership_read(resp.membership)


@router.get(
    "/roster/special-groups/progress",
    response_model=ProgressRead,
    summary="核实进度（按下辖地区/学校）",
    **guard("special_group.read", ORG_IN_QUERY),
)
async def verification_progress(
    caller: CurrentUser,
    roster: Roster,
    org_code: RootOrg = None,
    school_year: YearQuery = None,
    batch_id: Annotated[str | None, Query(max_length=40)] = None,
    group: Annotated[GroupName | None, Query()] = None,
) -> ProgressRead:
    """The total, then one row per child region or school of the subtree."""
    resp = await roster.GetVerificationProgress(
        pb.GetVerificationProgressRequest(
            org_code=org_code or "",
            school_year=school_year or "",
            batch_id=batch_id or "",
            group=group_value(group) if group else 0,
        ),
        caller=caller,
    )
    rows = [progress_read(r) for r in resp.rows]
    return ProgressRead(
        items=[r for r in rows if r.org is None or caller.keeps(r.org.org_path, "核实进度")]
    )


@router.get(
    "/roster/special-groups/default-levels",
    response_model=DefaultLevelsRead,
    summary="特殊群体默认认定档次",
    **guard("special_group.read", ORG_IN_QUERY),
)
async def get_default_levels(
    caller: CurrentUser, roster: Roster, org_code: RootOrg = None
) -> DefaultLevelsRead:
    """The table of the org's province, else the national one."""
    resp = await roster.GetGroupDefaultLevels(
        pb.GetGroupDefaultLevelsRequest(org_code=org_code or ""), caller=caller
    )
    return _defaults(resp)


@router.put(
    "/roster/special-groups/default-levels",
    response_model=DefaultLevelsRead,
    summary="设置特殊群体默认认定档次（省级/国家）",
    **guard("special_group.defaults", ORG_IN_BODY),
)
async def set_default_levels(
    body: DefaultLevelsUpdate, caller: CurrentUser, roster: Roster
) -> DefaultLevelsRead:
    """Replace the default-level table of a province (or the nation)."""
    resp = await roster.SetGroupDefaultLevels(
        pb.SetGroupDefaultLevelsRequest(
            org_code=body.org_code or "",
            defaults=[
                pb.GroupDefaultLevel(group=group_value(d.group), level=level_value(d.level))
                for d in body.defaults
            ],
        ),
        caller=caller,
    )
    return DefaultLevelsRead(
        source_org_code=resp.org_code,
        defaults=[_default(d) for d in resp.defaults],
    )


def _default(d: pb.GroupDefaultLevel) -> DefaultLevelRead:
    return DefaultLevelRead(
        group=read(DefaultLevelRead, d).group, level=read(DefaultLevelRead, d).level
    )


def _defaults(resp: pb.GetGroupDefaultLevelsResponse) -> DefaultLevelsRead:
    return DefaultLevelsRead(
        source_org_code=resp.source_org_code,
        defaults=[_default(d) for d in resp.defaults],
        updated_by=resp.updated_by,
        updated_at=resp.updated_at.ToDatetime() if resp.HasField("updated_at") else None,
    )

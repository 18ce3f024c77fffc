"""Domain objects ↔ protobuf messages (shared by the servicer and the event builders)."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp
from zizhu_common.idnumber import mask_id_number, mask_phone
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.identity.v1 import identity_pb2

from identity_service.domain.accounts import Account, AccountKind, AccountStatus, IdType, Role
from identity_service.domain.orgs import Level, Org, OrgStatus, Ownership, Stage

OWNERSHIP_TO_PB = {
    Ownership.PUBLIC.value: identity_pb2.OWNERSHIP_PUBLIC,
    Ownership.PRIVATE.value: identity_pb2.OWNERSHIP_PRIVATE,
}
PB_TO_OWNERSHIP = {
    identity_pb2.OWNERSHIP_PUBLIC: Ownership.PUBLIC,
    identity_pb2.OWNERSHIP_PRIVATE: Ownership.PRIVATE,
}

LEVEL_TO_PB = {
    Level.NATIONAL: common_pb2.ORG_LEVEL_NATIONAL,
    Level.PROVINCE: common_pb2.ORG_LEVEL_PROVINCE,
    Level.CITY: common_pb2.ORG_LEVEL_CITY,
    Level.COUNTY: common_pb2.ORG_LEVEL_COUNTY,
    Level.SCHOOL: common_pb2.ORG_LEVEL_SCHOOL,
}
PB_TO_LEVEL = {v: k for k, v in LEVEL_TO_PB.items()}
STAGE_TO_PB = {s: common_pb2.Stage.Value(f"STAGE_{s.name}") for s in Stage}
PB_TO_STAGE = {v: k for k, v in STAGE_TO_PB.items()}
ID_TYPE_TO_PB = {t: common_pb2.IdType.Value(f"ID_TYPE_{t.name}") for t in IdType}
PB_TO_ID_TYPE = {v: k for k, v in ID_TYPE_TO_PB.items()}
ROLE_TO_PB = {
    r: common_pb2.Role.Value(f"ROLE_{r.name}")
    for r in Role
    if f"ROLE_{r.name}" in common_pb2.Role.keys()
}
PB_TO_ROLE = {v: k for k, v in ROLE_TO_PB.items()}
STATUS_TO_PB = {
    AccountStatus.ACTIVE: identity_pb2.ACCOUNT_STATUS_ACTIVE,
    AccountStatus.LOCKED: identity_pb2.ACCOUNT_STATUS_LOCKED,
    AccountStatus.RETIRED: identity_pb2.ACCOUNT_STATUS_RETIRED,
}
PB_TO_STATUS = {v: k for k, v in STATUS_TO_PB.items()}
KIND_TO_PB = {
    AccountKind.PERSON: identity_pb2.ACCOUNT_KIND_PERSON,
    AccountKind.SERVICE: identity_pb2.ACCOUNT_KIND_SERVICE,
}
PB_TO_KIND = {v: k for k, v in KIND_TO_PB.items()}


def ts(moment: datetime | None) -> Timestamp | None:
    """A Timestamp, or None to leave the field unset."""
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def org_to_proto(org: Org) -> identity_pb2.Org:
    """An Org message."""
    msg = identity_pb2.Org(
        org_code=org.code,
        name=org.name,
        level=LEVEL_TO_PB[org.level],
        parent_code=org.parent_code or "",
        org_path=org.org_path,
        region_code=org.region_code,
        stages=[STAGE_TO_PB[s] for s in org.stages],
        school_category=org.school_category,
        status=(
            identity_pb2.ORG_STATUS_ACTIVE
            if org.status == OrgStatus.ACTIVE
            else identity_pb2.ORG_STATUS_RETIRED
        ),
        child_count=org.child_count,
        version=org.version,
        ownership=OWNERSHIP_TO_PB.get(org.ownership, identity_pb2.OWNERSHIP_UNSPECIFIED),
    )
    for name in ("created_at", "updated_at", "retired_at"):
        stamp = ts(getattr(org, name))
        if stamp is not None:
            getattr(msg, name).CopyFrom(stamp)
    return msg


def org_ref(org: Org) -> common_pb2.OrgRef:
    """An OrgRef for breadcrumbs."""
    return common_pb2.OrgRef(
        org_code=org.code, name=org.name, level=LEVEL_TO_PB[org.level], org_path=org.org_path
    )


def role_values(roles: tuple[Role, ...] | list[Role]) -> list[int]:
    """Proto values of roles the contract can express."""
    return [ROLE_TO_PB[r] for r in roles if r in ROLE_TO_PB]


def account_to_proto(account: Account) -> identity_pb2.Account:
    """An Account message with ID and phone masked."""
    msg = identity_pb2.Account(
        account_id=account.account_id,
        username=account.username,
        real_name=account.real_name,
        id_type=ID_TYPE_TO_PB[account.id_type],
        id_number_masked=mask_id_number(account.id_number),
        phone_masked=mask_phone(account.phone),
        org_code=account.org_code,
        org_name=account.org_name,
        org_path=account.org_path,
        org_level=LEVEL_TO_PB[account.org_level],
        roles=role_values(account.roles),
        kind=KIND_TO_PB[account.kind],
        status=STATUS_TO_PB[account.status],
        lock_reason=account.lock_reason,
        totp_enabled=account.totp_enabled,
        password_change_required=account.password_change_required,
        created_by=account.created_by,
        version=account.version,
    )
    for name in (
        "locked_until",
        "password_expires_at",
        "last_login_at",
        "created_at",
        "updated_at",
    ):
        stamp = ts(getattr(account, name))
        if stamp is not None:
            getattr(msg, name).CopyFrom(stamp)
    return msg

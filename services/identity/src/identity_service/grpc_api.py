"""gRPC servicer of the identity service: proto in, service call, proto out (no SQL, no rules)."""

from __future__ import annotations

from datetime import UTC as _UTC
from typing import Any

import grpc
from zizhu_common.errors import Unauthenticated
from zizhu_common.rpc import current_caller
from zizhu_contracts.common.v1 import common_pb2
from zizhu_contracts.identity.v1 import identity_pb2, identity_pb2_grpc

from identity_service.domain.accounts import AccountKind, IdType, Role
from identity_service.domain.orgs import Org, OrgRow
from identity_service.protomap import (
    KIND_TO_PB,
    LEVEL_TO_PB,
    PB_TO_ID_TYPE,
    PB_TO_KIND,
    PB_TO_LEVEL,
    PB_TO_OWNERSHIP,
    PB_TO_ROLE,
    PB_TO_STAGE,
    PB_TO_STATUS,
    account_to_proto,
    org_ref,
    org_to_proto,
    role_values,
    ts,
)
from identity_service.repository import AccountFilter, AuditFilter, OrgFilter
from identity_service.service import (
    AccountCreate,
    AccountUpdate,
    ClientInfo,
    IdentityServices,
    IssuedTokens,
)
from identity_service.service.audit import columns_of

SERVICE_NAME = identity_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name
MD_SESSION = "x-zizhu-session-id"


def _md(context: grpc.aio.ServicerContext) -> dict[str, str]:
    return {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}


def _roles(values: Any) -> tuple[str, ...]:
    names = []
    for v in values:
        role = PB_TO_ROLE.get(v)
        if role is None:
            from zizhu_common.errors import InvalidArgument

            raise InvalidArgument("未知角色", code="ROLE_UNKNOWN", field="roles")
        names.append(role.value)
    return tuple(names)


def _principal(tokens_claims: Any) -> identity_pb2.Principal:
    c = tokens_claims
    return identity_pb2.Principal(
        account_id=c.account_id,
        username=c.username,
        real_name=c.real_name,
        kind=KIND_TO_PB.get(AccountKind(c.kind), 0),
        org_code=c.org_code,
        org_name=c.org_name,
        org_path=c.org_path,
        org_level=LEVEL_TO_PB[c.level],
        roles=role_values([Role(r) for r in c.roles if r in Role._value2member_map_]),
        session_id=c.session_id,
        mfa_verified=c.mfa_verified,
        password_change_required=c.password_change_required,
    )


def _token_fields(issued: IssuedTokens) -> dict[str, Any]:
    return {
        "access_token": issued.access_token,
        "access_expires_at": ts(issued.access_expires_at),
        "refresh_token": issued.refresh_token,
        "refresh_expires_at": ts(issued.refresh_expires_at),
        "principal": _principal(issued.claims),
    }


def _page(next_token: str, total: int) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_page_token=next_token, total=total)


def _row_error(e: Any) -> common_pb2.RowError:
    return common_pb2.RowError(
        row=e.row, column=e.column, value=e.value, code=e.code, message=e.message
    )


class OrgAnswers:
    """GetOrg answers already built, by org code. The service hands out the same Org objects
    while the org tree is unchanged (its read cache), so an answer is reused only when built from
    exactly those objects; new objects (a change, or a read without the cache) build it anew."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._answers: dict[str, tuple[Org, list[Org], identity_pb2.GetOrgResponse]] = {}

    def answer(self, org: Org, ancestors: list[Org]) -> identity_pb2.GetOrgResponse:
        """The GetOrgResponse of org and its ancestors (root first)."""
        kept = self._answers.get(org.code)
        if (
            kept is not None
            and kept[0] is org
            and len(kept[1]) == len(ancestors)
            and all(a is b for a, b in zip(kept[1], ancestors, strict=True))
        ):
            return kept[2]
        resp = identity_pb2.GetOrgResponse(
            org=org_to_proto(org), ancestors=[org_ref(a) for a in ancestors]
        )
        if org.code not in self._answers and len(self._answers) >= self.size:
            self._answers.pop(next(iter(self._answers)))
        self._answers[org.code] = (org, list(ancestors), resp)
        return resp


class IdentityServicer(identity_pb2_grpc.IdentityServiceServicer):
    """Serves zizhu_contracts.identity.v1.IdentityService."""

    def __init__(self, services: IdentityServices) -> None:
        self.s = services
        self._org_answers = OrgAnswers()

    # --- sessions -----------------------------------------------------------------------------

    async def Login(self, request: Any, context: Any) -> Any:
        rid = _md(context).get("x-request-id", "")
        issued = await self.s.sessions.login(
            username=request.username,
            password=request.password,
            totp_code=request.totp_code,
            client=ClientInfo(request.client_ip, request.user_agent, rid),
        )
        return identity_pb2.LoginResponse(**_token_fields(issued))

    async def Refresh(self, request: Any, context: Any) -> Any:
        rid = _md(context).get("x-request-id", "")
        issued = await self.s.sessions.refresh(
            refresh_token=request.refresh_token,
            client=ClientInfo(request.client_ip, request.user_agent, rid),
        )
        return identity_pb2.RefreshResponse(**_token_fields(issued))

    async def Logout(self, request: Any, context: Any) -> Any:
        caller = current_caller()
        md = _md(context)
        session_id, jti, exp = md.get(MD_SESSION, ""), "", 0
        bearer = md.get("authorization", "")
        if bearer.lower().startswith("bearer "):
            claims = await self.s.sessions.verify(bearer[7:].strip())
            if claims.account_id != caller.account_id:
                raise Unauthenticated("令牌与调用者不符", code="TOKEN_MISMATCH")
            session_id, jti, exp = claims.session_id, claims.jti, claims.expires_at
        count = await self.s.sessions.logout(
            caller,
            session_id=session_id,
            jti=jti,
            expires_at=exp,
            all_sessions=request.all_sessions,
        )
        return identity_pb2.LogoutResponse(revoked_sessions=count)

    async def VerifyToken(self, request: Any, context: Any) -> Any:
        claims = await self.s.sessions.verify(request.access_token)
        resp = identity_pb2.VerifyTokenResponse(principal=_principal(claims))
        resp.expires_at.FromSeconds(claims.expires_at)
        return resp

    async def GetPublicKey(self, request: Any, context: Any) -> Any:
        keys = self.s.deps.keys
        out = [
            identity_pb2.PublicKey(key_id=kid, algorithm="SM2-SM3", public_key_pem=v.public_key_pem)
            for kid, v in keys.verifiers.items()
            if not request.key_id or request.key_id == kid
        ]
        if request.key_id and not out:
            from zizhu_common.errors import NotFound

            raise NotFound("密钥不存在", code="KEY_NOT_FOUND", field="key_id")
        return identity_pb2.GetPublicKeyResponse(keys=out, current_key_id=keys.current_key_id)

    # --- organisations ------------------------------------------------------------------------

    async def GetOrg(self, request: Any, context: Any) -> Any:
        org, ancestors = await self.s.orgs.get_org(current_caller(), request.org_code)
        return self._org_answers.answer(org, ancestors)

    async def BatchGetOrgs(self, request: Any, context: Any) -> Any:
        orgs, missing = await self.s.orgs.batch_get(current_caller(), list(request.org_codes))
        return identity_pb2.BatchGetOrgsResponse(
            orgs=[org_to_proto(o) for o in orgs], missing_codes=missing
        )

    async def ListSubtree(self, request: Any, context: Any) -> Any:
        flt = OrgFilter(
            root_path="",
            include_root=request.include_root,
            max_depth=request.max_depth,
            levels=tuple(PB_TO_LEVEL[v] for v in request.levels if v in PB_TO_LEVEL),
            stages=tuple(PB_TO_STAGE[v] for v in request.stages if v in PB_TO_STAGE),
            query=request.query.strip(),
            include_retired=request.include_retired,
        )
        orgs, total, token = await self.s.orgs.list_subtree(
            current_caller(),
            root_code=request.org_code,
            flt=flt,
            page_size=request.page.page_size,
            page_token=request.page.page_token,
        )
        return identity_pb2.ListSubtreeResponse(
            orgs=[org_to_proto(o) for o in orgs], page=_page(token, total)
        )

    async def ImportOrgs(self, request: Any, context: Any) -> Any:
        rows = [
            OrgRow(
                row=i + 1,
                code=o.org_code.strip(),
                name=o.name,
                level=PB_TO_LEVEL.get(o.level),
                parent_code=o.parent_code.strip() or None,
                region_code=o.region_code.strip() or None,
                stages=tuple(PB_TO_STAGE[s] for s in o.stages if s in PB_TO_STAGE) or None,
                ownership=PB_TO_OWNERSHIP.get(o.ownership),
                columns={"code": "org_code", "name": "name", "parent_code": "parent_code"},
            )
            for i, o in enumerate(request.orgs)
        ]
        result = await self.s.orgs.import_orgs(
            current_caller(), rows, dry_run=request.dry_run, partial=request.partial
        )
        return _import_response(result)

    async def ImportOrgFile(self, request: Any, context: Any) -> Any:
        result = await self.s.orgs.import_file(
            current_caller(),
            file_name=request.file.file_name,
            content=request.file.content,
            kind=request.kind,
            dry_run=request.dry_run,
            partial=request.partial,
        )
        return identity_pb2.ImportOrgFileResponse(result=_import_response(result))

    async def RetireOrg(self, request: Any, context: Any) -> Any:
        org = await self.s.orgs.retire_org(current_caller(), request.org_code, request.reason)
        return identity_pb2.RetireOrgResponse(org=org_to_proto(org))

    # --- accounts -----------------------------------------------------------------------------

    async def CreateAccount(self, request: Any, context: Any) -> Any:
        account, password = await self.s.accounts.create(
            current_caller(),
            AccountCreate(
                username=request.username,
                real_name=request.real_name,
                id_type=PB_TO_ID_TYPE.get(request.id_type, IdType.RESIDENT_ID),
                id_number=request.id_number,
                phone=request.phone,
                org_code=request.org_code,
                roles=_roles(request.roles),
                kind=PB_TO_KIND.get(request.kind, AccountKind.PERSON),
            ),
        )
        return identity_pb2.CreateAccountResponse(
            account=account_to_proto(account), initial_password=password
        )

    async def GetAccount(self, request: Any, context: Any) -> Any:
        account, revealed = await self.s.accounts.get(
            current_caller(), request.account_id, reveal=request.reveal_personal_data
        )
        resp = identity_pb2.GetAccountResponse(account=account_to_proto(account))
        if revealed:
            resp.id_number, resp.phone = account.id_number, account.phone
        return resp

    async def ListAccounts(self, request: Any, context: Any) -> Any:
        flt = AccountFilter(
            scope_path="",
            direct_org_code="1" if request.direct_only else "",
            roles=tuple(PB_TO_ROLE[r] for r in request.roles if r in PB_TO_ROLE),
            statuses=tuple(PB_TO_STATUS[s] for s in request.statuses if s in PB_TO_STATUS),
            kind=PB_TO_KIND.get(request.kind),
            query=request.query.strip(),
        )
        accounts, total, token = await self.s.accounts.list(
            current_caller(),
            org_code=request.org_code,
            flt=flt,
            page_size=request.page.page_size,
            page_token=request.page.page_token,
        )
        return identity_pb2.ListAccountsResponse(
            accounts=[account_to_proto(a) for a in accounts], page=_page(token, total)
        )

    async def UpdateAccount(self, request: Any, context: Any) -> Any:
        data = AccountUpdate(
            real_name=request.real_name if request.HasField("real_name") else None,
            id_type=PB_TO_ID_TYPE.get(request.id_type) if request.HasField("id_type") else None,
            id_number=request.id_number if request.HasField("id_number") else None,
            phone=request.phone if request.HasField("phone") else None,
            expected_version=request.expected_version,
        )
        account = await self.s.accounts.update(current_caller(), request.account_id, data)
        return identity_pb2.UpdateAccountResponse(account=account_to_proto(account))

    async def SetAccountRoles(self, request: Any, context: Any) -> Any:
        account = await self.s.accounts.set_roles(
            current_caller(), request.account_id, _roles(request.roles), request.expected_version
        )
        return identity_pb2.SetAccountRolesResponse(account=account_to_proto(account))

    async def LockAccount(self, request: Any, context: Any) -> Any:
        account = await self.s.accounts.lock(current_caller(), request.account_id, request.reason)
        return identity_pb2.LockAccountResponse(account=account_to_proto(account))

    async def UnlockAccount(self, request: Any, context: Any) -> Any:
        account = await self.s.accounts.unlock(current_caller(), request.account_id, request.reason)
        return identity_pb2.UnlockAccountResponse(account=account_to_proto(account))

    async def ResetPassword(self, request: Any, context: Any) -> Any:
        account, temporary = await self.s.accounts.reset_password(
            current_caller(), request.account_id, request.reason
        )
        return identity_pb2.ResetPasswordResponse(
            account=account_to_proto(account), temporary_password=temporary
        )

    async def RetireAccount(self, request: Any, context: Any) -> Any:
        account = await self.s.accounts.retire(current_caller(), request.account_id, request.reason)
        return identity_pb2.RetireAccountResponse(account=account_to_proto(account))

    async def ChangePassword(self, request: Any, context: Any) -> Any:
        expires = await self.s.sessions.change_password(
            current_caller(),
            current_password=request.current_password,
            new_password=request.new_password,
            session_id=_md(context).get(MD_SESSION, ""),
        )
        return identity_pb2.ChangePasswordResponse(password_expires_at=ts(expires))

    async def EnrollTotp(self, request: Any, context: Any) -> Any:
        secret, uri = await self.s.sessions.enroll_totp(current_caller())
        return identity_pb2.EnrollTotpResponse(secret=secret, provisioning_uri=uri)

    async def ConfirmTotp(self, request: Any, context: Any) -> Any:
        account = await self.s.sessions.confirm_totp(current_caller(), request.totp_code)
        return identity_pb2.ConfirmTotpResponse(account=account_to_proto(account))

    async def ResetTotp(self, request: Any, context: Any) -> Any:
        account = await self.s.accounts.reset_totp(
            current_caller(), request.account_id, request.reason
        )
        return identity_pb2.ResetTotpResponse(account=account_to_proto(account))

    # --- audit log ----------------------------------------------------------------------------

    async def QueryAuditLog(self, request: Any, context: Any) -> Any:
        flt = AuditFilter(
            scope_path="",
            actor_account_id=request.actor_account_id,
            action_prefix=request.action_prefix,
            object_type=request.object_type,
            object_id=request.object_id,
            outcome=int(request.outcome),
            sensitive_reads_only=request.sensitive_reads_only,
            since=request.since.ToDatetime(tzinfo=_UTC) if request.HasField("since") else None,
            until=request.until.ToDatetime(tzinfo=_UTC) if request.HasField("until") else None,
            correlation_id=request.correlation_id,
        )
        records, total, token = await self.s.audit.query(
            current_caller(),
            org_code=request.org_code,
            flt=flt,
            page_size=request.page.page_size,
            page_token=request.page.page_token,
        )
        entries = []
        for r in records:
            entry = identity_pb2.AuditLogEntry(
                seq=r.seq,
                action=common_pb2.ActionAudited.FromString(r.payload),
                prev_hash=r.prev_hash,
                hash=r.hash,
            )
            entry.recorded_at.FromDatetime(r.recorded_at)
            entries.append(entry)
        return identity_pb2.QueryAuditLogResponse(entries=entries, page=_page(token, total))

    async def VerifyAuditChain(self, request: Any, context: Any) -> Any:
        report = await self.s.audit.verify(
            current_caller(), from_seq=request.from_seq, to_seq=request.to_seq
        )
        return identity_pb2.VerifyAuditChainResponse(
            intact=report.intact,
            checked_count=report.checked_count,
            last_seq=report.last_seq,
            first_broken_seq=report.first_broken_seq,
            message=report.message,
        )


__all__ = ["SERVICE_NAME", "IdentityServicer", "columns_of"]


def _import_response(result: Any) -> Any:
    return identity_pb2.ImportOrgsResponse(
        created_count=result.created,
        updated_count=result.updated,
        moved_count=result.moved,
        unchanged_count=result.unchanged,
        errors=[_row_error(e) for e in result.errors],
        dry_run=result.dry_run,
        total_rows=result.total_rows,
    )

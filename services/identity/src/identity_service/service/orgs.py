"""Organisation use cases: read the tree in scope, import divisions and schools, retire."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession
from zizhu_common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from zizhu_common.rpc import CallerContext
from zizhu_contracts.identity.v1 import events_pb2

from identity_service import orgfiles
from identity_service.domain.accounts import Role
from identity_service.domain.orgs import (
    ImportPlan,
    Org,
    OrgRow,
    OrgStatus,
    RowError,
    codes_referenced,
    is_inside,
    is_strictly_inside,
    plan_import,
)
from identity_service.events import (
    ORG_CREATED,
    ORG_MOVED,
    ORG_RETIRED,
    ORG_UPDATED,
    event_meta,
)
from identity_service.protomap import org_to_proto
from identity_service.repository import OrgFilter, ReaderUnavailable, SqliteOrgReader
from identity_service.repository.org_cache import PgOrgCache
from identity_service.service.audit import OUTCOME_SUCCEEDED, Actor, AuditService
from identity_service.service.context import Deps, next_page_token, page_window

MAX_BATCH = 5000
MAX_BATCH_GET = 1000


@dataclass
class ImportResult:
    """Counts and row errors of an org import (errors without `partial` mean nothing written)."""

    created: int = 0
    updated: int = 0
    moved: int = 0
    unchanged: int = 0
    skipped: int = 0
    total_rows: int = 0
    errors: list[RowError] = field(default_factory=list)
    dry_run: bool = False
    committed: bool = False


class OrgService:
    """Use cases of the org tree."""

    def __init__(self, deps: Deps, audit: AuditService) -> None:
        self.deps = deps
        self.audit = audit
        # GetOrg is the most frequent read: on SQLite it bypasses aiosqlite's thread hand-offs
        # (and keeps answers while the file is unchanged); on PostgreSQL answers are kept while
        # no change to the org table is notified (the cache's `run` listens, wiring starts it).
        self._reader = SqliteOrgReader.for_url(deps.db.url)
        self.pg_cache = PgOrgCache(deps.db.url) if deps.db.dialect == "postgresql" else None

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        """A write transaction of the org tree; once it commits, this process's cached GetOrg
        answers are dropped at once (other processes drop theirs when the change's notification
        reaches them, PgOrgCache)."""
        async with self.deps.db.write() as session:
            yield session
        if self.pg_cache is not None:
            self.pg_cache.invalidate()

    async def ensure_root(self) -> Org:
        """Create the deployment's root node if it does not exist yet (idempotent)."""
        root = self.deps.root()
        async with self._writing() as session:
            existing = await self.deps.orgs.get(session, root.code)
            if existing is not None:
                return existing
            await self.deps.orgs.insert(session, root, self.deps.now())
            created = events_pb2.OrgCreated(org_code=root.code, org=org_to_proto(root))
            created.meta.CopyFrom(event_meta(org_path=root.org_path))
            await self.deps.outbox.add(session, ORG_CREATED, created)
        return root

    async def get_org(self, caller: CallerContext, code: str) -> tuple[Org, list[Org]]:
        """An org inside the caller's subtree and its ancestors (root first)."""
        org, ancestors = await self._org_detail(code) if code else (None, {})
        if org is None or not is_inside(org.org_path, caller.org_path):
            raise NotFound("机构不存在", code="ORG_NOT_FOUND", field="org_code")
        return org, [ancestors[c] for c in org.ancestor_codes() if c in ancestors]

    async def _org_detail(self, code: str) -> tuple[Org | None, dict[str, Org]]:
        """The org (with its active child count) and its ancestors by code, one snapshot."""
        if self._reader is not None:
            try:
                return self._reader.org_detail(code)
            except ReaderUnavailable:
                pass  # busy or not there yet: the session path below
        cache = self.pg_cache
        if cache is not None and (cached := cache.get(code)) is not None:
            return cached
        generation = cache.generation if cache is not None else 0
        # Autocommit: no BEGIN/ROLLBACK round trips. Under PostgreSQL's READ COMMITTED each
        # statement takes its own snapshot inside a transaction too, so nothing is lost.
        async with self.deps.db.read_engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            org, ancestors = await self.deps.orgs.org_detail(conn, code)
        if cache is not None and org is not None:
            cache.put(code, (org, ancestors), generation)
        return org, ancestors

    async def batch_get(
        self, caller: CallerContext, codes: Sequence[str]
    ) -> tuple[list[Org], list[str]]:
        """Orgs by code in request order; unknown or out-of-scope codes are reported missing."""
        if len(codes) > MAX_BATCH_GET:
            raise InvalidArgument(
                f"一次最多查询{MAX_BATCH_GET}个机构", code="BATCH_TOO_LARGE", field="org_codes"
            )
        async with self.deps.db.read() as session:
            found = await self.deps.orgs.get_many(session, codes)
            counts = await self.deps.orgs.child_counts(session, list(found))
        orgs, missing = [], []
        for code in codes:
            org = found.get(code)
            if org is None or not is_inside(org.org_path, caller.org_path):
                missing.append(code)
                continue
            org.child_count = counts.get(code, 0)
            orgs.append(org)
        return orgs, missing

    async def list_subtree(
        self,
        caller: CallerContext,
        *,
        root_code: str,
        flt: OrgFilter,
        page_size: int,
        page_token: str,
    ) -> tuple[list[Org], int, str]:
        """A page of the subtree under root_code (default: the caller's org)."""
        async with self.deps.db.read() as session:
            root = await self._in_scope(session, caller, root_code or caller.org_code)
            flt = OrgFilter(**{**flt.__dict__, "root_path": root.org_path})
            offset, limit = page_window(page_size, page_token, flt)
            orgs, total = await self.deps.orgs.list_subtree(
                session, flt, offset=offset, limit=limit
            )
        return orgs, total, next_page_token(offset, limit, total, flt)

    async def import_orgs(
        self,
        caller: CallerContext,
        rows: Sequence[OrgRow],
        *,
        dry_run: bool = False,
        partial: bool = False,
        extra_errors: Sequence[RowError] = (),
        skipped: int = 0,
        total_rows: int | None = None,
    ) -> ImportResult:
        """Create or update orgs inside the caller's subtree; all-or-nothing unless partial."""
        _require_admin(caller)
        if len(rows) > MAX_BATCH and not partial and not dry_run:
            raise InvalidArgument(
                f"一次最多导入{MAX_BATCH}个机构", code="BATCH_TOO_LARGE", field="orgs"
            )
        root = self.deps.root()
        async with self._writing() as session:
            existing = await self.deps.orgs.get_many(session, codes_referenced(rows) | {root.code})
            stored_root = existing.get(root.code)
            plan = plan_import(
                rows,
                existing=existing,
                root=stored_root or root,
                scope_path=caller.org_path,
                partial=partial,
            )
            errors = sorted([*extra_errors, *plan.errors], key=lambda e: (e.row, e.column))
            result = ImportResult(
                created=plan.count("created"),
                updated=plan.count("updated"),
                moved=plan.count("moved"),
                unchanged=plan.count("unchanged") + len(plan.skipped_rows) + skipped,
                errors=errors,
                dry_run=dry_run,
                total_rows=len(rows) + skipped if total_rows is None else total_rows,
            )
            if dry_run or (errors and not partial):
                if errors and not partial:
                    result.created = result.updated = result.moved = result.unchanged = 0
                return result  # nothing was written: the empty transaction commits
            await self._apply(session, caller, plan, existing)
            await self.audit.record(
                session,
                Actor.of(caller),
                action="identity.ImportOrgs",
                outcome=OUTCOME_SUCCEEDED,
                object_type="org",
                detail=(
                    f"导入机构：新增{result.created}，更新{result.updated}，"
                    f"迁移{result.moved}，未变{result.unchanged}，错误{len(errors)}"
                ),
            )
            result.committed = True
        return result

    async def import_file(
        self,
        caller: CallerContext,
        *,
        file_name: str,
        content: bytes,
        kind: str = "",
        dry_run: bool = False,
        partial: bool = False,
    ) -> ImportResult:
        """Import a CSV or XLSX of GB/T 2260 divisions or of schools (学校标识码)."""
        _require_admin(caller)
        parsed = orgfiles.parse_org_file(file_name, content, kind=kind)
        if parsed.fatal:
            return ImportResult(errors=parsed.errors, dry_run=dry_run, total_rows=parsed.total_rows)
        return await self.import_orgs(
            caller,
            parsed.rows,
            dry_run=dry_run,
            partial=partial,
            extra_errors=parsed.errors,
            skipped=parsed.skipped,
            total_rows=parsed.total_rows,
        )

    async def retire_org(self, caller: CallerContext, code: str, reason: str) -> Org:
        """Retire (撤销) an org below the caller's org; it must have no active children or accounts."""
        if not reason.strip():
            raise InvalidArgument("请填写撤销原因", code="REASON_REQUIRED", field="reason")
        async with self._writing() as session:
            org = await self._in_scope(session, caller, code)
            _require_admin(caller)
            if not is_strictly_inside(org.org_path, caller.org_path):
                raise PermissionDenied("只能撤销本单位下级的机构", code="NOT_ANCESTOR_ADMIN")
            if org.status == OrgStatus.RETIRED:
                raise FailedPrecondition("机构已撤销", code="ORG_RETIRED", field="org_code")
            if (await self.deps.orgs.child_counts(session, [org.code])).get(org.code):
                raise FailedPrecondition(
                    "请先撤销或迁移其下级机构", code="ORG_HAS_CHILDREN", field="org_code"
                )
            if await self.deps.orgs.count_active_accounts(session, org.code):
                raise FailedPrecondition(
                    "请先注销该机构的账号", code="ORG_HAS_ACCOUNTS", field="org_code"
                )
            now = self.deps.now()
            org.status, org.retired_at, org.retire_reason = (
                OrgStatus.RETIRED,
                now,
                reason.strip()[:500],
            )
            await self.deps.orgs.update_fields(session, org, now)
            org.version += 1
            org.updated_at = now
            retired = events_pb2.OrgRetired(
                org_code=org.code, org_path=org.org_path, reason=org.retire_reason
            )
            retired.retired_at.FromDatetime(now)
            retired.meta.CopyFrom(event_meta(caller=caller, org_path=org.org_path))
            await self.deps.outbox.add(session, ORG_RETIRED, retired)
            await self.audit.record(
                session,
                Actor.of(caller),
                action="identity.RetireOrg",
                outcome=OUTCOME_SUCCEEDED,
                org_path=org.org_path,
                object_type="org",
                object_id=org.code,
                detail=f"撤销机构：{org.retire_reason}",
            )
        return org

    # --- helpers ------------------------------------------------------------------------------

    async def _in_scope(self, session: AsyncSession, caller: CallerContext, code: str) -> Org:
        org = await self.deps.orgs.get(session, code) if code else None
        if org is None or not is_inside(org.org_path, caller.org_path):
            raise NotFound("机构不存在", code="ORG_NOT_FOUND", field="org_code")
        return org

    async def _apply(
        self,
        session: AsyncSession,
        caller: CallerContext,
        plan: ImportPlan,
        existing: dict[str, Org],
    ) -> None:
        now = self.deps.now()
        paths = {code: org.org_path for code, org in existing.items()}
        events: list[tuple[str, object]] = []
        for change in plan.changes:
            org = change.org
            parent_path = paths[org.parent_code or ""]
            new_path = f"{parent_path}{org.code}/"
            if change.kind == "created":
                org.org_path = new_path
                await self.deps.orgs.insert(session, org, now)
                org.created_at = org.updated_at = now
                msg = events_pb2.OrgCreated(org_code=org.code, org=org_to_proto(org))
                msg.meta.CopyFrom(event_meta(caller=caller, org_path=new_path))
                events.append((ORG_CREATED, msg))
            elif change.kind == "moved":
                old_path = await self.deps.orgs.move(
                    session,
                    code=org.code,
                    new_parent=org.parent_code or "",
                    new_path=new_path,
                    now=now,
                )
                for code, path in list(paths.items()):
                    if path.startswith(old_path):
                        paths[code] = new_path + path[len(old_path) :]
                moved = events_pb2.OrgMoved(
                    org_code=org.code,
                    old_parent_code=change.old_parent_code or "",
                    new_parent_code=org.parent_code or "",
                    old_path=old_path,
                    new_path=new_path,
                )
                moved.meta.CopyFrom(event_meta(caller=caller, org_path=new_path))
                events.append((ORG_MOVED, moved))
                org.org_path = new_path
            if change.kind in ("updated", "moved") and change.changed_fields:
                org.org_path = new_path
                await self.deps.orgs.update_fields(session, org, now)
                updated = events_pb2.OrgUpdated(
                    org_code=org.code, org=org_to_proto(org), changed_fields=change.changed_fields
                )
                updated.meta.CopyFrom(event_meta(caller=caller, org_path=new_path))
                events.append((ORG_UPDATED, updated))
            paths[org.code] = new_path
            if not is_strictly_inside(new_path, caller.org_path):
                raise InvalidArgument(
                    f"机构 {org.code} 不在您的管理范围内", code="OUT_OF_SCOPE", field="orgs"
                )
        await self.deps.outbox.add_many(session, events)  # type: ignore[arg-type]


def _require_admin(caller: CallerContext) -> None:
    if Role.ADMIN.value not in caller.roles:
        raise PermissionDenied("只有系统管理员可以管理机构", code="ROLE_REQUIRED")

"""Runs and approvals as the API shows them, scoped to the caller.

Runs follow the conversation rule: a principal sees the runs it submitted (its turns' runs
included); `admin` sees every run of its tenant; anything else is `NotFound`. Approvals are
tenant-wide for holders of `approvals:read`: deciding other people's tool calls is the
approver's job. Blocking functions: routes call them from worker threads.
"""

from __future__ import annotations

from sqlalchemy import and_, or_, select

from keel.api.pagination import Position
from keel.errors import NotFound
from keel.fabric.approvals import ApprovalView
from keel.fabric.runs import RunView
from keel.fabric.service import Fabric
from keel.identity import scopes
from keel.identity.principal import Principal
from keel.store.database import Database
from keel.store.tables import Approval


def visible_run(fabric: Fabric, principal: Principal, run_id: str) -> RunView:
    """The run, if PRINCIPAL may see it (NotFound otherwise: ids leak nothing)."""
    view = fabric.get(principal.tenant_id, run_id)
    if view.user_id != principal.user_id and not principal.has_scope(scopes.ADMIN):
        raise NotFound("run", run_id)
    return view


def list_approvals(
    db: Database,
    principal: Principal,
    *,
    status: str | None,
    run_id: str | None,
    limit: int,
    after: Position | None = None,
) -> tuple[list[ApprovalView], bool]:
    """Up to LIMIT approvals of the caller's tenant, newest first, starting after AFTER."""
    query = select(Approval).where(Approval.tenant_id == principal.tenant_id)
    if status is not None:
        query = query.where(Approval.status == status)
    if run_id is not None:
        query = query.where(Approval.run_id == run_id)
    if after is not None:
        query = query.where(
            or_(
                Approval.created_at < after.created_at,
                and_(Approval.created_at == after.created_at, Approval.id < after.id),
            )
        )
    query = query.order_by(Approval.created_at.desc(), Approval.id.desc()).limit(limit + 1)
    with db.transaction() as s:
        rows = [ApprovalView.of(r) for r in s.scalars(query)]
    return rows[:limit], len(rows) > limit

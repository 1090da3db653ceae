"""Approvals: the tool calls waiting for a human, and deciding them as the caller.

Approving the last pending approval of a run's round re-queues the run; a client following
its events sees it continue in the same stream.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query

from keel.api import pagination
from keel.api.deps import (
    ApprovalsRead,
    ApprovalsWrite,
    DbDep,
    FabricDep,
    IdempotencyKeyHeader,
)
from keel.api.idempotency import IdempotentRoute
from keel.api.problems import problem_responses
from keel.api.schemas import (
    ApprovalDecision,
    ApprovalPage,
    ApprovalPublic,
    ApprovalStatusName,
)
from keel.api.services import runs as service

router = APIRouter(prefix="/v1/approvals", tags=["approvals"], route_class=IdempotentRoute)

ApprovalId = Annotated[str, Path(max_length=64, description="An `apr_…` id.")]
Decision = Annotated[ApprovalDecision | None, Body()]
CURSOR_KIND = "approvals"


@router.get(
    "",
    summary="List approvals of your tenant, newest first",
    responses=problem_responses(401, 403, 422, 429),
)
def list_approvals(
    principal: ApprovalsRead,
    db: DbDep,
    status: Annotated[ApprovalStatusName | None, Query(description="e.g. `pending`.")] = None,
    run_id: Annotated[str | None, Query(max_length=64, description="Only this run's.")] = None,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=pagination.MAX_LIMIT)] = pagination.DEFAULT_LIMIT,
) -> ApprovalPage:
    after = pagination.decode_cursor(CURSOR_KIND, cursor) if cursor else None
    rows, has_more = service.list_approvals(
        db, principal, status=status, run_id=run_id, limit=limit, after=after
    )
    next_cursor = None
    if has_more and rows:
        last = rows[-1]
        next_cursor = pagination.encode_cursor(
            CURSOR_KIND, pagination.Position(last.created_at, last.id)
        )
    return ApprovalPage(
        data=[ApprovalPublic.from_view(r) for r in rows], next_cursor=next_cursor, has_more=has_more
    )


@router.get(
    "/{approval_id}",
    summary="Get an approval",
    responses=problem_responses(401, 403, 404, 422, 429, 503),
)
def get_approval(
    approval_id: ApprovalId, principal: ApprovalsRead, fabric: FabricDep
) -> ApprovalPublic:
    return ApprovalPublic.from_view(fabric.get_approval(principal.tenant_id, approval_id))


@router.post(
    "/{approval_id}/approve",
    summary="Approve the tool call (you are recorded as the decider)",
    responses=problem_responses(401, 403, 404, 409, 413, 422, 429, 503),
)
def approve(
    approval_id: ApprovalId,
    principal: ApprovalsWrite,
    fabric: FabricDep,
    body: Decision = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> ApprovalPublic:
    note = body.note if body is not None else ""
    view = fabric.approve(principal.tenant_id, approval_id, principal.user_id, note)
    return ApprovalPublic.from_view(view)


@router.post(
    "/{approval_id}/reject",
    summary="Reject the tool call (the model is told a reviewer refused)",
    responses=problem_responses(401, 403, 404, 409, 413, 422, 429, 503),
)
def reject(
    approval_id: ApprovalId,
    principal: ApprovalsWrite,
    fabric: FabricDep,
    body: Decision = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> ApprovalPublic:
    note = body.note if body is not None else ""
    view = fabric.reject(principal.tenant_id, approval_id, principal.user_id, note)
    return ApprovalPublic.from_view(view)

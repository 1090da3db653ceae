"""Human approvals: records of tool calls waiting for a decision, and resolving them.

A run whose agent asks for approvals ends its current workflow segment (no worker and no queue
slot is held while a human thinks, for minutes or days). Resolving the last pending approval
of a segment re-queues the run as the next segment, in the same transaction, with the
decisions as its deferred tool results. Expiry counts as a rejection.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from keel.errors import Conflict, NotFound
from keel.ids import new_id
from keel.store.tables import Approval
from keel.store.types import utcnow


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


@dataclass(frozen=True)
class ApprovalView:
    id: str
    run_id: str
    tenant_id: str
    segment: int
    tool_call_id: str
    tool: str
    args: dict[str, Any]
    reason: str
    requested_by: str
    status: str
    decided_by: str | None
    note: str
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None

    @classmethod
    def of(cls, a: Approval) -> ApprovalView:
        return cls(
            a.id, a.run_id, a.tenant_id, a.segment, a.tool_call_id, a.tool, dict(a.args),
            a.reason, a.requested_by, a.status, a.decided_by, a.note, a.created_at,
            a.expires_at, a.decided_at,
        )  # fmt: skip


@dataclass(frozen=True)
class ApprovalRequest:
    """One deferred tool call as the agent run reported it."""

    tool_call_id: str
    tool: str
    args: dict[str, Any]
    reason: str = ""


def create(
    session: Session,
    *,
    run_id: str,
    tenant_id: str,
    segment: int,
    request: ApprovalRequest,
    requested_by: str,
    ttl: timedelta,
) -> ApprovalView:
    """Record a pending approval (the existing one when this call was already recorded)."""
    existing = session.scalars(
        select(Approval).where(
            Approval.run_id == run_id, Approval.tool_call_id == request.tool_call_id
        )
    ).first()
    if existing is not None:
        return ApprovalView.of(existing)
    now = utcnow()
    row = Approval(
        id=new_id("apr"),
        run_id=run_id,
        tenant_id=tenant_id,
        segment=segment,
        tool_call_id=request.tool_call_id,
        tool=request.tool,
        args=request.args,
        reason=request.reason,
        requested_by=requested_by,
        status=ApprovalStatus.PENDING,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(row)
    session.flush()
    return ApprovalView.of(row)


def lock(session: Session, tenant_id: str | None, approval_id: str) -> Approval:
    q = select(Approval).where(Approval.id == approval_id).with_for_update()
    row = session.scalars(q).first()
    if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
        raise NotFound("approval", approval_id)
    return row


def decide(row: Approval, status: ApprovalStatus, actor: str, note: str) -> None:
    if row.status != ApprovalStatus.PENDING:
        raise Conflict(f"approval {row.id} is already {row.status}")
    row.status = status
    row.decided_by = actor
    row.note = note
    row.decided_at = utcnow()


def pending_in_segment(session: Session, run_id: str, segment: int) -> int:
    return len(
        session.scalars(
            select(Approval.id).where(
                Approval.run_id == run_id,
                Approval.segment == segment,
                Approval.status == ApprovalStatus.PENDING,
            )
        ).all()
    )


def decisions(session: Session, run_id: str, segment: int) -> list[ApprovalView]:
    rows = session.scalars(
        select(Approval)
        .where(Approval.run_id == run_id, Approval.segment == segment)
        .order_by(Approval.created_at, Approval.id)
    )
    return [ApprovalView.of(r) for r in rows]


def expired_ids(session: Session, now: datetime, limit: int = 100) -> list[str]:
    return list(
        session.scalars(
            select(Approval.id)
            .where(Approval.status == ApprovalStatus.PENDING, Approval.expires_at <= now)
            .order_by(Approval.expires_at)
            .limit(limit)
        )
    )


def list_for(
    session: Session,
    tenant_id: str,
    *,
    status: str | None = None,
    run_id: str | None = None,
    limit: int = 100,
) -> list[ApprovalView]:
    q = select(Approval).where(Approval.tenant_id == tenant_id)
    if status is not None:
        q = q.where(Approval.status == status)
    if run_id is not None:
        q = q.where(Approval.run_id == run_id)
    q = q.order_by(Approval.created_at.desc(), Approval.id.desc()).limit(limit)
    return [ApprovalView.of(r) for r in session.scalars(q)]

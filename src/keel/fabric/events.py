"""Run events: the ordered, persisted story of a run, and the SSE stream's source.

`seq` is dense per run (1, 2, 3, …) and is the SSE event id, so a client that reconnects with
`Last-Event-ID: n` resumes at n+1 and misses nothing. An event written from inside a durable
step carries a `key` unique per run (workflow id, step id, index), so a step that re-executes
after a crash writes its events once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from keel.store.tables import Run, RunEvent
from keel.store.types import utcnow


class EventType(StrEnum):
    RUN_QUEUED = "run.queued"
    RUN_STARTED = "run.started"
    MODEL_RESPONSE = "model.response"
    TOOL_REQUESTED = "tool.requested"
    TOOL_DECISION = "tool.decision"
    TOOL_RESULT = "tool.result"
    APPROVAL_REQUESTED = "approval.requested"
    APPROVAL_RESOLVED = "approval.resolved"
    RUN_WAITING = "run.waiting_approval"
    OUTPUT = "output"
    CHECK = "check"
    RUN_SUCCEEDED = "run.succeeded"
    RUN_FAILED = "run.failed"
    RUN_CANCELLED = "run.cancelled"
    RUN_TIMED_OUT = "run.timed_out"
    RUN_BLOCKED = "run.blocked"
    RUN_REDRIVEN = "run.redriven"


STATUS_EVENTS = {
    "succeeded": EventType.RUN_SUCCEEDED,
    "failed": EventType.RUN_FAILED,
    "cancelled": EventType.RUN_CANCELLED,
    "timed_out": EventType.RUN_TIMED_OUT,
    "blocked": EventType.RUN_BLOCKED,
    "waiting_approval": EventType.RUN_WAITING,
    "running": EventType.RUN_STARTED,
    "queued": EventType.RUN_QUEUED,
}


@dataclass(frozen=True)
class Event:
    run_id: str
    seq: int
    type: str
    data: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None

    @classmethod
    def of(cls, row: RunEvent) -> Event:
        return cls(row.run_id, row.seq, row.type, dict(row.data), row.created_at)


def append(
    session: Session,
    run: Run,
    type_: str,
    data: dict[str, Any] | None = None,
    *,
    key: str | None = None,
) -> int:
    """Append an event to RUN (a row the caller has locked) in SESSION's transaction and
    return its seq — or the existing event's seq when KEY was already written."""
    if key is not None:
        existing = session.execute(
            select(RunEvent.seq).where(RunEvent.run_id == run.id, RunEvent.key == key)
        ).scalar()
        if existing is not None:
            return int(existing)
    seq = int(run.event_seq or 0) + 1
    run.event_seq = seq
    session.execute(
        insert(RunEvent).values(
            run_id=run.id,
            tenant_id=run.tenant_id,
            seq=seq,
            type=str(type_),
            data=data or {},
            key=key,
            created_at=utcnow(),
        )
    )
    return seq


def read(session: Session, run_id: str, after: int = 0, limit: int = 1000) -> list[Event]:
    rows = session.scalars(
        select(RunEvent)
        .where(RunEvent.run_id == run_id, RunEvent.seq > after)
        .order_by(RunEvent.seq)
        .limit(limit)
    )
    return [Event.of(r) for r in rows]

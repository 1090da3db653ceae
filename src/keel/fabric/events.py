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

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
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


def _append_statement(dialect: str) -> Any:
    """`INSERT … ON CONFLICT (run_id, key) DO NOTHING RETURNING seq` with bound parameters,
    built once per dialect: the values travel as parameters, so SQLAlchemy neither rebuilds the
    statement nor computes a cache key over the values on every event."""
    dialect_insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return (
        dialect_insert(RunEvent)
        .values({name: bindparam(name) for name in _APPEND_COLUMNS})
        .on_conflict_do_nothing(index_elements=["run_id", "key"])
        .returning(RunEvent.seq)
    )


_APPEND_COLUMNS = ("run_id", "tenant_id", "seq", "type", "data", "key", "created_at")
_APPEND = {dialect: _append_statement(dialect) for dialect in ("postgresql", "sqlite")}


def append(
    session: Session,
    run: Run,
    type_: str,
    data: dict[str, Any] | None = None,
    *,
    key: str | None = None,
) -> int | None:
    """Append an event to RUN (a row the caller has locked) in SESSION's transaction; return
    its seq, or None when an event with KEY was already written (nothing is written twice).

    One `INSERT … ON CONFLICT DO NOTHING` on the session's connection: no autoflush of the
    session, no lookup first; the run's counter advances only when a row went in, so seqs stay
    dense."""
    seq = int(run.event_seq or 0) + 1
    values = {
        "run_id": run.id, "tenant_id": run.tenant_id, "seq": seq, "type": str(type_),
        "data": data or {}, "key": key, "created_at": utcnow(),
    }  # fmt: skip
    conn = session.connection()
    stmt = _APPEND["postgresql" if conn.dialect.name == "postgresql" else "sqlite"]
    if conn.execute(stmt, values).first() is None:  # (rowcount is unreliable with RETURNING)
        return None
    run.event_seq = seq
    return seq


def read(conn: Connection | Session, run_id: str, after: int = 0, limit: int = 1000) -> list[Event]:
    cols = (RunEvent.run_id, RunEvent.seq, RunEvent.type, RunEvent.data, RunEvent.created_at)
    rows = conn.execute(
        select(*cols)
        .where(RunEvent.run_id == run_id, RunEvent.seq > after)
        .order_by(RunEvent.seq)
        .limit(limit)
    )
    return [Event(r.run_id, r.seq, r.type, dict(r.data), r.created_at) for r in rows]

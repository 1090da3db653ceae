"""The run envelope in the store: reading runs (always scoped by tenant) and changing them under
the run's lock, with events written in the same transaction as the change they describe."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from keel.errors import NotFound
from keel.fabric import events
from keel.fabric.events import STATUS_EVENTS, Event
from keel.fabric.notify import Notifier
from keel.fabric.states import RunStatus, can_transition, check_transition, is_terminal
from keel.store.database import Database
from keel.store.tables import Run
from keel.store.types import utcnow


@dataclass(frozen=True)
class RunView:
    """A run as callers see it (a detached copy; never a live row)."""

    id: str
    tenant_id: str
    user_id: str
    agent: str
    spec_version: str
    prompt_name: str | None
    prompt_version: int | None
    model: str
    input: dict[str, Any]
    output: dict[str, Any] | None
    status: str
    error: dict[str, Any] | None
    usage: dict[str, Any]
    cost_usd: float
    idempotency_key: str | None
    priority: int
    lane: str
    deadline: datetime | None
    parent_run_id: str | None
    conversation_id: str | None
    turn_id: str | None
    segment: int
    redrives: int
    after_run_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def terminal(self) -> bool:
        return is_terminal(self.status)

    @classmethod
    def of(cls, r: Any) -> RunView:
        """From a `Run` row or a Core row of `VIEW_COLUMNS`."""
        return cls(
            id=r.id,
            tenant_id=r.tenant_id,
            user_id=r.user_id,
            agent=r.agent,
            spec_version=r.spec_version,
            prompt_name=r.prompt_name,
            prompt_version=r.prompt_version,
            model=r.model,
            input=dict(r.input),
            output=dict(r.output) if r.output is not None else None,
            status=r.status,
            error=dict(r.error) if r.error is not None else None,
            usage=dict(r.usage or {}),
            cost_usd=float(r.cost_usd or 0.0),
            idempotency_key=r.idempotency_key,
            priority=r.priority,
            lane=r.lane,
            deadline=r.deadline,
            parent_run_id=r.parent_run_id,
            conversation_id=r.conversation_id,
            turn_id=r.turn_id,
            segment=r.segment,
            redrives=r.redrives,
            after_run_id=r.after_run_id,
            created_at=r.created_at,
            started_at=r.started_at,
            finished_at=r.finished_at,
        )


# what a RunView needs: never the large columns (history, instructions, partial text)
VIEW_COLUMNS = tuple(c for c in Run.__table__.columns if c.name in RunView.__dataclass_fields__)


class RunTx:
    """A change to one locked run inside one transaction."""

    def __init__(self, session: Session, run: Run, notifier: Notifier) -> None:
        self.session = session
        self.run = run
        self._notifier = notifier
        self.wrote_events = False

    def event(
        self, type_: str, data: dict[str, Any] | None = None, *, key: str | None = None
    ) -> int | None:
        """Append an event (its seq), or nothing when KEY was written before (None)."""
        seq = events.append(self.session, self.run, type_, data, key=key)
        self.wrote_events = self.wrote_events or seq is not None
        return seq

    def transition(
        self, status: RunStatus, data: dict[str, Any] | None = None, *, key: str | None = None
    ) -> None:
        """Move the run to STATUS (Conflict when the lifecycle forbids it) and record it."""
        check_transition(self.run.id, self.run.status, status)
        self.run.status = status
        now = utcnow()
        if status == RunStatus.RUNNING and self.run.started_at is None:
            self.run.started_at = now
        if is_terminal(status):
            self.run.finished_at = now
        elif status == RunStatus.QUEUED:
            self.run.finished_at = None
        self.event(STATUS_EVENTS[status], {"status": str(status), **(data or {})}, key=key)

    def try_transition(
        self, status: RunStatus, data: dict[str, Any] | None = None, *, key: str | None = None
    ) -> bool:
        """`transition` when allowed; False (and nothing written) when not."""
        if not can_transition(self.run.status, status):
            return False
        self.transition(status, data, key=key)
        return True


# built once: a run's read-modify-write is the fabric's most frequent statement
_LOCK_RUN = select(Run).where(Run.id == bindparam("run_id")).with_for_update()


class RunStore:
    def __init__(self, db: Database, notifier: Notifier) -> None:
        self.db = db
        self.notifier = notifier

    @contextmanager
    def write(self, run_id: str) -> Iterator[RunTx]:
        """Lock RUN_ID for a read-modify-write; events written commit with the change and
        followers are notified after the commit."""
        with self.db.transaction(lock=True) as session:
            run = session.scalars(_LOCK_RUN, {"run_id": run_id}).first()
            if run is None:
                raise NotFound("run", run_id)
            tx = RunTx(session, run, self.notifier)
            yield tx
            if tx.wrote_events:
                self.notifier.in_transaction(session, run_id)
        if tx.wrote_events:
            self.notifier.published(run_id)

    def _row(self, run_id: str) -> Any:
        with self.db.engine.connect() as conn:
            return conn.execute(select(*VIEW_COLUMNS).where(Run.id == run_id)).first()

    def get(self, tenant_id: str, run_id: str) -> RunView:
        row = self._row(run_id)
        if row is None or row.tenant_id != tenant_id:
            raise NotFound("run", run_id)
        return RunView.of(row)

    def get_internal(self, run_id: str) -> RunView:
        """A run by id with no tenant check: for the worker, which runs what it was given."""
        row = self._row(run_id)
        if row is None:
            raise NotFound("run", run_id)
        return RunView.of(row)

    def status(self, tenant_id: str, run_id: str) -> str:
        """Just the status (cheap: followers poll it)."""
        with self.db.engine.connect() as conn:
            row = conn.execute(select(Run.tenant_id, Run.status).where(Run.id == run_id)).first()
        if row is None or row.tenant_id != tenant_id:
            raise NotFound("run", run_id)
        return str(row.status)

    def list_runs(
        self,
        tenant_id: str,
        *,
        agent: str | None = None,
        status: str | None = None,
        user_id: str | None = None,
        limit: int = 50,
        before: tuple[datetime, str] | None = None,
    ) -> list[RunView]:
        """Newest first; BEFORE is the (created_at, id) of the last run of the previous page."""
        q = select(Run).where(Run.tenant_id == tenant_id)
        if agent is not None:
            q = q.where(Run.agent == agent)
        if status is not None:
            q = q.where(Run.status == status)
        if user_id is not None:
            q = q.where(Run.user_id == user_id)
        if before is not None:
            created, rid = before
            q = q.where((Run.created_at < created) | ((Run.created_at == created) & (Run.id < rid)))
        q = q.order_by(Run.created_at.desc(), Run.id.desc()).limit(limit)
        with self.db.transaction() as s:
            return [RunView.of(r) for r in s.scalars(q)]

    def events(self, tenant_id: str, run_id: str, after: int = 0, limit: int = 1000) -> list[Event]:
        with self.db.engine.connect() as conn:
            owner = conn.execute(select(Run.tenant_id).where(Run.id == run_id)).scalar()
            if owner is None or owner != tenant_id:
                raise NotFound("run", run_id)
            return events.read(conn, run_id, after, limit)

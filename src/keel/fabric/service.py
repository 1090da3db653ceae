"""`Fabric`: the operations on runs that the API, the CLI, the batch runner and evals use —
submit, get, list, events (and following them live), wait, cancel, re-drive, approvals.

Every read and change is scoped by tenant: another tenant's run is `NotFound`, never
`Forbidden`. Operations are synchronous (they are short database transactions); following and
waiting are async.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from dbos import DBOS
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from keel.errors import Conflict, IdempotencyMismatch, InvalidInput, NotFound
from keel.fabric import approvals, events, workflow
from keel.fabric.activities import Activities, partial_output
from keel.fabric.approvals import ApprovalStatus, ApprovalView
from keel.fabric.catalog import AgentCatalog, PreparedRun
from keel.fabric.engine import DurableEngine, Lane, segment_workflow_id
from keel.fabric.events import Event, EventType
from keel.fabric.extensions import FabricExtensions
from keel.fabric.notify import Notifier, make_notifier
from keel.fabric.recorder import RunRecorder
from keel.fabric.runs import RunStore, RunView
from keel.fabric.states import REDRIVABLE, RunStatus, is_terminal
from keel.identity.principal import Principal
from keel.ids import new_id
from keel.observability.tracing import Tracing, current_trace_context
from keel.settings import Settings
from keel.store.database import Database
from keel.store.tables import Run
from keel.store.types import utcnow

TERMINAL_EVENTS = frozenset(
    {EventType.RUN_SUCCEEDED, EventType.RUN_FAILED, EventType.RUN_CANCELLED,
     EventType.RUN_TIMED_OUT, EventType.RUN_BLOCKED}
)  # fmt: skip
SYSTEM_ACTOR = "system"
log = logging.getLogger(__name__)
MIN_PRIORITY, MAX_PRIORITY = 1, 9


def request_hash(
    agent: str, run_input: dict[str, Any], prompt: str | None, conversation_id: str | None
) -> str:
    canonical = json.dumps(
        {"agent": agent, "input": run_input, "prompt": prompt, "conversation": conversation_id},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class Fabric:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        catalog: AgentCatalog,
        *,
        notifier: Notifier | None = None,
        extensions: FabricExtensions | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.settings = settings
        self.tracing = tracing or Tracing.from_settings(settings)
        self.extensions = extensions or FabricExtensions()
        self.db = db
        self.catalog = catalog
        self.notifier = notifier or make_notifier(
            settings.event_notifier, db.url, settings.redis_url
        )
        self.engine = DurableEngine(settings, db)
        self.store = RunStore(db, self.notifier)
        self.activities = Activities(self.store, self.engine, settings, self.extensions.on_finished)
        self.recorder = RunRecorder(self.activities)
        self.executor = workflow.SegmentExecutor(
            self.activities, catalog, self.recorder, self.extensions, self.tracing
        )
        for hook in self.extensions.on_fabric:
            hook(self)

    # --- lifecycle --------------------------------------------------------------------------

    def start(self, *, execute: bool, lanes: Sequence[Lane] | None = None) -> None:
        """Create DBOS's tables if needed; with EXECUTE, also run workflows in this process —
        those queued on LANES (default: every lane)."""
        self.engine.migrate()
        if execute:
            workflow.bind(self.executor, self.sweep)
            self.engine.launch(lanes)
            DBOS.apply_schedules(
                [
                    {
                        "schedule_name": "keel-sweep",
                        "workflow_fn": workflow.sweep,
                        "schedule": "*/30 * * * * *",
                    }
                ]
            )

    def stop(self) -> None:
        executing = self.engine.executing
        self.engine.shutdown()
        self.tracing.shutdown()
        if executing:  # only the executing fabric owns the process's workflow binding
            workflow.bind(None)
        self.notifier.close()

    # --- submit -----------------------------------------------------------------------------

    def submit(
        self,
        principal: Principal,
        agent: str,
        run_input: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        priority: int = 5,
        lane: str | None = None,
        deadline: datetime | None = None,
        parent_run_id: str | None = None,
        prompt: str | None = None,
        conversation_id: str | None = None,
        turn_id: str | None = None,
        after_run_id: str | None = None,
    ) -> RunView:
        """Create a run and queue it (atomically). The same IDEMPOTENCY_KEY for the same
        tenant returns the first run; with a different request it is `IdempotencyMismatch`.
        With AFTER_RUN_ID the run waits until that run has ended (queued turns)."""
        if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
            raise InvalidInput(
                f"priority must be {MIN_PRIORITY}–{MAX_PRIORITY} (1 runs first)", field="priority"
            )
        loaded = self.catalog.get(agent)
        lane = lane or Lane.INTERACTIVE
        if lane not in {lane_.value for lane_ in Lane}:
            raise InvalidInput(f"unknown lane {lane!r}; use interactive or batch", field="lane")
        if lane == Lane.BATCH and "batch" not in loaded.spec.runners:
            raise InvalidInput(f"agent {agent} does not declare the batch runner", field="lane")
        if deadline is not None and deadline <= utcnow():
            raise InvalidInput("deadline is in the past", field="deadline")
        digest = request_hash(agent, dict(run_input), prompt, conversation_id)
        if idempotency_key is not None:
            existing = self._by_key(principal.tenant_id, idempotency_key, digest)
            if existing is not None:
                return existing
        prepared = self.catalog.prepare(
            agent,
            run_input,
            prompt=prompt,
            user_id=principal.user_id,
            router=self.extensions.prompt_router,
        )
        try:
            with self.db.transaction(lock=True) as s:
                run = self.insert_run(
                    s, principal, prepared, idempotency_key=idempotency_key, digest=digest,
                    priority=priority, lane=lane, deadline=deadline, parent_run_id=parent_run_id,
                    conversation_id=conversation_id, turn_id=turn_id, after_run_id=after_run_id,
                )  # fmt: skip
                run_id = run.id
                view = RunView.of(run)
        except IntegrityError:
            if idempotency_key is None:
                raise
            existing = self._by_key(principal.tenant_id, idempotency_key, digest)
            if existing is None:
                raise
            return existing
        self.notifier.published(run_id)
        return view

    def insert_run(
        self,
        s: Session,
        principal: Principal,
        prepared: PreparedRun,
        *,
        idempotency_key: str | None,
        digest: str,
        priority: int,
        lane: str,
        deadline: datetime | None,
        parent_run_id: str | None,
        conversation_id: str | None,
        turn_id: str | None,
        after_run_id: str | None,
    ) -> Run:
        """Insert a queued run and enqueue it, inside the caller's transaction S (which must
        hold the write lock: `db.transaction(lock=True)`). Call `notifier.published(run.id)`
        after it commits."""
        run_id = new_id("run")
        waiting = False
        if after_run_id is not None:
            before = s.scalars(select(Run).where(Run.id == after_run_id).with_for_update()).first()
            if before is None or before.tenant_id != principal.tenant_id:
                raise NotFound("run", after_run_id)
            waiting = not is_terminal(before.status)
        run = Run(
            id=run_id,
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            principal=principal.model_dump(mode="json"),
            agent=prepared.agent,
            spec_version=prepared.spec_version,
            prompt_name=prepared.prompt_name,
            prompt_version=prepared.prompt_version,
            model=prepared.model,
            input=prepared.input,
            status=RunStatus.QUEUED,
            idempotency_key=idempotency_key,
            request_hash=digest,
            priority=priority,
            lane=lane,
            deadline=deadline,
            parent_run_id=parent_run_id,
            conversation_id=conversation_id,
            turn_id=turn_id,
            after_run_id=after_run_id,
            instructions=prepared.instructions,
            user_prompt=prepared.user_prompt,
            trace_context=current_trace_context(),
            workflow_id=None if waiting else segment_workflow_id(run_id, 0),
            created_at=utcnow(),
        )
        s.add(run)
        s.flush()
        events.append(
            s, run, EventType.RUN_QUEUED,
            {"status": "queued", "agent": prepared.agent, "model": prepared.model,
             "prompt": f"{prepared.prompt_name}@{prepared.prompt_version}",
             "prompt_routed": prepared.prompt_routed,
             "lane": lane, "after_run_id": after_run_id if waiting else None},
        )  # fmt: skip
        if not waiting:
            self.engine.enqueue(
                s, run_id=run_id, segment=0, lane=lane, priority=priority,
                tenant_id=principal.tenant_id, workflow_id=segment_workflow_id(run_id, 0),
            )  # fmt: skip
        self.notifier.in_transaction(s, run_id)
        return run

    def _by_key(self, tenant_id: str, key: str, digest: str) -> RunView | None:
        with self.db.transaction() as s:
            run = s.scalars(
                select(Run).where(Run.tenant_id == tenant_id, Run.idempotency_key == key)
            ).first()
            if run is None:
                return None
            if run.request_hash != digest:
                raise IdempotencyMismatch(
                    f"Idempotency-Key {key!r} was used for a different request (run {run.id})"
                )
            return RunView.of(run)

    # --- reading ----------------------------------------------------------------------------

    def get(self, tenant_id: str, run_id: str) -> RunView:
        return self.store.get(tenant_id, run_id)

    def list_runs(self, tenant_id: str, **filters: Any) -> list[RunView]:
        return self.store.list_runs(tenant_id, **filters)

    def events(self, tenant_id: str, run_id: str, after: int = 0) -> list[Event]:
        return self.store.events(tenant_id, run_id, after)

    async def follow(
        self, tenant_id: str, run_id: str, after: int = 0, *, poll_seconds: float = 1.0
    ) -> AsyncIterator[Event]:
        """Every event after AFTER, live, until the run ends (a terminal event was sent)."""
        last = after
        async with self.notifier.listen(run_id) as listener:
            while True:
                batch = await asyncio.to_thread(self.store.events, tenant_id, run_id, last)
                for event in batch:
                    yield event
                    last = event.seq
                    if event.type in TERMINAL_EVENTS:
                        return
                if not batch:
                    await listener.wait(poll_seconds)

    async def wait(self, tenant_id: str, run_id: str, *, timeout: float | None = None) -> RunView:
        """The run once it has ended or is waiting for approval (TimeoutError after TIMEOUT)."""

        async def until_settled() -> RunView:
            async with self.notifier.listen(run_id) as listener:
                while True:
                    status = await asyncio.to_thread(self.store.status, tenant_id, run_id)
                    if is_terminal(status) or status == RunStatus.WAITING_APPROVAL:
                        return await asyncio.to_thread(self.store.get, tenant_id, run_id)
                    await listener.wait(1.0)

        return await asyncio.wait_for(until_settled(), timeout)

    # --- cancel and re-drive ----------------------------------------------------------------

    def cancel(self, tenant_id: str, run_id: str, actor: str) -> RunView:
        """Stop the run; the partial output and the usage so far are kept. Cancelling a
        cancelled run is a no-op; cancelling another finished run is a `Conflict`."""
        workflow_id: str | None = None
        with self.store.write(run_id) as tx:
            run = tx.run
            if run.tenant_id != tenant_id:
                raise NotFound("run", run_id)
            if run.status == RunStatus.CANCELLED:
                return RunView.of(run)
            if is_terminal(run.status):
                raise Conflict(f"run {run_id} already ended ({run.status})")
            partial = partial_output(tx)
            if partial:
                run.output = {"type": "text", "text": partial, "partial": True}
            for pending in approvals.list_for(
                tx.session, tenant_id, status=ApprovalStatus.PENDING, run_id=run_id
            ):
                approvals.decide(
                    approvals.lock(tx.session, tenant_id, pending.id),
                    ApprovalStatus.REJECTED,
                    SYSTEM_ACTOR,
                    "run cancelled",
                )
            tx.transition(RunStatus.CANCELLED, {"by": actor, "usage": run.usage})
            self.activities._finish_turn(tx)
            self.activities._release_successors(tx)
            workflow_id = run.workflow_id
        if workflow_id is not None:
            self.engine.cancel(workflow_id)
        self.activities.finished(run_id)
        return self.store.get(tenant_id, run_id)

    def redrive(self, tenant_id: str, run_id: str, actor: str) -> RunView:
        """Re-run a failed (or timed-out) run from the step that failed, reusing every step
        that completed: no finished model call is paid for again."""
        view = self.store.get(tenant_id, run_id)
        if view.status not in REDRIVABLE:
            raise Conflict(
                f"run {run_id} is {view.status}; only failed or timed-out runs can be re-driven"
            )
        with self.db.transaction() as s:
            old_workflow = s.get(Run, run_id).workflow_id  # type: ignore[union-attr]
        if old_workflow is None:
            raise Conflict(f"run {run_id} never started; nothing to re-drive")
        start_step, step_name = self._redrive_point(old_workflow, view.status)
        with self.store.write(run_id) as tx:
            if tx.run.status not in REDRIVABLE:
                raise Conflict(f"run {run_id} is {tx.run.status}")
            tx.run.redrives += 1
            tx.run.error = None
            tx.transition(RunStatus.QUEUED, {"redrive": tx.run.redrives})
            tx.event(
                EventType.RUN_REDRIVEN, {"by": actor, "from_step": step_name, "step_id": start_step}
            )
        try:
            new_workflow = self.engine.fork(old_workflow, start_step, view.lane, tenant_id)
        except Exception as exc:
            self.activities.end(
                run_id,
                None,
                view.status,
                {"type": "RedriveFailed", "message": str(exc), "step": step_name},
            )
            raise
        with self.store.write(run_id) as tx:
            tx.run.workflow_id = new_workflow
        return self.store.get(tenant_id, run_id)

    def _redrive_point(self, workflow_id: str, status: str) -> tuple[int, str]:
        steps = self.engine.steps(workflow_id)
        if status == RunStatus.TIMED_OUT:
            # The run's clock is a recorded step: restart from it, or the deadline has passed.
            for step in steps:
                if str(step["function_name"]).endswith("run_start_time"):
                    return int(step["function_id"]), str(step["function_name"])
        for step in steps:
            if step.get("error") is not None:
                return int(step["function_id"]), str(step["function_name"])
        last = steps[-1]
        return int(last["function_id"]), str(last["function_name"])

    # --- approvals --------------------------------------------------------------------------

    def approvals(
        self, tenant_id: str, *, status: str | None = None, run_id: str | None = None
    ) -> list[ApprovalView]:
        with self.db.transaction() as s:
            return approvals.list_for(s, tenant_id, status=status, run_id=run_id)

    def get_approval(self, tenant_id: str, approval_id: str) -> ApprovalView:
        with self.db.transaction() as s:
            return ApprovalView.of(approvals.lock(s, tenant_id, approval_id))

    def approve(self, tenant_id: str, approval_id: str, actor: str, note: str = "") -> ApprovalView:
        return self._resolve(tenant_id, approval_id, ApprovalStatus.APPROVED, actor, note)

    def reject(self, tenant_id: str, approval_id: str, actor: str, note: str = "") -> ApprovalView:
        return self._resolve(tenant_id, approval_id, ApprovalStatus.REJECTED, actor, note)

    def _resolve(
        self, tenant_id: str | None, approval_id: str, status: ApprovalStatus, actor: str, note: str
    ) -> ApprovalView:
        with self.db.transaction() as s:
            run_id = approvals.lock(s, tenant_id, approval_id).run_id
        with self.store.write(run_id) as tx:
            row = approvals.lock(tx.session, tenant_id, approval_id)
            run = tx.run
            if run.status != RunStatus.WAITING_APPROVAL and row.status == ApprovalStatus.PENDING:
                raise Conflict(
                    f"run {run_id} is {run.status}; its approvals can no longer be decided"
                )
            approvals.decide(row, status, actor, note)
            for listener in self.extensions.on_approval:
                listener(tx.session, ApprovalView.of(row))
            tx.event(
                EventType.APPROVAL_RESOLVED,
                {
                    "approval_id": row.id,
                    "tool": row.tool,
                    "decision": str(status),
                    "by": actor,
                    "note": note,
                },
            )
            if approvals.pending_in_segment(tx.session, run_id, row.segment) == 0:
                run.segment = row.segment + 1
                run.workflow_id = segment_workflow_id(run_id, run.segment)
                tx.transition(RunStatus.QUEUED, {"segment": run.segment})
                self.engine.enqueue(
                    tx.session, run_id=run_id, segment=run.segment, lane=run.lane,
                    priority=run.priority, tenant_id=run.tenant_id, workflow_id=run.workflow_id,
                )  # fmt: skip
            view = ApprovalView.of(row)
        return view

    def expire_approvals(self, now: datetime | None = None) -> int:
        """Reject every approval past its expiry (the sweep does this every 30 s)."""
        with self.db.transaction() as s:
            overdue = approvals.expired_ids(s, now or utcnow())
        expired = 0
        for approval_id in overdue:
            try:
                self._resolve(None, approval_id, ApprovalStatus.EXPIRED, SYSTEM_ACTOR, "expired")
                expired += 1
            except (Conflict, NotFound):
                continue
        return expired

    def sweep(self) -> None:
        self.expire_approvals()
        self.reconcile()
        self.purge_refused()
        for job in self.extensions.periodic:
            try:
                job()
            except Exception:
                log.exception("periodic job %r failed", job)

    def purge_refused(
        self, now: datetime | None = None, grace_seconds: float = 60.0, limit: int = 200
    ) -> int:
        """Delete the DBOS workflow of every run that ended `blocked`: its step checkpoints
        hold the model's refused answer, which must not outlive the refusal. A blocked run is
        terminal (never re-driven), so nothing needs them; `workflow_id` None marks it done.
        GRACE_SECONDS lets the workflow finish returning after its last step."""
        cutoff = (now or utcnow()) - timedelta(seconds=grace_seconds)
        with self.db.transaction() as s:
            rows = s.execute(
                select(Run.id, Run.workflow_id)
                .where(
                    Run.status == RunStatus.BLOCKED,
                    Run.workflow_id.is_not(None),
                    Run.finished_at < cutoff,
                )
                .limit(limit)
            ).all()
        purged = 0
        for rid, wid in rows:
            if self.engine.status(str(wid)) in ("ENQUEUED", "PENDING"):
                continue  # still returning: next sweep
            self.engine.delete(str(wid))
            with self.db.transaction() as s:
                s.execute(update(Run).where(Run.id == rid).values(workflow_id=None))
            purged += 1
        return purged

    def reconcile(self, limit: int = 200) -> int:
        """End runs whose workflow ended in DBOS without ending the run (cancelled by a DBOS
        timeout, or out of recovery attempts): nothing may stay `running` forever."""
        with self.db.transaction() as s:
            rows = s.execute(
                select(Run.id, Run.workflow_id)
                .where(
                    Run.status.in_([RunStatus.RUNNING, RunStatus.QUEUED]),
                    Run.workflow_id.is_not(None),
                )
                .limit(limit)
            ).all()
        fixed = 0
        for rid, wid in rows:
            state = self.engine.status(str(wid))
            if state in ("ERROR", "MAX_RECOVERY_ATTEMPTS_EXCEEDED", "CANCELLED"):
                error = {
                    "type": "WorkflowEnded",
                    "message": f"durable workflow ended {state}",
                    "step": "workflow",
                }
                self.activities.end(str(rid), None, RunStatus.FAILED, error)
                fixed += 1
        return fixed

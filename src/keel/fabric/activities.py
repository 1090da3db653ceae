"""Everything a run's workflow does to the world. Each public method here runs as one DBOS
step (the orchestration in `workflow.py` stays free of I/O), so after a crash a finished step
is never repeated and an interrupted one re-executes: events written inside a step carry a
key made of (workflow id, step id, index), so a re-executed step writes them once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from dbos import DBOS
from sqlalchemy import func, insert, select

from keel.fabric import approvals
from keel.fabric.approvals import ApprovalRequest, ApprovalStatus
from keel.fabric.engine import DurableEngine, segment_workflow_id
from keel.fabric.events import EventType
from keel.fabric.runs import RunStore, RunTx, RunView
from keel.fabric.states import RunStatus, is_terminal
from keel.observability.cost import request_cost
from keel.settings import Settings
from keel.store.tables import Conversation, Run, Turn, UsageRecord
from keel.store.types import utcnow

PREVIEW_CHARS = 280
USAGE_INSERT = insert(UsageRecord)  # Core: no unit of work for an append-only row
log = logging.getLogger(__name__)


def step_key(index: int | str = 0) -> str | None:
    """A key unique to this point of this workflow execution, or None outside workflows."""
    workflow_id = DBOS.workflow_id
    if workflow_id is None:
        return None
    return f"{workflow_id}:{DBOS.step_id}:{index}"


def output_text(output: dict[str, Any] | None) -> str:
    if not output:
        return ""
    if output.get("type") == "text":
        return str(output.get("text", ""))
    return str(output.get("data", ""))


class Activities:
    def __init__(
        self,
        store: RunStore,
        engine: DurableEngine,
        settings: Settings,
        listeners: Sequence[Callable[[RunView], None]] = (),
    ) -> None:
        self.store = store
        self.engine = engine
        self.settings = settings
        self.listeners = list(listeners)

    def finished(self, run_id: str) -> None:
        """Tell the listeners a run ended (after its transaction committed). A step that
        re-executes after a crash may tell them twice: listeners key their work by run id."""
        if not self.listeners:
            return
        view = self.store.get_internal(run_id)
        for listener in self.listeners:
            try:
                listener(view)
            except Exception:
                log.exception("run-finished listener failed for %s", run_id)

    # --- segment start --------------------------------------------------------------------

    def start_segment(self, run_id: str, segment: int) -> dict[str, Any]:
        """Mark the run running and hand the workflow what it needs: the envelope, the message
        history to continue from and, after an approval round, the decisions."""
        with self.store.write(run_id) as tx:
            run = tx.run
            if is_terminal(run.status) or run.segment != segment:
                return {"skip": True, "status": run.status}
            expired = run.deadline is not None and run.deadline <= utcnow()
            if expired:
                reason = {"reason": "deadline passed before the run started"}
                tx.transition(RunStatus.TIMED_OUT, reason, key=step_key())
                self._finish_turn(tx)
                self._release_successors(tx)
                start: dict[str, Any] = {"skip": True, "status": run.status}
            else:
                start = self._start(tx, segment)
        if expired:
            self.finished(run_id)
        return start

    def _start(self, tx: RunTx, segment: int) -> dict[str, Any]:
        run = tx.run
        if run.status == RunStatus.QUEUED:
            tx.transition(
                RunStatus.RUNNING,
                {"segment": segment, "worker": self.settings.worker_id},
                key=step_key(),
            )
        history: list[Any] | None = None
        decisions: list[dict[str, Any]] = []
        if segment > 0:
            history = list(run.messages or [])
            decisions = [
                {"tool_call_id": d.tool_call_id, "status": d.status, "note": d.note}
                for d in approvals.decisions(tx.session, run.id, segment - 1)
            ]
        elif run.conversation_id is not None:
            conversation = tx.session.get(Conversation, run.conversation_id)
            if conversation is not None:
                history = list((conversation.history or {}).get("messages", []))
        return {
            "skip": False,
            "agent": run.agent,
            "spec_version": run.spec_version,
            "tenant_id": run.tenant_id,
            "user_id": run.user_id,
            "model": run.model,
            "input": dict(run.input),
            "instructions": run.instructions or "",
            "user_prompt": run.user_prompt,
            "history": history,
            "decisions": decisions,
            "remaining": (run.deadline - utcnow()).total_seconds() if run.deadline else None,
            "prompt_name": run.prompt_name,
            "prompt_version": run.prompt_version,
            "trace_context": dict(run.trace_context or {}),
        }

    def resume_if_queued(self, run_id: str) -> None:
        """A re-driven (forked) workflow reuses the recorded start step, so it marks the run
        running here; idempotent, and a no-op for anything but a queued run."""
        workflow_id = DBOS.workflow_id
        with self.store.write(run_id) as tx:
            if tx.run.status == RunStatus.QUEUED:
                tx.transition(
                    RunStatus.RUNNING, {"redrive": tx.run.redrives}, key=f"{workflow_id}:resume"
                )

    # --- during the run -------------------------------------------------------------------

    def record_model_response(self, run_id: str, info: dict[str, Any], key: str) -> None:
        """A model response: the event, the run's running usage and a usage record, once per
        KEY. Called from workflow code (no step of its own): a replay or a re-drive fork passes
        the same key for the same model request — (segment, model request index) — and writes
        nothing twice."""
        cost = request_cost(
            info["model"], info["input_tokens"], info["output_tokens"], self.settings
        )
        text = str(info.pop("text", "") or "")
        # the text itself is delivered only by the `output` event, after run-time checks
        data = {**info, "text_chars": len(text), "cost_usd": cost.usd}
        with self.store.write(run_id) as tx:
            if tx.event(EventType.MODEL_RESPONSE, data, key=key) is None:
                return  # recorded before (a replay)
            run = tx.run
            if text:  # appended in SQL: the (deferred) text so far is never loaded
                run.partial_text = func.coalesce(Run.partial_text, "") + text
            usage = dict(run.usage or {})
            for field in ("input_tokens", "output_tokens"):
                usage[field] = int(usage.get(field, 0)) + int(info[field])
            usage["requests"] = int(usage.get("requests", 0)) + 1
            usage["tool_calls"] = int(usage.get("tool_calls", 0)) + len(info.get("tool_calls", []))
            run.usage = usage
            run.cost_usd = float(run.cost_usd or 0) + cost.usd
            record = {
                "run_id": run_id, "key": key, "tenant_id": run.tenant_id,
                "user_id": run.user_id, "agent": run.agent, "prompt_name": run.prompt_name,
                "prompt_version": run.prompt_version, "model": info["model"],
                "input_tokens": info["input_tokens"], "output_tokens": info["output_tokens"],
                "cost_usd": cost.usd,
            }  # fmt: skip
            tx.session.connection().execute(USAGE_INSERT, record)

    def record_event(
        self, run_id: str, type_: str, data: dict[str, Any], index: int | str = 0
    ) -> int | None:
        """An event written from inside a step (e.g. a tool call), once per step execution."""
        with self.store.write(run_id) as tx:
            return tx.event(type_, data, key=step_key(index))

    # --- segment end ----------------------------------------------------------------------

    def suspend(
        self, run_id: str, segment: int, messages: list[Any], requests: list[dict[str, Any]]
    ) -> list[str]:
        """The agent asked for approvals: record them, keep the history, end the segment."""
        ttl = timedelta(seconds=self.settings.approval_ttl_seconds)
        ids: list[str] = []
        with self.store.write(run_id) as tx:
            run = tx.run
            if not _current(run, segment):
                return ids
            for i, raw in enumerate(requests):
                view = approvals.create(
                    tx.session,
                    run_id=run_id,
                    tenant_id=run.tenant_id,
                    segment=segment,
                    request=ApprovalRequest(**raw),
                    requested_by=run.user_id,
                    ttl=ttl,
                )
                ids.append(view.id)
                tx.event(
                    EventType.APPROVAL_REQUESTED,
                    {"approval_id": view.id, "tool": view.tool, "args": view.args,
                     "reason": view.reason, "expires_at": view.expires_at.isoformat()},
                    key=step_key(f"a{i}"),
                )  # fmt: skip
            run.messages = messages
            tx.transition(RunStatus.WAITING_APPROVAL, {"approvals": ids}, key=step_key("w"))
        return ids

    def succeed(
        self, run_id: str, segment: int, output: dict[str, Any], messages: list[Any]
    ) -> str:
        with self.store.write(run_id) as tx:
            run = tx.run
            if not _current(run, segment):
                return run.status
            run.output = output
            run.messages = messages
            tx.event(EventType.OUTPUT, output, key=step_key("o"))
            tx.transition(
                RunStatus.SUCCEEDED, {"usage": run.usage, "cost_usd": run.cost_usd}, key=step_key()
            )
            self._finish_turn(tx, messages)
            self._release_successors(tx)
            status = run.status
        self.finished(run_id)
        return status

    def end(
        self,
        run_id: str,
        segment: int | None,
        status: str,
        error: dict[str, Any] | None,
        messages: list[Any] | None = None,
    ) -> str:
        """End the run FAILED, TIMED_OUT, BLOCKED or CANCELLED, keeping the partial output.
        SEGMENT None ends it whatever segment it is in (an operation, not a workflow)."""
        with self.store.write(run_id) as tx:
            run = tx.run
            if is_terminal(run.status) or (segment is not None and not _current(run, segment)):
                return run.status
            if status == RunStatus.BLOCKED:
                # a refused output is never delivered, not even as a partial answer, and no
                # copy of it stays behind: neither the streamed text nor the message history
                run.partial_text = None
                messages = None
            partial = partial_output(tx)
            if partial:
                run.output = {"type": "text", "text": partial, "partial": True}
            if messages is not None:
                run.messages = messages
            run.error = error
            tx.transition(RunStatus(status), {"error": error, "usage": run.usage}, key=step_key())
            self._finish_turn(tx)
            self._release_successors(tx)
            ended = run.status
        self.finished(run_id)
        return ended

    # --- shared by the operations (cancel) -------------------------------------------------

    def _finish_turn(self, tx: RunTx, messages: list[Any] | None = None) -> None:
        run = tx.run
        if run.turn_id is None:
            return
        turn = tx.session.get(Turn, run.turn_id)
        if turn is not None:
            turn.status = run.status
            turn.output = run.output
            turn.completed_at = utcnow()
        conversation = (
            tx.session.get(Conversation, run.conversation_id) if run.conversation_id else None
        )
        if conversation is not None:
            if messages is not None and run.status == RunStatus.SUCCEEDED:
                conversation.history = {"messages": messages}
            preview = output_text(run.output)
            if preview:
                conversation.preview = preview[:PREVIEW_CHARS]
            conversation.updated_at = utcnow()

    def _release_successors(self, tx: RunTx) -> None:
        """Enqueue the runs that were waiting for this one to end (queued turns of the same
        conversation), in this transaction."""
        waiting = tx.session.scalars(
            select(Run)
            .where(Run.after_run_id == tx.run.id, Run.workflow_id.is_(None))
            .order_by(Run.created_at)
        ).all()
        for successor in waiting:
            if successor.status != RunStatus.QUEUED:
                continue
            successor.workflow_id = segment_workflow_id(successor.id, 0)
            self.engine.enqueue(
                tx.session,
                run_id=successor.id,
                segment=0,
                lane=successor.lane,
                priority=successor.priority,
                tenant_id=successor.tenant_id,
                workflow_id=successor.workflow_id,
            )


def _current(run: Run, segment: int) -> bool:
    """Whether a step of SEGMENT may still change RUN: a step re-executed after a crash must
    not act on a run that has since ended or moved on to a later segment."""
    return run.segment == segment and run.status in (RunStatus.RUNNING, RunStatus.QUEUED)


def partial_output(tx: RunTx) -> str:
    """The text the model produced so far (its responses' text parts, in order)."""
    return tx.run.partial_text or ""


__all__ = ["Activities", "ApprovalStatus", "output_text", "partial_output", "step_key"]

"""The durable orchestration of one run segment (Temporal's workflows.py): deterministic, no
I/O of its own — every side effect is a step in `activities.py`, a model request (a
`DBOSDurability` step) or a tool execution (a `RunRecorder` step).

    keel.start → [model request → keel.model_event → tool.<name> …]* →
        keel.succeed | keel.suspend (approvals) | keel.end (failed, timed out)

The workflow functions are registered with DBOS when this module is imported (DBOS needs them
registered before launch, to recover runs); they find the process's `SegmentExecutor` through
`bind()`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dbos import DBOS
from dbos._error import (
    DBOSMaxStepRetriesExceeded,
    DBOSWorkflowCancelledError,
    DBOSWorkflowConflictIDError,
)
from pydantic import BaseModel
from pydantic_ai import Agent, DeferredToolRequests, DeferredToolResults, ToolApproved, ToolDenied
from pydantic_ai.durable_exec.dbos import DBOSDurability
from pydantic_ai.exceptions import RunTimedOut
from pydantic_ai.messages import ModelMessage, ModelMessagesTypeAdapter

from keel.agents.builder import build_agent
from keel.agents.deps import RunDeps
from keel.agents.locale import normalise_locale
from keel.fabric.activities import Activities
from keel.fabric.approvals import ApprovalStatus
from keel.fabric.catalog import AgentCatalog
from keel.fabric.engine import RUN_WORKFLOW, SWEEP_WORKFLOW, segment_workflow_id
from keel.fabric.events import EventType
from keel.fabric.extensions import FabricExtensions
from keel.fabric.recorder import RunRecorder, retry_model_error
from keel.observability.tracing import Tracing

CANCELLATION = (DBOSWorkflowCancelledError, DBOSWorkflowConflictIDError, asyncio.CancelledError)


def dump_messages(messages: list[ModelMessage]) -> list[Any]:
    return list(ModelMessagesTypeAdapter.dump_python(messages, mode="json"))


def output_json(output: Any) -> dict[str, Any]:
    if isinstance(output, BaseModel):
        return {"type": "object", "data": output.model_dump(mode="json")}
    return {"type": "text", "text": str(output)}


def describe_error(exc: BaseException, step: str) -> dict[str, Any]:
    """The error a failed run records: its type, message (with the last underlying error when
    retries ran out) and the step that failed."""
    message = str(exc)
    if isinstance(exc, DBOSMaxStepRetriesExceeded) and exc.errors:
        last = exc.errors[-1]
        message = f"{message}; last error: {type(last).__name__}: {last}"
    return {"type": type(exc).__name__, "message": message[:2000], "step": step or "workflow"}


def deferred_results(decisions: list[dict[str, Any]]) -> DeferredToolResults | None:
    if not decisions:
        return None
    approvals: dict[str, bool | ToolApproved | ToolDenied] = {}
    for d in decisions:
        if d["status"] == ApprovalStatus.APPROVED:
            approvals[d["tool_call_id"]] = True
        else:
            why = (
                "expired without a decision"
                if d["status"] == ApprovalStatus.EXPIRED
                else "rejected"
            )
            note = f": {d['note']}" if d.get("note") else ""
            approvals[d["tool_call_id"]] = ToolDenied(f"A human reviewer {why}{note}.")
    return DeferredToolResults(approvals=approvals)


@dataclass
class AgentPool:
    """One durable Pydantic AI agent per deployed agent, built on first use. Capabilities, outer
    first: the extensions' (the tool gate), the recorder (tool calls as durable steps, events),
    then DBOS durability (model requests as steps)."""

    catalog: AgentCatalog
    recorder: RunRecorder
    extensions: FabricExtensions
    tracing: Tracing

    def __post_init__(self) -> None:
        self._agents: dict[str, Agent[RunDeps, Any]] = {}

    def get(self, name: str) -> Agent[RunDeps, Any]:
        if name not in self._agents:
            loaded = self.catalog.get(name)
            model_steps: Any = {
                "retries_allowed": loaded.spec.retries.model > 0,
                "max_attempts": loaded.spec.retries.model + 1,
                "interval_seconds": 1.0,
                "backoff_rate": 2.0,
                "should_retry": retry_model_error,
            }
            instrumentation = self.tracing.capability()
            traced = [instrumentation] if instrumentation is not None else []
            durability = DBOSDurability[RunDeps](
                model_step_config=model_steps, parallel_execution_mode="sequential"
            )
            self._agents[name] = build_agent(
                loaded,
                self.catalog.settings,
                capabilities=[
                    *traced,
                    *self.extensions.capabilities_for(loaded),
                    self.recorder,
                    durability,
                ],
                allow_deferred=True,
            )
        return self._agents[name]


class SegmentExecutor:
    def __init__(
        self,
        activities: Activities,
        catalog: AgentCatalog,
        recorder: RunRecorder,
        extensions: FabricExtensions,
        tracing: Tracing,
    ) -> None:
        self.activities = activities
        self.catalog = catalog
        self.recorder = recorder
        self.extensions = extensions
        self.tracing = tracing
        self.agents = AgentPool(catalog, recorder, extensions, tracing)

    def check_output(
        self, start: dict[str, Any], run_id: str, output: dict[str, Any]
    ) -> dict[str, Any]:
        """The run-time checks (run as a step: the verdict is recorded, never recomputed)."""
        keys = ("tenant_id", "user_id", "prompt_name", "prompt_version", "model")
        meta = {k: start.get(k) for k in keys} | {"run_id": run_id}
        outcome = self.extensions.check(
            self.catalog.get(start["agent"]), start["input"], output, meta
        )
        verdict = {
            "blocked": outcome.blocked,
            "reasons": list(outcome.reasons),
            "scores": outcome.scores,
        }
        self.activities.record_event(run_id, EventType.CHECK, verdict)
        return verdict

    async def execute(self, run_id: str, segment: int) -> str:
        act = self.activities
        start: dict[str, Any] = await DBOS.run_step_async(
            {"name": "keel.start"}, act.start_segment, run_id, segment
        )
        if start["skip"]:
            return str(start["status"])
        if DBOS.workflow_id != segment_workflow_id(run_id, segment):
            await asyncio.to_thread(act.resume_if_queued, run_id)
        loaded = self.catalog.get(start["agent"])
        timeout = float(loaded.spec.timeout_seconds)
        if start.get("remaining") is not None:
            timeout = max(0.001, min(timeout, float(start["remaining"])))
        deps = RunDeps(
            run_id=run_id,
            tenant_id=start["tenant_id"],
            user_id=start["user_id"],
            agent=start["agent"],
            segment=segment,
            locale=normalise_locale(start["input"].get("locale")),
            data_dir=self.catalog.settings.home,
        )
        history = (
            ModelMessagesTypeAdapter.validate_python(start["history"]) if start["history"] else None
        )
        attributes = {
            "keel.run_id": run_id,
            "keel.tenant_id": start["tenant_id"],
            "keel.user_id": start["user_id"],
            "keel.agent": start["agent"],
            "keel.prompt": start["prompt_name"],
            "keel.prompt_version": start["prompt_version"],
            "keel.segment": segment,
            "keel.model": start["model"],
        }
        try:
            with self.tracing.run_span(attributes, start.get("trace_context")):
                result = await self.agents.get(start["agent"]).run(
                    start["user_prompt"] if segment == 0 else None,
                    message_history=history,
                    deferred_tool_results=deferred_results(start["decisions"]),
                    instructions=start["instructions"],
                    model=start["model"],
                    deps=deps,
                    timeout=timeout,
                )
        except CANCELLATION:
            raise
        except RunTimedOut as exc:
            error = {
                "type": "RunTimedOut",
                "message": f"no result within {timeout:g} s",
                "step": self.recorder.current_step(run_id),
            }
            messages = dump_messages(exc.all_messages())
            return str(
                await DBOS.run_step_async(
                    {"name": "keel.end"}, act.end, run_id, segment, "timed_out", error, messages
                )
            )
        except Exception as exc:
            error = describe_error(exc, self.recorder.current_step(run_id))
            return str(
                await DBOS.run_step_async(
                    {"name": "keel.end"}, act.end, run_id, segment, "failed", error, None
                )
            )
        finally:
            self.recorder.forget(run_id)
        messages = dump_messages(result.all_messages())
        output = result.output
        if isinstance(output, DeferredToolRequests):
            if output.calls:
                error = {
                    "type": "CallDeferred",
                    "message": "external deferred tool calls are not supported",
                    "step": "tool",
                }
                return str(
                    await DBOS.run_step_async(
                        {"name": "keel.end"}, act.end, run_id, segment, "failed", error, messages
                    )
                )
            requests = [
                {
                    "tool_call_id": call.tool_call_id,
                    "tool": call.tool_name,
                    "args": call.args_as_dict(),
                    "reason": str((output.metadata.get(call.tool_call_id) or {}).get("reason", "")),
                }
                for call in output.approvals
            ]
            await DBOS.run_step_async(
                {"name": "keel.suspend"}, act.suspend, run_id, segment, messages, requests
            )
            return "waiting_approval"
        final = output_json(output)
        if self.extensions.output_checks:
            verdict = await DBOS.run_step_async(
                {"name": "keel.check"}, self.check_output, start, run_id, final
            )
            if verdict["blocked"]:
                error = {"type": "Blocked", "message": "; ".join(verdict["reasons"]),
                         "step": "check", "reasons": verdict["reasons"]}  # fmt: skip
                ended = await DBOS.run_step_async(
                    {"name": "keel.end"}, act.end, run_id, segment, "blocked", error, messages
                )
                return str(ended)
        done = await DBOS.run_step_async(
            {"name": "keel.succeed"}, act.succeed, run_id, segment, final, messages
        )
        return str(done)


_executor: SegmentExecutor | None = None
_sweep: Any = None


def bind(executor: SegmentExecutor | None, sweep: Any = None) -> None:
    """Give the registered workflows this process's executor (None when shutting down)."""
    global _executor, _sweep
    _executor = executor
    _sweep = sweep


def _current() -> SegmentExecutor:
    if _executor is None:
        raise RuntimeError("no Keel fabric is running in this process")
    return _executor


@DBOS.workflow(name=RUN_WORKFLOW)
async def run_segment(run_id: str, segment: int) -> str:
    return await _current().execute(run_id, segment)


@DBOS.workflow(name=SWEEP_WORKFLOW)
async def sweep(scheduled: datetime, context: Any) -> None:
    """Expire overdue approvals and reconcile runs whose workflow ended without telling us."""
    if _sweep is not None:
        await DBOS.run_step_async({"name": "keel.sweep"}, _sweep)

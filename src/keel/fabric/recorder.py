"""`RunRecorder`: the capability that makes a Pydantic AI run a Keel run.

- every model response becomes a `model.response` event with its usage and cost, and a usage
  record — written from workflow code under a key (segment, model request index), so a replay
  or a re-drive fork writes nothing twice, without a DBOS step of its own;
- every tool execution becomes a DBOS step named `tool.<name>`, with `tool.requested` /
  `tool.result` events and the call's idempotency key (`run id:tool call id`) in its context,
  retried with backoff on errors that are not Pydantic AI control flow;
- the label of the step in progress is kept per run, so a failure says which step failed.

Outside a DBOS workflow (an inline run, an eval case) the same code runs without steps.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from dbos import DBOS
from pydantic_ai import RunContext
from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.capabilities.abstract import WrapModelRequestHandler, WrapToolExecuteHandler
from pydantic_ai.exceptions import (
    ApprovalRequired,
    CallDeferred,
    ModelConnectionError,
    ModelRateLimitError,
    ModelRetry,
    ModelServerError,
    ModelUnavailableError,
    SkipToolExecution,
    ToolFailed,
    ToolFailedError,
    ToolRetryError,
)
from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models import ModelRequestContext
from pydantic_ai.tools import ToolDefinition
from pydantic_core import to_jsonable_python

from keel.agents.deps import RunDeps
from keel.fabric.activities import Activities
from keel.fabric.events import EventType

PREVIEW_CHARS = 2000
# A tool's ModelRetry / ToolFailed reach the step already wrapped (ToolRetryError /
# ToolFailedError): answers for the model, not failures to retry.
CONTROL_FLOW = (
    ModelRetry,
    ApprovalRequired,
    CallDeferred,
    ToolFailed,
    SkipToolExecution,
    ToolRetryError,
    ToolFailedError,
)
TRANSIENT_MODEL_ERRORS = (
    ModelRateLimitError,
    ModelUnavailableError,
    ModelServerError,
    ModelConnectionError,
)


def in_workflow() -> bool:
    """Inside workflow code (not inside a step), where durable steps can start."""
    return DBOS.workflow_id is not None and DBOS.step_id is None


def retry_tool_error(error: BaseException) -> bool:
    return not isinstance(error, CONTROL_FLOW)


def retry_model_error(error: BaseException) -> bool:
    return isinstance(error, TRANSIENT_MODEL_ERRORS)


async def durable(name: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run blocking FN as a DBOS step inside a workflow, in a thread otherwise."""
    if in_workflow():
        return await DBOS.run_step_async({"name": name}, fn, *args)
    return await asyncio.to_thread(fn, *args)


def preview(value: Any) -> str:
    text = (
        value
        if isinstance(value, str)
        else json.dumps(to_jsonable_python(value, fallback=str), ensure_ascii=False)
    )
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "…"


def response_info(response: ModelResponse) -> dict[str, Any]:
    return {
        "model": response.model_name or "",
        "text": "".join(p.content for p in response.parts if isinstance(p, TextPart)),
        "tool_calls": [
            {"tool": p.tool_name, "tool_call_id": p.tool_call_id, "args": p.args_as_dict()}
            for p in response.parts
            if isinstance(p, ToolCallPart)
        ],
        "input_tokens": response.usage.input_tokens,
        "output_tokens": response.usage.output_tokens,
        "finish_reason": response.finish_reason,
    }


class RunRecorder(AbstractCapability[RunDeps]):
    def __init__(self, activities: Activities, *, tool_attempts: int = 3) -> None:
        self.activities = activities
        self.tool_attempts = tool_attempts
        self._current: dict[str, str] = {}

    def current_step(self, run_id: str) -> str:
        return self._current.get(run_id, "")

    def forget(self, run_id: str) -> None:
        self._current.pop(run_id, None)

    async def wrap_model_request(
        self,
        ctx: RunContext[RunDeps],
        *,
        request_context: ModelRequestContext,
        handler: WrapModelRequestHandler,
    ) -> ModelResponse:
        self._current[ctx.deps.run_id] = "model.request"
        return await handler(request_context)

    async def after_model_request(
        self,
        ctx: RunContext[RunDeps],
        *,
        request_context: ModelRequestContext,
        response: ModelResponse,
    ) -> ModelResponse:
        info = response_info(response)
        key = f"model:{ctx.deps.segment}:{ctx.run_step}"
        await asyncio.to_thread(self.activities.record_model_response, ctx.deps.run_id, info, key)
        return response

    async def wrap_tool_execute(
        self,
        ctx: RunContext[RunDeps],
        *,
        call: ToolCallPart,
        tool_def: ToolDefinition,
        args: Any,
        handler: WrapToolExecuteHandler,
    ) -> Any:
        run_id = ctx.deps.run_id
        record = self.activities.record_event
        key = ctx.deps.idempotency_key(call.tool_call_id)
        self._current[run_id] = f"tool.{call.tool_name}"

        async def execute() -> Any:
            requested = {"tool": call.tool_name, "tool_call_id": call.tool_call_id,
                         "args": to_jsonable_python(args, fallback=str), "idempotency_key": key}  # fmt: skip
            await asyncio.to_thread(record, run_id, EventType.TOOL_REQUESTED, requested, "req")
            try:
                result = await handler(args)
            except Exception as exc:
                outcome = {"tool": call.tool_name, "tool_call_id": call.tool_call_id, "ok": False,
                           "error": f"{type(exc).__name__}: {exc}"}  # fmt: skip
                await asyncio.to_thread(record, run_id, EventType.TOOL_RESULT, outcome, "res")
                raise
            outcome = {"tool": call.tool_name, "tool_call_id": call.tool_call_id, "ok": True,
                       "result": preview(result)}  # fmt: skip
            await asyncio.to_thread(record, run_id, EventType.TOOL_RESULT, outcome, "res")
            return result

        if not in_workflow():
            return await execute()
        options: Any = {
            "name": f"tool.{call.tool_name}",
            "retries_allowed": self.tool_attempts > 1,
            "max_attempts": self.tool_attempts,
            "interval_seconds": 0.5,
            "backoff_rate": 2.0,
            "should_retry": retry_tool_error,
        }
        return await DBOS.run_step_async(options, execute)

"""The `CaseRunner` that executes eval cases as fabric runs.

Each case is submitted as a run of the agent with its prompt pinned to the version under
test (`prompt="3"`), on the batch lane, as the eval tenant, and awaited. An eval case thus
passes through exactly what a production run passes through — durable steps, the tool
gate, the run-time checks (a blocked output is a failed case) — and leaves a run behind
with its prompt version on its usage rows.

Waiting: when the worker executes in this process, a `RunCompletions` listener (registered
in the fabric's run-end listeners) resolves each case the moment its run ends; otherwise
the runner follows the run through `Fabric.wait`. Either way a run that stops for a human
approval is cancelled and recorded as a failed case: nobody approves tool calls of an eval.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from keel.errors import KeelError
from keel.evals.dataset import EvalCase
from keel.evals.runner import CaseOutput, PromptVersionRef

if TYPE_CHECKING:
    from keel.fabric.runs import RunView
    from keel.identity.principal import Principal

EVAL_TENANT = "eval"
EVAL_USER = "keel-eval"
EVAL_ACTOR = "keel-eval"
WAITING_APPROVAL = "waiting_approval"
_RECHECK_SECONDS = 5.0


class RunFabric(Protocol):
    """What the runner needs of `keel.fabric.service.Fabric`."""

    def submit(
        self,
        principal: Principal,
        agent: str,
        run_input: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        lane: str | None = None,
        prompt: str | None = None,
    ) -> RunView: ...

    def get(self, tenant_id: str, run_id: str) -> RunView: ...

    def cancel(self, tenant_id: str, run_id: str, actor: str) -> RunView: ...

    async def wait(
        self, tenant_id: str, run_id: str, *, timeout: float | None = None
    ) -> RunView: ...


class RunCompletions:
    """A run-end listener that wakes whoever awaits a run's end in this process.

    Register it in `FabricExtensions.on_finished`; it only resolves futures (quick, never
    raises), so it is safe on the worker's thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Future[RunView]]] = {}

    def __call__(self, view: RunView) -> None:
        with self._lock:
            entry = self._waiting.pop(view.id, None)
        if entry is None:
            return
        loop, future = entry

        def resolve() -> None:
            if not future.done():
                future.set_result(view)

        try:
            loop.call_soon_threadsafe(resolve)
        except RuntimeError:  # the waiter's loop has closed
            return

    def expect(self, run_id: str) -> asyncio.Future[RunView]:
        """A future for RUN_ID's end, on the running loop (call before checking its status)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[RunView] = loop.create_future()
        with self._lock:
            self._waiting[run_id] = (loop, future)
        return future

    def forget(self, run_id: str) -> None:
        with self._lock:
            self._waiting.pop(run_id, None)


def case_output(view: RunView) -> CaseOutput:
    """What a finished run produced, as the experiment scores it."""
    output: str | dict[str, Any] | None = None
    if view.output is not None and not view.output.get("partial"):
        output = view.output.get("data") if view.output.get("type") == "object" else None
        if output is None:
            output = str(view.output.get("text", ""))
    latency_ms = 0.0
    if view.started_at is not None and view.finished_at is not None:
        latency_ms = max(0.0, (view.finished_at - view.started_at).total_seconds() * 1000)
    tokens = int(view.usage.get("input_tokens", 0)) + int(view.usage.get("output_tokens", 0))
    error = None
    if view.status != "succeeded":
        detail = (view.error or {}).get("message", "")
        error = f"run {view.status}" + (f": {detail}" if detail else "")
    return CaseOutput(
        output=output if error is None else None,
        latency_ms=latency_ms,
        cost_usd=max(0.0, view.cost_usd),
        tokens=tokens,
        error=error,
        run_id=view.id,
    )


@dataclass
class FabricCaseRunner:
    """`runner(case, prompt)` → the `CaseOutput` of one fabric run of AGENT on the case inputs.

    `experiment` makes each submit idempotent within one experiment (a retried submit finds
    its run) while a new experiment runs every case again. `completions` is the process's
    `RunCompletions` when the worker runs here; None follows runs through `Fabric.wait`.
    """

    fabric: RunFabric
    agent: str
    principal: Principal
    experiment: str
    lane: str = "batch"
    timeout_s: float = 600.0
    completions: RunCompletions | None = None

    def idempotency_key(self, case: EvalCase, prompt: PromptVersionRef) -> str:
        case_key = case.id if len(case.id) <= 64 else hashlib.sha256(case.id.encode()).hexdigest()
        return f"eval:{self.experiment}:{prompt.version}:{case_key}"

    async def __call__(self, case: EvalCase, prompt: PromptVersionRef) -> CaseOutput:
        view = await asyncio.to_thread(
            self.fabric.submit,
            self.principal,
            self.agent,
            dict(case.inputs),
            idempotency_key=self.idempotency_key(case, prompt),
            lane=self.lane,
            prompt=str(prompt.version),
        )
        if view.prompt_version != prompt.version:
            raise RuntimeError(
                f"run {view.id} resolved prompt version {view.prompt_version}, not {prompt}"
            )
        try:
            done = await asyncio.wait_for(self._until_settled(view.id), self.timeout_s)
        except TimeoutError:
            await self._cancel(view.id)
            return CaseOutput(
                error=f"run {view.id} did not end within {self.timeout_s:g} s", run_id=view.id
            )
        if done.status == WAITING_APPROVAL:
            await self._cancel(view.id)
            return CaseOutput(
                error=f"run {view.id} stopped for a human approval; eval runs are never approved",
                run_id=view.id,
            )
        return case_output(done)

    async def _until_settled(self, run_id: str) -> RunView:
        tenant = self.principal.tenant_id
        if self.completions is None:
            return await self.fabric.wait(tenant, run_id)
        future = self.completions.expect(run_id)
        try:
            while True:
                view = await asyncio.to_thread(self.fabric.get, tenant, run_id)
                if view.terminal or view.status == WAITING_APPROVAL:
                    return view
                # the listener wakes us at the end; the re-check catches an approval stop
                done, _ = await asyncio.wait({future}, timeout=_RECHECK_SECONDS)
                if done:
                    return future.result()
        finally:
            self.completions.forget(run_id)

    async def _cancel(self, run_id: str) -> None:
        try:
            await asyncio.to_thread(
                self.fabric.cancel, self.principal.tenant_id, run_id, EVAL_ACTOR
            )
        except KeelError:  # already ended: nothing to cancel
            return

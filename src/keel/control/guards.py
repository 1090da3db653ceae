"""The control plane's guards around model requests and around a run's input and output.

- `BudgetGuard` (`before_model_request`): estimates the request, checks every budget in a
  durable step (`keel.budget`: its decision is recorded, a replay takes it), and above 90 %
  raises `BudgetExceeded` naming the budget — the run ends `failed` with that error, in its
  events and its API view. While throttled it records a `budget` event (the gate makes
  expensive tools wait for approval; policies see `context.throttled`). It does not switch the
  run to a cheaper model: a durable run's model is the string resolved when the run starts
  (DBOSDurability refuses a model instance swapped in by a hook), so that routing belongs at
  submit time.
- `InputGuard` (`before_run`): the `input` guardrails over the user's message. Decided at run
  time rather than at submit: every door into a run (API turns, batch items, eval cases,
  `keel run`) passes it, and the verdict is a run event and an audit entry an operator can
  see — a submit-time 422 would leave no trace. A blocking verdict ends the run `failed` with
  `InputBlocked` before any model request (nothing is spent); warnings are events.
- `OutputGuard` (`after_output_process`): `redact` guardrails of the `output` stage rewrite
  the answer before it is delivered; `OutputGuardrailCheck` (a fabric output check) blocks
  delivery for `block` guardrails and reports warnings as scores.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from dbos import DBOS
from pydantic import BaseModel
from pydantic_ai import RunContext
from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.models import ModelRequestContext

from keel.agents.deps import RunDeps
from keel.agents.loader import LoadedAgent
from keel.control.budgets import Tier, estimate_request
from keel.control.findings import GuardrailContext
from keel.control.gate import GUARDRAIL_EVENT, findings_event, in_workflow
from keel.control.guardrails import GuardrailResult
from keel.control.ledger import AuditKind
from keel.errors import BudgetExceeded, InvalidInput

if TYPE_CHECKING:
    from keel.control.plane import ControlPlane
    from keel.fabric.extensions import CheckOutcome

BUDGET_EVENT = "budget"


class InputBlocked(InvalidInput):
    """The user's input was refused by an input guardrail (reasons name the rules)."""

    code = "input_blocked"


async def durably(name: str, fn: Any, *args: Any) -> Any:
    """Run async FN as a DBOS step inside a workflow, directly outside one."""
    if in_workflow():
        return await DBOS.run_step_async({"name": name}, fn, *args)
    return await fn(*args)


def model_ref(request_context: ModelRequestContext) -> str:
    model = request_context.model
    name = str(getattr(model, "model_name", "") or "")
    system = str(getattr(model, "system", "") or "")
    if ":" in name or not system:
        return name
    return f"{system}:{name}"


class BudgetGuard(AbstractCapability[RunDeps]):
    """Budgets before every model request (see the module docstring)."""

    def __init__(self, plane: ControlPlane, loaded: LoadedAgent) -> None:
        self.plane = plane
        self.loaded = loaded

    async def before_model_request(
        self, ctx: RunContext[RunDeps], request_context: ModelRequestContext
    ) -> ModelRequestContext:
        deps = ctx.deps
        settings = request_context.model_settings or {}
        max_tokens = settings.get("max_tokens") if isinstance(settings, dict) else None
        tokens, usd = estimate_request(
            request_context.messages, model_ref(request_context), self.plane.settings,
            int(max_tokens) if isinstance(max_tokens, int) else None,
        )  # fmt: skip
        decided = await durably(
            "keel.budget", self._check, deps.run_id, deps.tenant_id, tokens, str(usd)
        )
        tier = Tier(decided["tier"])
        if tier is Tier.BLOCK:
            raise BudgetExceeded(decided["message"])
        return request_context

    async def _check(self, run_id: str, tenant_id: str, tokens: int, usd: str) -> dict[str, Any]:
        return await asyncio.to_thread(self._check_sync, run_id, tenant_id, tokens, Decimal(usd))

    def _check_sync(self, run_id: str, tenant_id: str, tokens: int, usd: Decimal) -> dict[str, Any]:
        state = self.plane.budgets.state(
            tenant_id, self.loaded.name, run_id, tokens=tokens, usd=usd
        )
        tier = state.tier
        decided = {
            "tier": tier.value,
            "remaining_pct": state.remaining_pct,
            "reason": state.reason(),
            "message": str(state.exceeded()) if tier is Tier.BLOCK else "",
        }
        if tier is not Tier.ALLOW:
            from keel.control.plane import Audit

            event = {**state.to_dict(), "stage": "model_request", "estimate_tokens": tokens,
                     "estimate_usd": float(usd)}  # fmt: skip
            audit = (
                Audit("budget", f"agent:{self.loaded.name}", "budget", {**event, "run_id": run_id})
                if tier is Tier.BLOCK
                else None
            )
            self.plane.record(
                run_id, tenant_id, event=(BUDGET_EVENT, event), index="budget", audit=audit
            )
        return decided


def _prompt_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, Sequence):
        return "\n".join(p for p in prompt if isinstance(p, str))
    return ""


class InputGuard(AbstractCapability[RunDeps]):
    """The `input` guardrails over the user's message (see the module docstring)."""

    def __init__(self, plane: ControlPlane, loaded: LoadedAgent) -> None:
        self.plane = plane
        self.loaded = loaded

    async def before_run(self, ctx: RunContext[RunDeps]) -> None:
        guardrails = self.plane.guardrails.get(self.loaded.name)
        text = _prompt_text(ctx.prompt)
        if guardrails is None or not text or not guardrails.stages.get("input"):
            return
        deps = ctx.deps
        context = GuardrailContext("input", deps.tenant_id, self.loaded.name, None, deps.locale)
        verdict = guardrails.check_input(text, context)
        if not verdict.findings:
            return
        await durably("keel.input_guard", self._record, deps.run_id, deps.tenant_id, verdict)
        if verdict.blocked:
            raise InputBlocked(
                "input refused by guardrails: " + "; ".join(verdict.reasons), field="input"
            )

    async def _record(self, run_id: str, tenant_id: str, verdict: GuardrailResult[str]) -> None:
        from keel.control.plane import Audit

        event = findings_event("input", verdict, None, None)
        audit = (
            Audit(
                AuditKind.GUARDRAIL,
                f"agent:{self.loaded.name}",
                "input",
                {**event, "run_id": run_id},
            )
            if verdict.blocked
            else None
        )
        await asyncio.to_thread(
            self.plane.record, run_id, tenant_id, event=(GUARDRAIL_EVENT, event), index="input",
            audit=audit,
        )  # fmt: skip


class OutputGuard(AbstractCapability[RunDeps]):
    """`redact` guardrails of the `output` stage rewrite the answer before delivery."""

    def __init__(self, plane: ControlPlane, loaded: LoadedAgent) -> None:
        self.plane = plane
        self.loaded = loaded

    async def after_output_process(
        self, ctx: RunContext[RunDeps], *, output_context: Any, output: Any
    ) -> Any:
        guardrails = self.plane.guardrails.get(self.loaded.name)
        if guardrails is None or not guardrails.stages.get("output"):
            return output
        context = GuardrailContext(
            "output", ctx.deps.tenant_id, self.loaded.name, None, ctx.deps.locale
        )
        if isinstance(output, str):
            verdict = guardrails.check_output(output, context)
            return verdict.value if verdict.redacted and not verdict.blocked else output
        if isinstance(output, BaseModel):
            data = output.model_dump(mode="json")
            checked = guardrails.check_output(data, context)
            if checked.redacted and not checked.blocked:
                try:
                    return type(output).model_validate(checked.value)
                except Exception:
                    return output  # the check below still sees the unredacted value
        return output


class OutputGuardrailCheck:
    """The fabric output check: `block` guardrails of the `output` stage end the run
    `blocked` with their reasons; every finding's score is reported."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane

    def check(
        self,
        agent: LoadedAgent,
        run_input: dict[str, Any],
        output: dict[str, Any],
        meta: dict[str, Any],
    ) -> CheckOutcome:
        from keel.fabric.extensions import CheckOutcome

        guardrails = self.plane.guardrails.get(agent.name)
        if guardrails is None or not guardrails.stages.get("output"):
            return CheckOutcome()
        value = output.get("text") if output.get("type") == "text" else output.get("data")
        context = GuardrailContext("output", str(meta.get("tenant_id") or ""), agent.name)
        verdict = guardrails.check_output(value, context)
        scores = {f"guardrail.{f.guardrail}.{f.kind}": f.score for f in verdict.findings}
        return CheckOutcome(verdict.blocked, verdict.reasons if verdict.blocked else (), scores)


__all__ = [
    "BUDGET_EVENT",
    "BudgetGuard",
    "InputBlocked",
    "InputGuard",
    "OutputGuard",
    "OutputGuardrailCheck",
    "durably",
    "model_ref",
]

"""The tool gate: the capability every tool call of a Keel agent passes, whatever its kind.

    prepare_tools      hide tools the run's tenant or tier may not use (never shown to the model)
    wrap_tool_execute  decide, durably (one DBOS step, its `tool.decision` event and audit entry
                       written inside it, so a replay takes the recorded decision):
                         resolve in the registry → validate arguments → budget state → Cedar
                         (principal: the agent acting for the user, tenant, roles, tier;
                         context: time, budget_remaining_pct, throttled, has_human_approval,
                         lane, arguments) → budget rules → rate limit (tenant × tool)
                       then DENY: a refusal the model sees (`ToolFailed`), the run goes on;
                       REQUIRE_APPROVAL: `ApprovalRequired` (the fabric suspends the run);
                       ALLOW: the fabric's durable `tool.<name>` step
    call_tool          inside that step (`GatedToolset`, innermost): the execution scope with
                       the tool's credential, secrets scrubbed from the result and errors,
                       tool-output guardrails (redact / block / flag injection), the tool's unit
                       cost as a usage record

The decision, its policies and the budget tier are span attributes of the current span.
Any failure while deciding denies (fail closed).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from dbos import DBOS
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from opentelemetry import trace
from pydantic_ai import RunContext
from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.capabilities.abstract import WrapToolExecuteHandler
from pydantic_ai.exceptions import (
    ApprovalRequired,
    CallDeferred,
    ModelRetry,
    SkipToolExecution,
    ToolFailed,
)
from pydantic_ai.messages import ToolCallPart
from pydantic_ai.tools import ToolDefinition
from pydantic_ai.toolsets import AbstractToolset, WrapperToolset
from pydantic_ai.toolsets.abstract import ToolsetTool
from pydantic_core import to_jsonable_python

from keel.agents.deps import RunDeps
from keel.agents.loader import LoadedAgent
from keel.control.budgets import BudgetState, Tier
from keel.control.findings import GuardrailContext
from keel.control.ledger import AuditKind
from keel.control.policy import AuthorizationRequest, Decision
from keel.control.ratelimit import RateKey
from keel.control.registry import ToolSpec
from keel.control.scope import ToolScope, entered
from keel.errors import InvalidInput, KeelError

if TYPE_CHECKING:
    from keel.control.plane import ControlPlane

REFUSAL = "Refused by Keel's control plane"
DECISION_EVENT = "tool.decision"
GUARDRAIL_EVENT = "guardrail"


class ToolError(KeelError):
    """A tool failed with an error whose text carried a secret (shown scrubbed)."""

    code = "tool_error"


def in_workflow() -> bool:
    """Inside workflow code (not inside a step), where durable steps can start."""
    return DBOS.workflow_id is not None and DBOS.step_id is None


@dataclass(frozen=True)
class GateCall:
    """One tool call to decide."""

    run_id: str
    tenant_id: str
    user_id: str
    agent: str
    tool: str
    tool_call_id: str
    args: Mapping[str, Any]
    approved: bool = False


@dataclass(frozen=True)
class GateDecision:
    """ALLOW, DENY or REQUIRE_APPROVAL, why, at which stage (registry, validate, policy,
    approval, budget, rate_limit) and under which budget. `retry`: the model may correct
    the call (invalid arguments)."""

    decision: Decision
    reason: str
    stage: str
    policies: tuple[str, ...] = ()
    budget: dict[str, Any] = field(default_factory=dict)
    retry: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision.value,
            "reason": self.reason,
            "stage": self.stage,
            "policies": list(self.policies),
            "budget": dict(self.budget),
            "retry": self.retry,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateDecision:
        return cls(
            Decision(data["decision"]),
            str(data["reason"]),
            str(data["stage"]),
            tuple(data.get("policies") or ()),
            dict(data.get("budget") or {}),
            bool(data.get("retry")),
        )


def _deny(reason: str, stage: str, **kwargs: Any) -> GateDecision:
    return GateDecision(Decision.DENY, reason, stage, **kwargs)


def args_digest(args: Mapping[str, Any]) -> str:
    text = json.dumps(to_jsonable_python(dict(args), fallback=str), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class Gate:
    """The decision pipeline, independent of Pydantic AI (the capability and the benchmark
    drive it). Thread-safe."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self._validators: dict[str, Draft202012Validator] = {}
        self._decimal_args: dict[str, frozenset[str]] = {}

    # --- the pipeline ---------------------------------------------------------------------

    def evaluate(self, call: GateCall, now: datetime | None = None) -> GateDecision:
        """Registry → arguments → budget state → Cedar → budget rules (no side effects)."""
        try:
            return self._evaluate(call, now or self.plane.clock())
        except Exception as exc:  # fail closed, with the reason
            return _deny(f"the gate could not decide ({type(exc).__name__}: {exc})", "error")

    def _evaluate(self, call: GateCall, now: datetime) -> GateDecision:
        plane = self.plane
        spec = plane.registry.get(call.tool)
        if spec is None:
            return _deny(f"tool {call.tool!r} is not registered", "registry")
        who = plane.run_principal(call.run_id, call.tenant_id, call.user_id, call.agent)
        refusal = spec.refusal(call.tenant_id, who.policy.tier, now.date())
        if refusal is not None:
            return _deny(refusal, "registry")
        if not spec.schema_validated:
            problem = self._invalid(spec, call.args)
            if problem is not None:
                return _deny(
                    f"invalid arguments for {call.tool}: {problem}", "validate", retry=True
                )
        budget = plane.budgets.state(call.tenant_id, call.agent, call.run_id, usd=spec.cost_usd)
        summary = {"tier": budget.tier.value, "remaining_pct": budget.remaining_pct,
                   "reason": budget.reason()}  # fmt: skip
        try:
            cedar = plane.policies.decide(
                AuthorizationRequest(
                    who.policy, call.tool, args=self._cedar_args(spec, call.args), now=now,
                    budget_remaining_pct=budget.remaining_pct, has_human_approval=call.approved,
                    throttled=budget.tier is not Tier.ALLOW, lane=who.lane,
                )
            )  # fmt: skip
        except InvalidInput as exc:
            return _deny(f"policy check failed: {exc.message}", "policy", budget=summary)
        return self._combine(
            spec, call, cedar.decision, cedar.reason, cedar.policies, budget, summary
        )

    def _combine(
        self,
        spec: ToolSpec,
        call: GateCall,
        cedar: Decision,
        cedar_reason: str,
        policies: tuple[str, ...],
        budget: BudgetState,
        summary: dict[str, Any],
    ) -> GateDecision:
        if cedar is Decision.DENY:
            return _deny(cedar_reason, "policy", policies=policies, budget=summary)
        if budget.tier is Tier.BLOCK and spec.cost_usd > 0:
            return _deny(f"{budget.reason()}: no tool with a cost runs", "budget",
                         policies=policies, budget=summary)  # fmt: skip
        if cedar is Decision.REQUIRE_APPROVAL:
            return GateDecision(cedar, cedar_reason, "policy", policies, summary)
        loaded = self.plane.agents.get(call.agent)
        agent_flag = (
            loaded is not None
            and call.tool in loaded.tools
            and loaded.tools[call.tool].requires_approval
        )
        if not call.approved and (spec.options.requires_approval or agent_flag):
            where = "its registry entry" if spec.options.requires_approval else "agent.yaml"
            return GateDecision(
                Decision.REQUIRE_APPROVAL, f"tool {call.tool} needs a human's approval ({where})",
                "approval", policies, summary,
            )  # fmt: skip
        expensive = self.plane.budgets.expensive_tool_usd(call.agent)
        if (
            not call.approved
            and budget.tier is Tier.THROTTLE
            and expensive is not None
            and spec.cost_usd > 0
            and spec.cost_usd >= expensive
        ):
            return GateDecision(
                Decision.REQUIRE_APPROVAL,
                f"{budget.reason()}: tool {call.tool} costs {spec.cost_usd} USD a call and "
                "needs a human's approval while throttled",
                "budget", policies, summary,
            )  # fmt: skip
        return GateDecision(Decision.ALLOW, cedar_reason, "policy", policies, summary)

    def _invalid(self, spec: ToolSpec, args: Mapping[str, Any]) -> str | None:
        validator = self._validators.get(spec.name)
        if validator is None:
            validator = self._validators[spec.name] = Draft202012Validator(spec.input_schema)
        error = best_match(validator.iter_errors(to_jsonable_python(dict(args), fallback=str)))
        if error is None:
            return None
        where = ".".join(str(p) for p in error.absolute_path) or "arguments"
        return f"{where}: {error.message}"

    def _cedar_args(self, spec: ToolSpec, args: Mapping[str, Any]) -> dict[str, Any]:
        decimals = self._decimal_args.get(spec.name)
        if decimals is None:
            declared = spec.descriptor().arguments
            decimals = frozenset(n for n, t in declared.items() if t.rstrip("?") == "Decimal")
            self._decimal_args[spec.name] = decimals
        # Cedar decimals carry 4 places: policies compare amounts, rounding cannot flip them
        return {
            k: round(v, 4) if k in decimals and isinstance(v, float) else v for k, v in args.items()
        }

    # --- deciding and recording -----------------------------------------------------------

    async def decide(self, call: GateCall, now: datetime | None = None) -> GateDecision:
        """Evaluate, take a rate-limit token when allowed, and record the decision (event +
        audit entry, once per step). Run it as a durable step inside workflows."""
        spec = self.plane.registry.get(call.tool)
        if spec is None or spec.options.rate_limit is None:  # one trip to a worker thread
            return await asyncio.to_thread(self._decide_and_record, call, now, spec)
        decision = await asyncio.to_thread(self.evaluate, call, now)
        if decision.decision is Decision.ALLOW:
            decision = await self._rate_limit(call, decision)
        await asyncio.to_thread(self.record, call, decision, spec)
        return decision

    def _decide_and_record(
        self, call: GateCall, now: datetime | None, spec: ToolSpec | None
    ) -> GateDecision:
        decision = self.evaluate(call, now)
        self.record(call, decision, spec)
        return decision

    async def _rate_limit(self, call: GateCall, decision: GateDecision) -> GateDecision:
        try:
            taken = await self.plane.limiter.acquire(RateKey(call.tenant_id, f"tool:{call.tool}"))
        except Exception as exc:
            return _deny(f"rate limiter unavailable ({type(exc).__name__})", "rate_limit",
                         policies=decision.policies, budget=decision.budget)  # fmt: skip
        if taken.allowed:
            return decision
        return _deny(
            f"rate limit of {call.tool} for tenant {call.tenant_id} reached; "
            f"retry in {taken.retry_after:.1f} s",
            "rate_limit", policies=decision.policies, budget=decision.budget,
        )  # fmt: skip

    async def decide_dict(self, call: GateCall) -> dict[str, Any]:
        return (await self.decide(call)).to_dict()

    def record(self, call: GateCall, decision: GateDecision, spec: ToolSpec | None) -> None:
        budget = decision.budget or {}
        event = {
            "tool": call.tool,
            "tool_call_id": call.tool_call_id,
            "decision": decision.decision.value,
            "reason": decision.reason,
            "stage": decision.stage,
            "policies": list(decision.policies),
            "approved": call.approved,
            "budget_tier": budget.get("tier"),
            "budget_remaining_pct": budget.get("remaining_pct"),
            "kind": spec.kind if spec else None,
            "version": spec.options.version if spec else None,
        }
        from keel.control.plane import Audit

        audit = Audit(
            kind=AuditKind.TOOL_DECISION,
            actor=f"agent:{call.agent}",
            subject=f"tool:{call.tool}",
            data={**{k: v for k, v in event.items() if k not in ("kind",)},
                  "run_id": call.run_id, "user": call.user_id,
                  "args_sha256": args_digest(call.args)},
        )  # fmt: skip
        self.plane.record(
            call.run_id, call.tenant_id, event=(DECISION_EVENT, event), index="gate", audit=audit
        )


def annotate(decision: GateDecision, tool: str) -> None:
    """The decision as attributes of the current span (a no-op when not tracing)."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.set_attribute("keel.tool", tool)
    span.set_attribute("keel.gate.decision", decision.decision.value)
    span.set_attribute("keel.gate.stage", decision.stage)
    span.set_attribute("keel.gate.reason", decision.reason)
    span.set_attribute("keel.gate.policies", list(decision.policies))
    if decision.budget:
        span.set_attribute("keel.budget.tier", str(decision.budget.get("tier")))
        span.set_attribute(
            "keel.budget.remaining_pct", int(decision.budget.get("remaining_pct", 100))
        )


class ToolGate(AbstractCapability[RunDeps]):
    """The gate for one agent's runs (see the module docstring)."""

    def __init__(self, plane: ControlPlane, loaded: LoadedAgent) -> None:
        self.plane = plane
        self.loaded = loaded
        self.gate = Gate(plane)

    async def prepare_tools(
        self, ctx: RunContext[RunDeps], tool_defs: list[ToolDefinition]
    ) -> list[ToolDefinition]:
        tenant = ctx.deps.tenant_id
        tier = await asyncio.to_thread(self.plane.tenant_tier, tenant)
        today = self.plane.clock().date()
        visible = []
        for tool_def in tool_defs:
            spec = self.plane.registry.get(tool_def.name)
            if spec is not None and spec.refusal(tenant, tier, today) is None:
                visible.append(tool_def)
        return visible

    def get_wrapper_toolset(
        self, toolset: AbstractToolset[RunDeps]
    ) -> AbstractToolset[RunDeps] | None:
        return GatedToolset(toolset, plane=self.plane, loaded=self.loaded)

    async def wrap_tool_execute(
        self,
        ctx: RunContext[RunDeps],
        *,
        call: ToolCallPart,
        tool_def: ToolDefinition,
        args: Any,
        handler: WrapToolExecuteHandler,
    ) -> Any:
        deps = ctx.deps
        gate_call = GateCall(
            run_id=deps.run_id, tenant_id=deps.tenant_id, user_id=deps.user_id,
            agent=self.loaded.name, tool=call.tool_name, tool_call_id=call.tool_call_id,
            args=dict(args or {}), approved=bool(ctx.tool_call_approved),
        )  # fmt: skip
        if in_workflow():
            raw = await DBOS.run_step_async(
                {"name": f"keel.gate.{call.tool_name}"}, self.gate.decide_dict, gate_call
            )
        else:
            raw = await self.gate.decide_dict(gate_call)
        decision = GateDecision.from_dict(raw)
        annotate(decision, call.tool_name)
        if decision.decision is Decision.DENY:
            if decision.retry:
                raise ModelRetry(decision.reason)
            raise ToolFailed(f"{REFUSAL}: {decision.reason}. Do not call {call.tool_name} again "
                             "for this request; tell the user it is not allowed.")  # fmt: skip
        if decision.decision is Decision.REQUIRE_APPROVAL:
            raise ApprovalRequired(
                metadata={
                    "reason": decision.reason,
                    "policies": list(decision.policies),
                    "stage": decision.stage,
                    "budget": decision.budget,
                }
            )
        return await handler(args)


@dataclass
class GatedToolset(WrapperToolset[RunDeps]):
    """Innermost around every tool function (inside the fabric's durable tool step)."""

    plane: ControlPlane = field(kw_only=True)
    loaded: LoadedAgent = field(kw_only=True)

    async def call_tool(
        self,
        name: str,
        tool_args: dict[str, Any],
        ctx: RunContext[RunDeps],
        tool: ToolsetTool[RunDeps],
    ) -> Any:
        plane = self.plane
        spec = plane.registry.get(name)
        if spec is None:
            raise ToolFailed(f"{REFUSAL}: tool {name!r} is not registered")
        deps = ctx.deps
        tool_call_id = ctx.tool_call_id or ""
        who = await asyncio.to_thread(
            plane.run_principal, deps.run_id, deps.tenant_id, deps.user_id, self.loaded.name
        )
        scope = ToolScope(
            tenant_id=deps.tenant_id, user_id=deps.user_id, roles=who.policy.roles,
            run_id=deps.run_id, agent=self.loaded.name, tool=spec, tool_call_id=tool_call_id,
            idempotency_key=deps.idempotency_key(tool_call_id), _broker=plane.broker,
        )  # fmt: skip
        try:
            with entered(scope):
                result = await super().call_tool(name, tool_args, ctx, tool)
        except (ApprovalRequired, CallDeferred, SkipToolExecution):
            raise
        except ToolFailed as exc:
            raise ToolFailed(plane.redactor.scrub(exc.message)) from None
        except ModelRetry as exc:
            raise ModelRetry(plane.redactor.scrub(exc.message)) from None
        except Exception as exc:
            text = f"{type(exc).__name__}: {exc}"
            if len(plane.redactor) and plane.redactor.contains_secret(text):
                raise ToolError(plane.redactor.scrub(text)) from None
            raise
        return await self._guard(spec, deps, tool_call_id, result)

    async def _guard(self, spec: ToolSpec, deps: RunDeps, tool_call_id: str, result: Any) -> Any:
        plane = self.plane
        data = to_jsonable_python(result, fallback=str)
        if len(plane.redactor) and plane.redactor.contains_secret(
            json.dumps(data, ensure_ascii=False)
        ):
            result = data = plane.redactor.scrub_value(data)
        guardrails = plane.guardrails.get(self.loaded.name)
        verdict = None
        if guardrails is not None:
            context = GuardrailContext(
                "tool_output", deps.tenant_id, self.loaded.name, spec.name, deps.locale
            )
            verdict = guardrails.check_tool_output(data, context)
        event = None
        audit = None
        if verdict is not None and verdict.findings:
            event = (
                GUARDRAIL_EVENT,
                findings_event("tool_output", verdict, spec.name, tool_call_id),
            )
            if verdict.blocked or verdict.redacted:
                from keel.control.plane import Audit

                audit = Audit(AuditKind.GUARDRAIL, f"agent:{self.loaded.name}", f"tool:{spec.name}",
                              {**event[1], "run_id": deps.run_id})  # fmt: skip
        usage = (f"tool:{tool_call_id}", spec.name, spec.cost_usd) if spec.cost_usd > 0 else None
        if event is not None or usage is not None:
            await asyncio.to_thread(
                plane.record, deps.run_id, deps.tenant_id, event=event, index="guard",
                audit=audit, usage=usage,
            )  # fmt: skip
        if verdict is not None and verdict.blocked:
            raise ToolFailed(
                f"{REFUSAL}: the result of {spec.name} was withheld by guardrails "
                f"({'; '.join(verdict.reasons)})"
            )
        if verdict is not None and verdict.redacted:
            return verdict.value
        return result


def findings_event(
    stage: str, verdict: Any, tool: str | None, tool_call_id: str | None
) -> dict[str, Any]:
    """A guardrail verdict as event data: never the matched text, only where and what."""
    return {
        "stage": stage,
        "tool": tool,
        "tool_call_id": tool_call_id,
        "blocked": verdict.blocked,
        "redacted": verdict.redacted,
        "reasons": list(verdict.reasons),
        "findings": [
            {
                "guardrail": f.guardrail,
                "kind": f.kind,
                "rule": f.rule,
                "score": round(f.score, 3),
                "path": f.path,
            }
            for f in verdict.findings
        ],
    }


__all__ = [
    "DECISION_EVENT",
    "GUARDRAIL_EVENT",
    "REFUSAL",
    "Gate",
    "GateCall",
    "GateDecision",
    "GatedToolset",
    "ToolError",
    "ToolGate",
    "annotate",
    "args_digest",
    "findings_event",
]

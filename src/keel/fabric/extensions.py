"""How the other planes plug into the fabric without the fabric knowing them.

The composition root (`keel.cli.runtime` for every process) builds a `FabricExtensions` and
hands it to `Fabric`. Each hook has one job:

- `capabilities(loaded)`: extra Pydantic AI capabilities for an agent's durable runs — the
  control plane's tool gate and budget guard. They wrap tool calls *outside* the fabric's
  recorder, so a gate decision happens before the tool's durable step starts.
- `prompt_router.route(...)`: which prompt version a run uses when the spec names an alias —
  canary assignment by user. None keeps the alias's version.
- `output_checks`: run-time checks on a finished run's output. A blocking failure ends the run
  `blocked` with its reasons instead of `succeeded`; every check's scores become a `check`
  event.
- `on_finished(run)`: called after a run ended (any terminal status), outside its
  transaction — shadow runs, online eval sampling, canary health. Must not raise; must be
  quick (submit work, do not do it).
- `periodic()`: called by the fabric's sweep (every 30 s, once across the workers) — the
  work the listeners queued: online judging, rollout health. A failure is logged and the
  next job still runs.
- `on_fabric(fabric)`: called once with the `Fabric` these extensions were given to, for
  an extension that must submit runs itself (shadow runs) or write run events from inside
  its own durable steps through `fabric.activities` (the gate's `tool.decision` events).
- `on_approval(session, approval)`: called inside the transaction that decides an approval
  (approved, rejected or expired): what it writes commits or rolls back with the decision
  (the audit ledger entry).

Every hook receives plain values; none may assume it runs inside a workflow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic_ai.capabilities import AbstractCapability
from sqlalchemy.orm import Session

from keel.agents.deps import RunDeps
from keel.agents.loader import LoadedAgent
from keel.fabric.approvals import ApprovalView


class PromptRouter(Protocol):
    def route(self, agent: LoadedAgent, prompt_name: str, alias: str, user_id: str) -> int | None:
        """The prompt version this user's run should use for ALIAS, or None for the alias's."""


@dataclass(frozen=True)
class CheckOutcome:
    """The result of the run-time checks on one output."""

    blocked: bool = False
    reasons: tuple[str, ...] = ()
    scores: dict[str, float] = field(default_factory=dict)


class OutputCheck(Protocol):
    def check(
        self,
        agent: LoadedAgent,
        run_input: dict[str, Any],
        output: dict[str, Any],
        meta: dict[str, Any],
    ) -> CheckOutcome:
        """Check OUTPUT (`{"type": "text", "text": …}` or `{"type": "object", "data": …}`);
        META carries run_id, tenant_id, prompt_name, prompt_version, model, usage."""


CapabilityFactory = Callable[[LoadedAgent], Sequence[AbstractCapability[RunDeps]]]
FinishedListener = Callable[[Any], None]
PeriodicJob = Callable[[], object]
FabricHook = Callable[[Any], None]
ApprovalListener = Callable[[Session, ApprovalView], None]


@dataclass
class FabricExtensions:
    capabilities: list[CapabilityFactory] = field(default_factory=list)
    prompt_router: PromptRouter | None = None
    output_checks: list[OutputCheck] = field(default_factory=list)
    on_finished: list[FinishedListener] = field(default_factory=list)
    periodic: list[PeriodicJob] = field(default_factory=list)
    on_fabric: list[FabricHook] = field(default_factory=list)
    on_approval: list[ApprovalListener] = field(default_factory=list)

    def capabilities_for(self, loaded: LoadedAgent) -> list[AbstractCapability[RunDeps]]:
        return [cap for factory in self.capabilities for cap in factory(loaded)]

    def check(
        self,
        agent: LoadedAgent,
        run_input: dict[str, Any],
        output: dict[str, Any],
        meta: dict[str, Any],
    ) -> CheckOutcome:
        """All checks combined: blocked if any blocks; reasons and scores merged."""
        blocked = False
        reasons: list[str] = []
        scores: dict[str, float] = {}
        for check in self.output_checks:
            outcome = check.check(agent, run_input, output, meta)
            blocked = blocked or outcome.blocked
            reasons += outcome.reasons
            scores.update(outcome.scores)
        return CheckOutcome(blocked, tuple(reasons), scores)

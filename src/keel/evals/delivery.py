"""The eval plane's run-time half, wired into the fabric (the composition root calls
`install_delivery` — one line in `keel.cli.runtime.build_extensions`).

What it adds to `FabricExtensions`:

- `prompt_router`: `RolloutRouter` — canary users get the candidate version;
- `output_checks`: `EvalOutputCheck` — each agent's `evals:` scorers on every output,
  blocking ones stop delivery;
- `on_finished`: `RunCompletions` (eval runs awaited in this process), the rollout monitor's
  `observe`, the shadow launcher, the online sampler;
- `periodic`: the rollout monitor's `evaluate` (automatic rollback) and the online judge;
- `on_fabric`: gives the shadow launcher the fabric it submits to.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel

from keel.errors import NotFound
from keel.evals.canary import RolloutMonitor
from keel.evals.checks import EvalOutputCheck
from keel.evals.fabric_runner import RunCompletions
from keel.evals.online import OnlineJudge, OnlineQueue, OnlineSampler
from keel.evals.promotion import PromptPromotions
from keel.evals.rollout import RolloutRouter, RolloutStore
from keel.evals.score_store import ScoreStore
from keel.evals.shadow import ShadowLauncher
from keel.evals.suite import EvalSuite
from keel.store.database import Database

if TYPE_CHECKING:
    from keel.agents.loader import LoadedAgent
    from keel.fabric.catalog import AgentCatalog
    from keel.fabric.extensions import FabricExtensions


def suite_of(loaded: LoadedAgent) -> EvalSuite | None:
    """The agent's eval suite, or None when its `agent.yaml` has no `evals:` section.
    An invalid section raises `SpecError` (a run-time check must not silently vanish)."""
    if not loaded.spec.evals:
        return None
    output = loaded.output_type
    output_model = output if issubclass(output, BaseModel) else None
    return EvalSuite.build(
        loaded.name, loaded.spec.prompt_name, loaded.folder, loaded.spec.evals, output_model
    )


class AgentSuites:
    """Each deployed agent's `EvalSuite`, built once per spec version."""

    def __init__(self, catalog: AgentCatalog) -> None:
        self.catalog = catalog
        self._lock = threading.Lock()
        self._suites: dict[tuple[str, str], EvalSuite | None] = {}

    def for_agent(self, loaded: LoadedAgent) -> EvalSuite | None:
        key = (loaded.name, loaded.version)
        with self._lock:
            if key in self._suites:
                return self._suites[key]
        suite = suite_of(loaded)
        with self._lock:
            self._suites[key] = suite
        return suite

    def by_name(self, agent: str) -> EvalSuite | None:
        try:
            loaded = self.catalog.get(agent)
        except NotFound:
            return None
        return self.for_agent(loaded)


@dataclass
class EvalsDelivery:
    """The objects `install_delivery` plugged in (tests and the CLI reach them here)."""

    suites: AgentSuites
    scores: ScoreStore
    promotions: PromptPromotions
    router: RolloutRouter
    check: EvalOutputCheck
    monitor: RolloutMonitor
    queue: OnlineQueue
    sampler: OnlineSampler
    judge: OnlineJudge
    shadow: ShadowLauncher
    completions: RunCompletions

    @classmethod
    def build(cls, db: Database, catalog: AgentCatalog) -> EvalsDelivery:
        suites = AgentSuites(catalog)
        scores = ScoreStore(db)
        promotions = PromptPromotions(db)
        queue = OnlineQueue(db)
        return cls(
            suites=suites,
            scores=scores,
            promotions=promotions,
            router=RolloutRouter(RolloutStore(db)),
            check=EvalOutputCheck(suites.for_agent, scores),
            monitor=RolloutMonitor(db, promotions, scores),
            queue=queue,
            sampler=OnlineSampler(queue, suites.by_name),
            judge=OnlineJudge(db, queue, scores, suites.by_name),
            shadow=ShadowLauncher(db, queue),
            completions=RunCompletions(),
        )

    def install(self, extensions: FabricExtensions) -> None:
        extensions.prompt_router = self.router
        # a check is a durable step on every run: only when some agent has scorers to run
        if any(loaded.spec.evals.get("scorers") for loaded in self.suites.catalog):
            extensions.output_checks.append(self.check)
        extensions.on_finished += [
            self.completions,
            self.monitor.observe,
            self.shadow.on_finished,
            self.sampler.on_finished,
        ]
        extensions.periodic += [self.monitor.evaluate, self.judge.score_pending]
        extensions.on_fabric.append(self.shadow.bind)


def install_delivery(
    extensions: FabricExtensions, db: Database, catalog: AgentCatalog
) -> EvalsDelivery:
    """Build the eval plane's run-time pieces and plug them into EXTENSIONS."""
    delivery = EvalsDelivery.build(db, catalog)
    delivery.install(extensions)
    return delivery


def completions_of(extensions: FabricExtensions) -> RunCompletions | None:
    """The `RunCompletions` installed in EXTENSIONS, if any (the eval CLI waits on it)."""
    for listener in extensions.on_finished:
        if isinstance(listener, RunCompletions):
            return listener
    return None

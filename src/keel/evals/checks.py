"""Run-time checks: an agent's `evals:` scorers applied to every output before delivery.

The fabric calls `EvalOutputCheck.check` (a `keel.fabric.extensions.OutputCheck`) once per
finished run, as a durable step. Every scorer that applies scores the output; a failing
scorer marked `blocking: true` blocks delivery (the run ends `blocked` and its reasons are
on the run's error, which the API shows); the others only record their scores, in
`eval_scores` (source `check`) as well as on the run's `check` event. Eval runs (the eval
tenant) get the same checks, but their scores stay in their experiment's report.

Latency and cost scorers are left out: before the run has ended there is nothing to measure
(the rollout monitor compares them across versions instead). A case is made from the run:
its input as `inputs` and its locale as `metadata.locale`, so scorers like
`language: {expected_from: metadata.locale}` work unchanged; a scorer that needs `expected`
does not apply to a live run and is skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from keel.evals.dataset import EvalCase
from keel.evals.fabric_runner import EVAL_TENANT
from keel.evals.runner import CaseOutput
from keel.evals.score_store import ScoredRun, ScoreStore
from keel.evals.scorers import CostScorer, LatencyScorer
from keel.evals.suite import EvalSuite

if TYPE_CHECKING:
    from keel.agents.loader import LoadedAgent
    from keel.fabric.extensions import CheckOutcome

SuiteFor = Callable[["LoadedAgent"], EvalSuite | None]


def live_case(run_id: str, run_input: dict[str, Any]) -> EvalCase:
    """The eval case a production run stands for: its input, and its locale as metadata."""
    locale = run_input.get("locale")
    metadata = {"locale": locale} if isinstance(locale, str) and locale else {}
    return EvalCase(id=run_id or "run", inputs=dict(run_input), metadata=metadata)


def live_output(output: dict[str, Any]) -> CaseOutput:
    """The fabric's output envelope (`{"type": "object", "data": …}` or text) as a CaseOutput."""
    if output.get("type") == "object":
        return CaseOutput(output=output.get("data"))
    return CaseOutput(output=str(output.get("text", "")))


class EvalOutputCheck:
    """`OutputCheck` built from each agent's `evals:` scorers (agents without any pass)."""

    def __init__(self, suite_for: SuiteFor, scores: ScoreStore) -> None:
        self.suite_for = suite_for
        self.scores = scores

    def check(
        self,
        agent: LoadedAgent,
        run_input: dict[str, Any],
        output: dict[str, Any],
        meta: dict[str, Any],
    ) -> CheckOutcome:
        from keel.fabric.extensions import CheckOutcome

        suite = self.suite_for(agent)
        if suite is None or not suite.scorers:
            return CheckOutcome()
        run_id = str(meta.get("run_id") or "")
        case = live_case(run_id, run_input)
        produced = live_output(output)
        scores: dict[str, tuple[float, str]] = {}
        reasons: list[str] = []
        for scorer in suite.scorers:
            if isinstance(scorer, LatencyScorer | CostScorer):
                continue
            result = scorer.score(case, produced)
            if result is None:
                continue
            scores[scorer.name] = (result.value, result.reason)
            if scorer.blocking and not result.passed:
                reasons.append(f"{scorer.name}: {result.reason}")
        # eval runs are scored by their experiment; `eval_scores` holds production runs
        if run_id and scores and meta.get("tenant_id") != EVAL_TENANT:
            version = meta.get("prompt_version")
            self.scores.record(
                ScoredRun(
                    run_id=run_id,
                    tenant_id=str(meta.get("tenant_id") or ""),
                    agent=agent.name,
                    prompt_name=meta.get("prompt_name"),
                    prompt_version=int(version) if version is not None else None,
                ),
                "check",
                scores,
            )
        return CheckOutcome(
            blocked=bool(reasons),
            reasons=tuple(reasons),
            scores={name: value for name, (value, _) in scores.items()},
        )

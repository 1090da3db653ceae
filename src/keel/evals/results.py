"""What an experiment collects per version: each case's output, scores and panel verdicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from keel.evals.panel import PanelResult
from keel.evals.runner import CaseOutput, PromptVersionRef
from keel.evals.scorers import Score

SUCCEEDED = "succeeded"
"""Built-in metric: 1 when the run produced an output, 0 when it failed."""

MetricKind = Literal["judge", "scorer", "run"]


@dataclass(frozen=True)
class MetricInfo:
    """A metric the gate compares: its name, where it comes from, and whether it is an oracle."""

    name: str
    kind: MetricKind
    oracle: bool
    blocking: bool = False


@dataclass(frozen=True)
class CaseResult:
    """One case under one prompt version."""

    case_id: str
    output: CaseOutput
    scores: dict[str, Score | None] = field(default_factory=dict)
    panels: dict[str, PanelResult] = field(default_factory=dict)

    def value(self, metric: MetricInfo) -> float | None:
        if metric.kind == "run":
            return 0.0 if self.output.failed else 1.0
        if metric.kind == "judge":
            panel = self.panels.get(metric.name)
            return panel.score if panel is not None else None
        score = self.scores.get(metric.name)
        return score.value if score is not None else None


@dataclass(frozen=True)
class VersionResult:
    """Every case of the dataset under one prompt version, keyed by case id."""

    prompt: PromptVersionRef
    cases: dict[str, CaseResult]

"""The gate report: everything the verdict rests on, and exactly what it was computed for.

A report names the agent, the prompt, the candidate and baseline versions, the dataset
version (content hash), the config hash and the seed; a promotion later checks that a
PASS report `matches()` what it is about to promote. Reports are plain Pydantic models
and round-trip through JSON unchanged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from keel.evals.gate_config import GateConfig

Verdict = Literal["PASS", "FAIL"]
Direction = Literal["better", "worse", "unchanged"]


class MetricSummary(BaseModel):
    """One metric, candidate minus baseline over the paired cases."""

    name: str
    kind: Literal["judge", "scorer", "run"]
    oracle: bool
    n: int
    baseline_mean: float | None = None
    candidate_mean: float | None = None
    delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    p_holm: float | None = None
    direction: Direction = "unchanged"


class KappaSummary(BaseModel):
    """Fleiss' kappa of one judge panel on each run (None when it cannot be computed)."""

    metric: str
    judges: int
    categories: list[str]
    candidate: float | None
    baseline: float | None
    n_candidate: int
    n_baseline: int


class TripwireResult(BaseModel):
    name: Literal["kappa_collapse", "gaming", "slice_regression"]
    fired: bool
    summary: str
    details: list[str] = Field(default_factory=list)


class SliceSummary(BaseModel):
    """The primary metric on the cases of one slice (e.g. `locale = sv`)."""

    key: str
    value: str
    n: int
    metric: str
    baseline_mean: float | None
    candidate_mean: float | None
    delta: float | None
    holds: bool


class RunSummary(BaseModel):
    """Operational numbers of one version's run over the dataset."""

    version: int
    cases: int
    errors: int
    judge_failures: int
    latency_ms_mean: float
    latency_ms_p95: float
    cost_usd_total: float
    tokens_mean: float


class CaseComparison(BaseModel):
    """One case side by side: metric values, errors, judge reasons, output previews."""

    id: str
    slices: dict[str, str] = Field(default_factory=dict)
    baseline: dict[str, float | None] = Field(default_factory=dict)
    candidate: dict[str, float | None] = Field(default_factory=dict)
    baseline_error: str | None = None
    candidate_error: str | None = None
    baseline_reasons: list[str] = Field(default_factory=list)
    candidate_reasons: list[str] = Field(default_factory=list)
    baseline_preview: str = ""
    candidate_preview: str = ""


class GateReport(BaseModel):
    """The promotion gate's verdict on candidate vs baseline, with every number behind it."""

    id: str | None = None
    agent: str
    prompt_name: str
    candidate_version: int
    baseline_version: int
    dataset_name: str
    dataset_version: str
    dataset_size: int
    config_hash: str
    seed: int
    created_at: datetime
    duration_s: float = 0.0
    verdict: Verdict
    reasons: list[str]
    primary_metric: str
    gate: GateConfig
    metrics: list[MetricSummary]
    kappas: list[KappaSummary] = Field(default_factory=list)
    tripwires: list[TripwireResult] = Field(default_factory=list)
    slices: list[SliceSummary] = Field(default_factory=list)
    runs: dict[str, RunSummary] = Field(default_factory=dict)
    cases: list[CaseComparison] = Field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.verdict == "PASS"

    def metric(self, name: str) -> MetricSummary:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)

    def tripwire(self, name: str) -> TripwireResult:
        for t in self.tripwires:
            if t.name == name:
                return t
        raise KeyError(name)

    def matches(
        self,
        *,
        prompt_name: str,
        candidate_version: int,
        baseline_version: int,
        dataset_version: str,
        config_hash: str | None = None,
    ) -> bool:
        """True when this report is about exactly this promotion (what a promotion checks)."""
        return (
            self.prompt_name == prompt_name
            and self.candidate_version == candidate_version
            and self.baseline_version == baseline_version
            and self.dataset_version == dataset_version
            and (config_hash is None or self.config_hash == config_hash)
        )

"""The promotion gate's rules and thresholds (the `gate:` part of an agent's `evals:`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from keel.evals.bootstrap import DEFAULT_RESAMPLES
from keel.evals.kappa import DEFAULT_KAPPA_FLOOR


class GateConfig(BaseModel):
    """Every number the verdict depends on; its hash is in every gate report.

    - `pass_rule: superiority` (default): PASS needs the primary metric significantly better
      (delta > 0 and Holm-adjusted p < alpha). `non_inferiority`: PASS needs the primary
      metric's CI lower bound above −`non_inferiority_margin` and at least one metric
      significantly better (for changes meant to be cheaper or faster, not better).
    - A metric *regresses significantly* when delta < 0, its Holm-adjusted p < alpha and its
      CI upper bound < −`regression_tolerance`; any such metric fails the gate.
    - Judges must agree: Fleiss' kappa ≥ `kappa_floor` on both runs.
    - Tripwires (see `keel.evals.tripwires`) use the margins below.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    alpha: float = Field(default=0.05, gt=0, lt=1)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    resamples: int = Field(default=DEFAULT_RESAMPLES, ge=100, le=1_000_000)
    seed: int = 0
    primary_metric: str | None = Field(
        default=None, description="Default: the first judge panel, else the first scorer."
    )
    pass_rule: Literal["superiority", "non_inferiority"] = "superiority"
    non_inferiority_margin: float = Field(default=0.02, ge=0, le=1)
    regression_tolerance: float = Field(default=0.0, ge=0, le=1)
    kappa_floor: float = Field(default=DEFAULT_KAPPA_FLOOR, ge=-1, le=1)
    max_kappa_drop: float = Field(default=0.2, ge=0, le=2)
    gaming_judge_margin: float = Field(default=0.05, ge=0, le=1)
    gaming_oracle_margin: float = Field(default=0.05, ge=0, le=1)
    slice_by: list[str] = Field(default_factory=lambda: ["locale"])
    slice_tolerance: float = Field(default=0.05, ge=0, le=1)
    max_judge_failure_rate: float = Field(default=0.05, ge=0, le=1)

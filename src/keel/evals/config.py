"""The `evals:` section of an agent's `agent.yaml`, validated so every error names its field.

    evals:
      dataset: evals/cases.jsonl
      concurrency: 8
      scorers:
        - {type: schema}                                   # against schema.py's output model
        - {type: word_count, field: snapshot, min: 110, max: 160}
        - {type: language, field: snapshot, expected_from: metadata.locale}
        - {type: regex, field: snapshot, pattern: "(?i)guarantee", must_match: false, blocking: true}
        - {type: latency, max_ms: 8000}
      judges:
        k: 3
        rubric: evals/rubric.md
        model: offline:judge          # or models: [openai:gpt-5.2, anthropic:claude-sonnet-4-5]
        scale: "1-5"                  # or pass_fail
        field: snapshot
      gate:
        primary_metric: judge
        alpha: 0.05
        kappa_floor: 0.4
        slice_by: [locale]
      online:
        sample: 0.1                   # judge 10 % of finished production runs, asynchronously

`parse_eval_config(mapping)` raises `SpecError` with problems like
`agent.yaml:evals.scorers[1].min: Input should be greater than or equal to 0`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from keel.errors import SpecError, SpecProblem
from keel.evals.dataset import EvalDataset, canonical_json, load_dataset
from keel.evals.gate_config import GateConfig
from keel.evals.panel import JudgePanel, JudgePanelSpec, build_panel
from keel.evals.paths import inside
from keel.evals.scorers import SCORER_TYPES, Scorer, ScorerSpec, bind_scorers


class OnlineSampling(BaseModel):
    """`online:` — which share of finished production runs the judge panels score, after the
    fact (see `keel.evals.online`). The choice is a hash of the run id, so it is stable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sample: float = Field(default=0.0, ge=0, le=1)


class EvalConfig(BaseModel):
    """An agent's eval configuration: dataset, scorers, judge panels, gate rules, online sampling."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str = "evals/cases.jsonl"
    concurrency: int = Field(default=8, ge=1, le=256)
    scorers: list[ScorerSpec] = Field(default_factory=list)
    judges: list[JudgePanelSpec] = Field(default_factory=list)
    gate: GateConfig = Field(default_factory=GateConfig)
    online: OnlineSampling = Field(default_factory=OnlineSampling)

    @field_validator("judges", mode="before")
    @classmethod
    def _one_panel_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, dict) else v

    def fingerprint(self) -> str:
        """sha256 of the canonical config (rubric *files* are hashed in by the experiment)."""
        return hashlib.sha256(
            canonical_json(self.model_dump(mode="json", by_alias=True)).encode()
        ).hexdigest()


def _format_loc(loc: tuple[int | str, ...], prefix: str) -> str:
    out = prefix
    previous: int | str | None = None
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif (
            isinstance(previous, int)
            and i >= 2
            and loc[i - 2] == "scorers"
            and part in SCORER_TYPES
        ):
            pass  # the discriminator tag pydantic inserts: `scorers[1].word_count.min`
        else:
            out += f".{part}" if out else str(part)
        previous = part
    return out


def parse_eval_config(
    data: Any, *, source: str = "agent.yaml", prefix: str = "evals"
) -> EvalConfig:
    """Validate the `evals:` mapping; every problem becomes `source:evals.path: reason`."""
    if data is None:
        data = {}
    try:
        return EvalConfig.model_validate(data)
    except ValidationError as e:
        problems = [
            SpecProblem(source, _format_loc(tuple(err["loc"]), prefix), err["msg"])
            for err in e.errors()
        ]
        raise SpecError(problems) from None


def load_eval_parts(
    config: EvalConfig,
    *,
    base_dir: Path,
    output_model: type[BaseModel] | None = None,
) -> tuple[EvalDataset, list[Scorer], list[JudgePanel]]:
    """Read the dataset and rubrics relative to the agent folder and build the scorers and panels."""
    dataset = load_dataset(
        inside(base_dir, config.dataset, source="agent.yaml", field="evals.dataset")
    )
    scorers = bind_scorers(config.scorers, base_dir=base_dir, output_model=output_model)
    panels = [build_panel(spec, base_dir=base_dir) for spec in config.judges]
    names = [s.name for s in scorers] + [p.name for p in panels]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SpecError(
            [SpecProblem("agent.yaml", "evals", f"metric names must be unique: {dupes}")]
        )
    return dataset, scorers, panels

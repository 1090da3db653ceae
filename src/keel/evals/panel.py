"""Judge panels: k judges grade every output; the panel score is their consensus.

Panel score per case: the mean of the judges' normalised scores on an ordinal scale, or
the majority verdict for pass/fail (more than half must pass; a tie fails). The judges
differ by model (`models:` cycles through the list), by persona and by seed (judge i gets
`seed + i`), so they do not all make the same mistake — and their agreement (Fleiss'
kappa, in the gate) tells whether the scores can be trusted at all.

A judge that raises is recorded as a failure for that case; the panel score uses the
judges that answered, and the gate fails when failures pass `max_judge_failure_rate`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from keel.errors import InvalidInput, SpecError, SpecProblem
from keel.evals.dataset import EvalCase
from keel.evals.jsonpath import PathNotFound, parse_path
from keel.evals.judges import Judge, JudgeScale, JudgeVerdict
from keel.evals.paths import inside
from keel.evals.runner import CaseOutput
from keel.evals.scorers import as_text

DEFAULT_PERSONAS = (
    "a demanding sales director who has read thousands of account summaries",
    "a meticulous copy editor who checks every claim against the input",
    "the customer's buyer, reading this for the first time",
)


class JudgePanelSpec(BaseModel):
    """The `judges:` section of an agent's `evals:` config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="judge", min_length=1, max_length=100)
    k: int = Field(default=3, ge=1, le=15)
    rubric: str | None = Field(
        default=None, description="Rubric file, relative to the agent folder."
    )
    rubric_text: str | None = None
    model: str = "offline:judge"
    models: list[str] | None = Field(default=None, min_length=1)
    scale: str = "1-5"
    field: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    seed: int = 0
    personas: list[str] = Field(default_factory=lambda: list(DEFAULT_PERSONAS), min_length=1)
    kappa_bins: int = Field(default=3, ge=0, le=20)

    @field_validator("scale")
    @classmethod
    def _scale_parses(cls, v: str) -> str:
        try:
            JudgeScale.parse(v)
        except InvalidInput as e:
            raise ValueError(e.message) from None
        return v

    @field_validator("field")
    @classmethod
    def _field_is_a_path(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                parse_path(v)
            except InvalidInput as e:
                raise ValueError(e.message) from None
        return v

    @model_validator(mode="after")
    def _one_rubric(self) -> JudgePanelSpec:
        if (self.rubric is None) == (self.rubric_text is None):
            raise ValueError("give exactly one of rubric (a file) or rubric_text")
        return self


@dataclass(frozen=True)
class PanelResult:
    """The panel's verdicts on one output."""

    score: float | None
    verdicts: tuple[JudgeVerdict, ...] = ()
    failures: tuple[str, ...] = ()


@dataclass
class JudgePanel:
    """k judges with one rubric and scale; `name` is the metric name in reports."""

    name: str
    judges: list[Judge]
    scale: JudgeScale
    rubric: str
    kappa_bins: int = 3
    field: str | None = None
    _path: Any = dc_field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.judges:
            raise InvalidInput("a judge panel needs at least one judge", field="k")
        self._path = parse_path(self.field) if self.field is not None else None

    @property
    def k(self) -> int:
        return len(self.judges)

    def spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scale": str(self.scale),
            "kappa_bins": self.kappa_bins,
            "field": self.field,
            "rubric_sha256": hashlib.sha256(self.rubric.encode()).hexdigest(),
            "judges": [j.describe() for j in self.judges],
        }

    def category(self, verdict: JudgeVerdict) -> int:
        return self.scale.category(verdict.raw, self.kappa_bins)

    def output_text(self, output: CaseOutput) -> str:
        value: Any = output.output
        if self._path is not None:
            with contextlib.suppress(PathNotFound):
                value = self._path.find(value)
        return as_text(value) if value is not None else ""

    async def score(self, case: EvalCase, output: CaseOutput) -> PanelResult:
        """Every judge grades the output concurrently. A failed run scores 0 without judging."""
        if output.error is not None:
            return PanelResult(0.0)
        text = self.output_text(output)
        results = await asyncio.gather(
            *(j.judge(case, text) for j in self.judges), return_exceptions=True
        )
        verdicts: list[JudgeVerdict] = []
        failures: list[str] = []
        for judge, r in zip(self.judges, results, strict=True):
            if isinstance(r, JudgeVerdict):
                verdicts.append(r)
            elif isinstance(r, Exception):
                failures.append(f"{judge.name}: {type(r).__name__}: {r}")
            else:
                raise r
        return PanelResult(self._consensus(verdicts), tuple(verdicts), tuple(failures))

    def _consensus(self, verdicts: list[JudgeVerdict]) -> float | None:
        if not verdicts:
            return None
        if self.scale.kind == "pass_fail":
            passes = sum(1 for v in verdicts if v.raw)
            return 1.0 if passes * 2 > len(verdicts) else 0.0
        return sum(v.score for v in verdicts) / len(verdicts)


def build_panel(spec: JudgePanelSpec, *, base_dir: Path | None = None) -> JudgePanel:
    """Build the k judges of `spec`, reading the rubric file relative to `base_dir`."""
    if spec.rubric_text is not None:
        rubric = spec.rubric_text
    else:
        assert spec.rubric is not None
        path = inside(base_dir, spec.rubric, source="agent.yaml", field="evals.judges.rubric")
        try:
            rubric = path.read_text(encoding="utf-8")
        except OSError as e:
            raise SpecError(
                [SpecProblem(str(path), "rubric", f"cannot read the rubric: {e.strerror}")]
            ) from None
    if not rubric.strip():
        raise SpecError(
            [SpecProblem(spec.rubric or "rubric_text", "rubric", "the rubric is empty")]
        )
    scale = JudgeScale.parse(spec.scale)
    models = spec.models or [spec.model]
    judges = [
        Judge(
            name=f"{spec.name}#{i}",
            model=models[i % len(models)],
            rubric=rubric,
            scale=scale,
            persona=spec.personas[i % len(spec.personas)],
            temperature=spec.temperature,
            seed=spec.seed + i,
        )
        for i in range(spec.k)
    ]
    return JudgePanel(
        name=spec.name,
        judges=judges,
        scale=scale,
        rubric=rubric,
        kappa_bins=spec.kappa_bins,
        field=spec.field,
    )

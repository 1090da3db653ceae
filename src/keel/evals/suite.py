"""An agent's eval suite, ready to use: its `evals:` config, scorers, judge panels and dataset,
and the two hashes a gate report and a promotion must agree on (dataset version, config hash).

Dataset strings may hold `{{year}}`, filled in with the current UTC year when the dataset is
loaded for a run (for cases about "this year"). The dataset *version* is computed after the
substitution: a new year gives a new version, and a promotion needs a PASS report on it.
Any other `{{name}}` is an error naming the case.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from keel.errors import SpecError, SpecProblem
from keel.evals.config import EvalConfig, parse_eval_config
from keel.evals.dataset import EvalCase, EvalDataset, load_dataset
from keel.evals.experiment import config_hash
from keel.evals.panel import JudgePanel, build_panel
from keel.evals.paths import inside
from keel.evals.scorers import Scorer, bind_scorers

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
PLACEHOLDERS = ("year",)


def _fill(value: Any, values: Mapping[str, str], where: str, problems: list[SpecProblem]) -> Any:
    if isinstance(value, str):

        def one(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in values:
                problems.append(
                    SpecProblem(
                        where,
                        "placeholder",
                        f"unknown {{{{{name}}}}}; supported: {', '.join(values)}",
                    )
                )
                return m.group(0)
            return values[name]

        return _PLACEHOLDER.sub(one, value)
    if isinstance(value, dict):
        return {k: _fill(v, values, where, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values, where, problems) for v in value]
    return value


def fill_placeholders(dataset: EvalDataset, *, today: date | None = None) -> EvalDataset:
    """The dataset with `{{year}}` replaced in every string of inputs, expected and metadata."""
    today = today or datetime.now(UTC).date()
    values = {"year": str(today.year)}
    problems: list[SpecProblem] = []
    cases = []
    for case in dataset.cases:
        where = f"{dataset.source or dataset.name}:{case.id}"
        cases.append(
            EvalCase(
                id=case.id,
                inputs=_fill(case.inputs, values, where, problems),
                expected=_fill(case.expected, values, where, problems),
                metadata=_fill(case.metadata, values, where, problems),
            )
        )
    if problems:
        raise SpecError(problems)
    return dataset.model_copy(update={"cases": tuple(cases)})


@dataclass
class EvalSuite:
    """Everything `keel eval run`, a promotion, the run-time checks and online sampling need
    from one agent's `evals:` section. Build it with `EvalSuite.build`."""

    agent: str
    prompt_name: str
    folder: Path
    config: EvalConfig
    scorers: list[Scorer]
    panels: list[JudgePanel]
    _datasets: dict[int, EvalDataset] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        agent: str,
        prompt_name: str,
        folder: Path,
        evals: Mapping[str, Any] | None,
        output_model: type[BaseModel] | None = None,
    ) -> EvalSuite:
        """Validate the `evals:` mapping and build its scorers and panels (rubric files are
        read now; the dataset only when asked for). Raises `SpecError` naming each field."""
        config = parse_eval_config(dict(evals or {}))
        scorers = bind_scorers(config.scorers, base_dir=folder, output_model=output_model)
        panels = [build_panel(spec, base_dir=folder) for spec in config.judges]
        names = [s.name for s in scorers] + [p.name for p in panels]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SpecError(
                [SpecProblem("agent.yaml", "evals", f"metric names must be unique: {dupes}")]
            )
        return cls(agent, prompt_name, folder, config, scorers, panels)

    @property
    def configured(self) -> bool:
        """Whether the agent declares anything to evaluate (scorers or judges)."""
        return bool(self.scorers or self.panels)

    @property
    def config_hash(self) -> str:
        """The hash a gate report carries: scorer specs, panel specs (rubric hashed), gate."""
        return config_hash(self.scorers, self.panels, self.config.gate)

    def dataset_path(self) -> Path:
        return inside(self.folder, self.config.dataset, source="agent.yaml", field="evals.dataset")

    def dataset(self, *, today: date | None = None) -> EvalDataset:
        """The dataset with placeholders filled for TODAY's year (read once per year)."""
        today = today or datetime.now(UTC).date()
        if today.year not in self._datasets:
            raw = load_dataset(
                self.dataset_path(), name=f"{self.agent}/{Path(self.config.dataset).stem}"
            )
            self._datasets[today.year] = fill_placeholders(raw, today=today)
        return self._datasets[today.year]

"""One real gate report per behaviour, computed once per test session (they are pure data)."""

from __future__ import annotations

from keel.evals.experiment import run_experiment
from keel.evals.panel import JudgePanelSpec, build_panel
from keel.evals.report import GateReport
from keel.evals.runner import PromptVersionRef
from keel.evals.scorers import LanguageScorer, SchemaScorer, WordCountScorer, bind_scorers

from . import synthetic as syn

_cache: dict[str, GateReport] = {}


async def report(kind: str = "better") -> GateReport:
    if kind not in _cache:
        behaviour = {"better": syn.better, "gaming": syn.gaming, "worse": syn.worse}[kind]
        scorers = bind_scorers(
            [
                WordCountScorer(field="snapshot", min=110, max=160),
                LanguageScorer(field="snapshot"),
                SchemaScorer(),
            ],
            output_model=syn.SalesCard,
        )
        _cache[kind] = await run_experiment(
            "sales-card",
            syn.dataset(24),
            PromptVersionRef("sales-card", 2),
            PromptVersionRef("sales-card", 1),
            syn.runner({1: syn.honest, 2: behaviour}),
            scorers,
            [build_panel(JudgePanelSpec(rubric_text=syn.RUBRIC, field="snapshot"))],
        )
    return _cache[kind].model_copy(deep=True)

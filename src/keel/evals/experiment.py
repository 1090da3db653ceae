"""Run a candidate and a baseline prompt version over a dataset and gate the result.

`run_experiment` is the single entry point a CLI or API calls:

    report = await run_experiment(
        "sales-card", dataset, candidate=PromptVersionRef("card", 4),
        baseline=PromptVersionRef("card", 3), runner=my_runner,
        scorers=scorers, judges=[panel], config=GateConfig(),
    )

Both versions run every case through the injected `CaseRunner` with at most
`concurrency` cases in flight (one semaphore shared by both versions); each output is
scored by every scorer and every judge panel as soon as it arrives; then the gate is
computed. Nothing is cached: running twice runs everything twice. A runner exception
becomes a failed case (`CaseOutput.error`), never an aborted experiment; cancellation
propagates.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from keel.errors import InvalidInput
from keel.evals.config import EvalConfig, load_eval_parts
from keel.evals.dataset import EvalCase, EvalDataset, canonical_json
from keel.evals.gate import evaluate_gate
from keel.evals.gate_config import GateConfig
from keel.evals.panel import JudgePanel
from keel.evals.report import GateReport
from keel.evals.results import SUCCEEDED, CaseResult, MetricInfo, VersionResult
from keel.evals.runner import CaseOutput, CaseRunner, PromptVersionRef
from keel.evals.scorers import Scorer

DEFAULT_CONCURRENCY = 8


def metric_infos(scorers: Sequence[Scorer], judges: Sequence[JudgePanel]) -> list[MetricInfo]:
    """The metrics an experiment reports: judge panels, scorers, then `succeeded`."""
    infos = [MetricInfo(p.name, "judge", oracle=False) for p in judges]
    infos += [MetricInfo(s.name, "scorer", oracle=s.oracle, blocking=s.blocking) for s in scorers]
    infos.append(MetricInfo(SUCCEEDED, "run", oracle=True))
    names = [m.name for m in infos]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInput(f"metric names must be unique, these repeat: {dupes}", field="scorers")
    return infos


def config_hash(scorers: Sequence[Scorer], judges: Sequence[JudgePanel], config: GateConfig) -> str:
    """sha256 over the scorer specs, panel specs (rubric hashed) and gate config."""
    doc = {
        "scorers": [s.spec() for s in scorers],
        "judges": [p.spec() for p in judges],
        "gate": config.model_dump(mode="json"),
    }
    return hashlib.sha256(canonical_json(doc).encode()).hexdigest()


async def _run_case(
    case: EvalCase,
    prompt: PromptVersionRef,
    runner: CaseRunner,
    scorers: Sequence[Scorer],
    judges: Sequence[JudgePanel],
    gate: asyncio.Semaphore,
) -> CaseResult:
    async with gate:
        try:
            output = await runner(case, prompt)
        except Exception as e:  # the runner is foreign code: record, do not abort the experiment
            output = CaseOutput(error=f"{type(e).__name__}: {e}")
        scores = {s.name: s.score(case, output) for s in scorers}
        panel_results = await asyncio.gather(*(p.score(case, output) for p in judges))
    return CaseResult(
        case_id=case.id,
        output=output,
        scores=scores,
        panels={p.name: r for p, r in zip(judges, panel_results, strict=True)},
    )


async def run_version(
    dataset: EvalDataset,
    prompt: PromptVersionRef,
    runner: CaseRunner,
    scorers: Sequence[Scorer],
    judges: Sequence[JudgePanel],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    semaphore: asyncio.Semaphore | None = None,
) -> VersionResult:
    """Run and score every case of the dataset under one prompt version."""
    gate = semaphore or asyncio.Semaphore(concurrency)
    results = await asyncio.gather(
        *(_run_case(c, prompt, runner, scorers, judges, gate) for c in dataset.cases)
    )
    return VersionResult(prompt=prompt, cases={r.case_id: r for r in results})


async def run_experiment(
    agent_name: str,
    dataset: EvalDataset,
    candidate: PromptVersionRef,
    baseline: PromptVersionRef,
    runner: CaseRunner,
    scorers: Sequence[Scorer],
    judges: Sequence[JudgePanel],
    config: GateConfig | None = None,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> GateReport:
    """Run both versions over `dataset`, score, judge, and return the gate report."""
    config = config or GateConfig()
    if concurrency < 1:
        raise InvalidInput("concurrency must be at least 1", field="concurrency")
    if candidate.name != baseline.name:
        raise InvalidInput(
            f"candidate {candidate} and baseline {baseline} are different prompts", field="baseline"
        )
    if candidate.version == baseline.version:
        raise InvalidInput(
            f"candidate and baseline are the same version {candidate}", field="candidate"
        )
    metrics = metric_infos(scorers, judges)
    digest = config_hash(scorers, judges, config)
    started = time.perf_counter()
    semaphore = asyncio.Semaphore(concurrency)
    cand, base = await asyncio.gather(
        run_version(dataset, candidate, runner, scorers, judges, semaphore=semaphore),
        run_version(dataset, baseline, runner, scorers, judges, semaphore=semaphore),
    )
    # The bootstrap is CPU-bound numpy work; keep the event loop responsive for other tasks.
    report = await asyncio.to_thread(
        evaluate_gate,
        agent=agent_name,
        dataset=dataset,
        candidate=cand,
        baseline=base,
        metrics=metrics,
        panels=judges,
        config=config,
        config_hash=digest,
    )
    report.duration_s = time.perf_counter() - started
    return report


async def run_configured_experiment(
    agent_name: str,
    agent_dir: Path,
    config: EvalConfig,
    candidate: PromptVersionRef,
    baseline: PromptVersionRef,
    runner: CaseRunner,
    *,
    output_model: type[BaseModel] | None = None,
) -> GateReport:
    """`run_experiment` from an agent's `evals:` config (what `keel eval run` calls)."""
    dataset, scorers, panels = load_eval_parts(
        config, base_dir=agent_dir, output_model=output_model
    )
    return await run_experiment(
        agent_name,
        dataset,
        candidate,
        baseline,
        runner,
        scorers,
        panels,
        config.gate,
        concurrency=config.concurrency,
    )

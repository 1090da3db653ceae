"""The gate end to end on the synthetic sales-card agent, and the tripwires on their own."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from keel.errors import InvalidInput
from keel.evals.dataset import EvalCase
from keel.evals.experiment import run_experiment
from keel.evals.gate_config import GateConfig
from keel.evals.judges import Judge, JudgeScale
from keel.evals.panel import JudgePanel, JudgePanelSpec, build_panel
from keel.evals.report import GateReport, KappaSummary, MetricSummary, SliceSummary
from keel.evals.runner import CaseOutput, PromptVersionRef
from keel.evals.scorers import (
    LanguageScorer,
    LatencyScorer,
    SchemaScorer,
    Scorer,
    WordCountScorer,
    bind_scorers,
)
from keel.evals.tripwires import gaming, kappa_collapse, slice_regression

from . import synthetic as syn

BASE = PromptVersionRef("sales-card", 1)
CAND = PromptVersionRef("sales-card", 2)


def scorers() -> list[Scorer]:
    return bind_scorers(
        [
            WordCountScorer(field="snapshot", min=110, max=160),
            LanguageScorer(field="snapshot"),
            SchemaScorer(),
        ],
        output_model=syn.SalesCard,
    )


def panel() -> JudgePanel:
    return build_panel(JudgePanelSpec(rubric_text=syn.RUBRIC, field="snapshot"))


async def experiment(
    candidate: syn.Behaviour, config: GateConfig | None = None, **kw: Any
) -> GateReport:
    return await run_experiment(
        "sales-card",
        kw.pop("dataset", syn.dataset()),
        CAND,
        BASE,
        kw.pop("runner", syn.runner({1: syn.honest, 2: candidate})),
        kw.pop("scorers", scorers()),
        kw.pop("judges", [panel()]),
        config,
        **kw,
    )


async def test_a_candidate_better_on_everything_passes() -> None:
    report = await experiment(syn.better)
    assert report.verdict == "PASS", report.reasons
    judge = report.metric("judge")
    assert judge.direction == "better" and judge.ci_low is not None and judge.ci_low > 0
    assert judge.p_holm is not None and judge.p_holm < 0.05
    assert report.reasons[0].startswith("judge improved significantly")
    assert not any(t.fired for t in report.tripwires)
    assert all(s.holds for s in report.slices)
    assert [s.value for s in report.slices] == ["de", "en", "sv"]
    kappa = report.kappas[0]
    assert kappa.candidate is not None and kappa.candidate >= 0.4
    assert kappa.baseline is not None and kappa.baseline >= 0.4


async def test_a_worse_candidate_fails_with_the_metric_named() -> None:
    report = await experiment(syn.worse)
    assert report.verdict == "FAIL"
    assert report.metric("judge").direction == "worse"
    assert any(r.startswith("judge regressed significantly: 0.") for r in report.reasons)
    assert any("primary metric judge is not significantly better" in r for r in report.reasons)
    assert report.tripwire("slice_regression").fired


async def test_a_candidate_gaming_the_judges_trips_the_gaming_tripwire() -> None:
    report = await experiment(syn.gaming)
    judge = report.metric("judge")
    words = report.metric("word_count:snapshot")
    assert judge.delta is not None and judge.delta > 0 and judge.direction == "better"
    assert words.delta is not None and words.delta < -0.5
    trip = report.tripwire("gaming")
    assert trip.fired
    assert "word_count:snapshot" in trip.summary
    assert report.verdict == "FAIL"
    assert any(r.startswith("tripwire gaming:") for r in report.reasons)


async def test_a_locale_that_gets_worse_blocks_even_when_the_total_improves() -> None:
    def mixed(case: EvalCase) -> str:
        return syn.worse(case) if case.metadata["locale"] == "de" else syn.better(case)

    report = await experiment(mixed)
    trip = report.tripwire("slice_regression")
    assert trip.fired
    assert [s.value for s in report.slices if not s.holds] == ["de"]
    assert any("locale=de" in d for d in trip.details)
    assert report.verdict == "FAIL"


def _judge_model(index: int) -> FunctionModel:
    """Consistent on normal outputs; on outputs saying CONFUSE each judge scores at random."""

    def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        prompt = str(messages[-1].parts[-1].content)  # type: ignore[union-attr]
        digest = hashlib.sha256(prompt.encode()).digest()
        if "CONFUSE" in prompt:
            score = 1 + hashlib.sha256(f"{index}:{prompt}".encode()).digest()[0] % 5
        else:
            score = 1 + digest[0] % 5
        return ModelResponse(
            parts=[ToolCallPart(info.output_tools[0].name, {"reason": "r", "score": score})]
        )

    return FunctionModel(answer)


async def test_judges_that_stop_agreeing_trip_kappa_collapse() -> None:
    scale = JudgeScale.parse("1-5")
    confused = JudgePanel(
        name="judge",
        judges=[Judge(f"j{i}", _judge_model(i), "- Anything", scale) for i in range(3)],
        scale=scale,
        rubric="- Anything",
    )
    report = await experiment(lambda c: syn.better(c) + " CONFUSE", judges=[confused])
    kappa = report.kappas[0]
    assert kappa.baseline == 1.0
    assert kappa.candidate is not None and kappa.candidate < 0.4
    trip = report.tripwire("kappa_collapse")
    assert trip.fired and "below the floor" in trip.details[0]
    assert report.verdict == "FAIL"


async def test_non_inferiority_passes_a_faster_equal_candidate_superiority_does_not() -> None:
    def runner() -> Any:
        async def run(case: EvalCase, prompt: PromptVersionRef) -> CaseOutput:
            latency = 900.0 if prompt.version == 1 else 300.0
            return CaseOutput(output={"snapshot": syn.honest(case)}, latency_ms=latency)

        return run

    fast = [*scorers(), LatencyScorer(max_ms=500)]
    ni = await experiment(
        syn.honest, GateConfig(pass_rule="non_inferiority"), runner=runner(), scorers=fast
    )
    assert ni.verdict == "PASS", ni.reasons
    assert ni.metric("latency").direction == "better"
    sup = await experiment(syn.honest, GateConfig(), runner=runner(), scorers=fast)
    assert sup.verdict == "FAIL"
    assert "not significantly better" in sup.reasons[-1]
    same = await experiment(syn.honest, GateConfig(pass_rule="non_inferiority"))
    assert same.reasons == ["non-inferior, but no metric improved significantly"]


async def test_runner_exceptions_become_failed_cases_not_a_crashed_experiment() -> None:
    async def run(case: EvalCase, prompt: PromptVersionRef) -> CaseOutput:
        if prompt.version == 2 and case.metadata["locale"] == "sv":
            raise TimeoutError("model took too long")
        return CaseOutput(output={"snapshot": syn.honest(case)})

    report = await experiment(syn.honest, runner=run)
    assert report.runs["candidate"].errors == 12
    assert report.runs["baseline"].errors == 0
    assert report.metric("succeeded").direction == "worse"
    failed = next(c for c in report.cases if c.candidate_error)
    assert failed.candidate_error == "TimeoutError: model took too long"
    assert report.verdict == "FAIL"


async def test_concurrency_is_bounded() -> None:
    in_flight = 0
    peak = 0

    async def run(case: EvalCase, prompt: PromptVersionRef) -> CaseOutput:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(3):
            await asyncio.sleep(0)  # yield to the other cases, not a wait for anything
        in_flight -= 1
        return CaseOutput(output={"snapshot": syn.honest(case)})

    await experiment(syn.honest, runner=run, concurrency=4)
    assert 1 < peak <= 4


async def test_the_report_identifies_exactly_what_it_gated() -> None:
    ds = syn.dataset()
    a = await experiment(syn.better, dataset=ds)
    b = await experiment(syn.better, dataset=ds)
    assert (a.agent, a.prompt_name, a.candidate_version, a.baseline_version) == (
        "sales-card",
        "sales-card",
        2,
        1,
    )
    assert a.dataset_version == ds.version and a.dataset_size == 36
    assert a.seed == 0 and len(a.config_hash) == 64
    assert a.config_hash == b.config_hash
    assert a.metrics == b.metrics  # seeded: the same numbers every time
    assert a.matches(
        prompt_name="sales-card",
        candidate_version=2,
        baseline_version=1,
        dataset_version=ds.version,
    )
    assert not a.matches(
        prompt_name="sales-card",
        candidate_version=3,
        baseline_version=1,
        dataset_version=ds.version,
    )
    other = await experiment(syn.better, GateConfig(kappa_floor=0.5), dataset=ds)
    assert other.config_hash != a.config_hash


async def test_candidate_and_baseline_must_be_two_versions_of_one_prompt() -> None:
    ds = syn.dataset(3)
    run = syn.runner({1: syn.honest, 2: syn.honest})
    with pytest.raises(InvalidInput, match="different prompts"):
        await run_experiment("a", ds, PromptVersionRef("x", 2), BASE, run, [], [panel()])
    with pytest.raises(InvalidInput, match="same version"):
        await run_experiment("a", ds, BASE, BASE, run, [], [panel()])
    with pytest.raises(InvalidInput, match="primary metric"):
        await run_experiment(
            "a", ds, CAND, BASE, run, [], [panel()], GateConfig(primary_metric="nope")
        )


def _metric(
    name: str, kind: str, delta: float, low: float, high: float, oracle: bool = True
) -> MetricSummary:
    return MetricSummary(
        name=name, kind=kind, oracle=oracle, n=20, baseline_mean=0.5, candidate_mean=0.5 + delta,
        delta=delta, ci_low=low, ci_high=high, p_value=0.5, p_holm=0.5,
    )  # fmt: skip


def test_gaming_fires_on_a_mean_margin_even_without_significance() -> None:
    judge_up = _metric("judge", "judge", 0.06, -0.01, 0.13)
    words_down = _metric("words", "scorer", -0.06, -0.2, 0.05)
    assert gaming([judge_up, words_down], judge_margin=0.05, oracle_margin=0.05).fired
    assert not gaming([judge_up, words_down], judge_margin=0.1, oracle_margin=0.1).fired


def test_gaming_ignores_non_oracle_metrics_and_needs_both_halves() -> None:
    judge_up = _metric("judge", "judge", 0.2, 0.1, 0.3)
    slower = _metric("latency", "scorer", -0.5, -0.7, -0.3, oracle=False)
    assert not gaming([judge_up, slower], judge_margin=0.05, oracle_margin=0.05).fired
    words_down = _metric("words", "scorer", -0.01, -0.02, -0.001)  # significant, below margin
    assert gaming([judge_up, words_down], judge_margin=0.05, oracle_margin=0.05).fired
    flat_judge = _metric("judge", "judge", 0.0, -0.1, 0.1)
    assert not gaming([flat_judge, words_down], judge_margin=0.05, oracle_margin=0.05).fired


def test_kappa_collapse_on_floor_or_drop() -> None:
    def k(c: float | None, b: float | None) -> KappaSummary:
        return KappaSummary(
            metric="judge",
            judges=3,
            categories=["0", "1"],
            candidate=c,
            baseline=b,
            n_candidate=9,
            n_baseline=9,
        )

    assert kappa_collapse([k(0.3, 0.8)], floor=0.4, max_drop=0.2).fired
    assert kappa_collapse([k(0.55, 0.8)], floor=0.4, max_drop=0.2).fired
    assert not kappa_collapse([k(0.65, 0.8)], floor=0.4, max_drop=0.2).fired
    assert not kappa_collapse([k(None, 0.8)], floor=0.4, max_drop=0.2).fired


def test_a_slice_holds_exactly_at_the_tolerance() -> None:
    def s(delta: float) -> SliceSummary:
        return SliceSummary(
            key="locale",
            value="sv",
            n=3,
            metric="judge",
            baseline_mean=0.5,
            candidate_mean=0.5 + delta,
            delta=delta,
            holds=delta >= -0.05,
        )

    assert not slice_regression([s(-0.05)], tolerance=0.05).fired
    assert slice_regression([s(-0.051)], tolerance=0.05).fired

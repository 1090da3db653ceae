"""The promotion gate: candidate vs baseline on one dataset version → PASS or FAIL, with reasons.

Rules, in the order they are reported (configuration: `GateConfig`):

1. Any tripwire fires (kappa collapse, gaming, slice regression) → FAIL.
2. Any metric regresses significantly — delta < 0, Holm-adjusted p < alpha, and the 95 %
   CI upper bound below −`regression_tolerance` → FAIL, naming the metric.
3. A judge panel's kappa below `kappa_floor` on the baseline too → FAIL (the judges cannot
   tell good from bad on this dataset at all; nothing they say is evidence).
4. Judge failures above `max_judge_failure_rate` → FAIL.
5. The primary metric (default: the first judge panel) decides PASS:
   - `superiority` (default): delta > 0 with Holm-adjusted p < alpha. The seed's rule — a
     prompt moves to production when the eval *says it is better*: "the 95 % CI excludes
     zero in favour of the new version". Holm makes that claim survive testing many metrics
     at once. Non-inferiority would let a stream of "no worse" changes drift the prompt
     without evidence of progress, so it is opt-in;
   - `non_inferiority`: CI lower bound > −`non_inferiority_margin` and at least one metric
     significantly better — for changes meant to save cost or latency.

p-values are the two-sided paired-bootstrap ones (`keel.evals.bootstrap`), adjusted with
Holm across every metric that has data. Metrics are paired by case: a case counts for a
metric when both versions have a value for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

from keel.errors import InvalidInput
from keel.evals.bootstrap import paired_bootstrap
from keel.evals.dataset import EvalDataset
from keel.evals.gate_config import GateConfig
from keel.evals.holm import holm_adjust
from keel.evals.kappa import fleiss_kappa, ratings_table
from keel.evals.panel import JudgePanel
from keel.evals.report import (
    CaseComparison,
    GateReport,
    KappaSummary,
    MetricSummary,
    RunSummary,
    SliceSummary,
    TripwireResult,
)
from keel.evals.results import MetricInfo, VersionResult
from keel.evals.tripwires import gaming, kappa_collapse, slice_holds, slice_regression

_PREVIEW = 400


def _paired(
    metric: MetricInfo, dataset: EvalDataset, candidate: VersionResult, baseline: VersionResult
) -> tuple[list[str], list[float], list[float]]:
    ids, cand, base = [], [], []
    for case in dataset.cases:
        c = candidate.cases[case.id].value(metric)
        b = baseline.cases[case.id].value(metric)
        if c is not None and b is not None:
            ids.append(case.id)
            cand.append(c)
            base.append(b)
    return ids, cand, base


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def summarise_metrics(
    metrics: Sequence[MetricInfo],
    dataset: EvalDataset,
    candidate: VersionResult,
    baseline: VersionResult,
    config: GateConfig,
) -> list[MetricSummary]:
    """Bootstrap every metric, then Holm-adjust the p-values across the metrics with data."""
    out: list[MetricSummary] = []
    for m in metrics:
        _, cand, base = _paired(m, dataset, candidate, baseline)
        if not cand:
            out.append(MetricSummary(name=m.name, kind=m.kind, oracle=m.oracle, n=0))
            continue
        boot = paired_bootstrap(
            cand, base, resamples=config.resamples, confidence=config.confidence, seed=config.seed
        )
        out.append(
            MetricSummary(
                name=m.name,
                kind=m.kind,
                oracle=m.oracle,
                n=boot.n,
                baseline_mean=_mean(base),
                candidate_mean=_mean(cand),
                delta=boot.mean_diff,
                ci_low=boot.ci_low,
                ci_high=boot.ci_high,
                p_value=boot.p_value,
            )
        )
    with_data = [s for s in out if s.p_value is not None]
    adjusted = holm_adjust([s.p_value for s in with_data if s.p_value is not None])
    for s, p in zip(with_data, adjusted, strict=True):
        s.p_holm = p
        assert s.delta is not None and s.ci_high is not None
        if p < config.alpha and s.delta > 0:
            s.direction = "better"
        elif p < config.alpha and s.delta < 0 and s.ci_high < -config.regression_tolerance:
            s.direction = "worse"
    return out


def panel_kappa(panel: JudgePanel, result: VersionResult) -> tuple[float | None, int]:
    """Fleiss' kappa over the cases every judge of the panel rated (None if < 2 judges/cases)."""
    if panel.k < 2:
        return None, 0
    ratings = []
    for case in result.cases.values():
        pr = case.panels.get(panel.name)
        if pr is None or len(pr.verdicts) != panel.k:
            continue
        ratings.append([panel.category(v) for v in pr.verdicts])
    if not ratings:
        return None, 0
    categories = _categories(panel)
    table, _ = ratings_table(ratings, categories)
    return fleiss_kappa(table), len(ratings)


def _categories(panel: JudgePanel) -> list[int]:
    if panel.scale.kind == "pass_fail":
        return [0, 1]
    if panel.kappa_bins <= 0:
        return list(range(panel.scale.low, panel.scale.high + 1))
    return list(range(panel.kappa_bins))


def summarise_kappas(
    panels: Sequence[JudgePanel], candidate: VersionResult, baseline: VersionResult
) -> list[KappaSummary]:
    out = []
    for p in panels:
        kc, nc = panel_kappa(p, candidate)
        kb, nb = panel_kappa(p, baseline)
        out.append(
            KappaSummary(
                metric=p.name,
                judges=p.k,
                categories=[str(c) for c in _categories(p)],
                candidate=kc,
                baseline=kb,
                n_candidate=nc,
                n_baseline=nb,
            )
        )
    return out


def summarise_slices(
    primary: MetricInfo,
    dataset: EvalDataset,
    candidate: VersionResult,
    baseline: VersionResult,
    config: GateConfig,
) -> list[SliceSummary]:
    ids, cand, base = _paired(primary, dataset, candidate, baseline)
    by_id = {i: (c, b) for i, c, b in zip(ids, cand, base, strict=True)}
    out = []
    for key in config.slice_by:
        for value, case_ids in dataset.slices(key).items():
            pairs = [by_id[i] for i in case_ids if i in by_id]
            cm = _mean([c for c, _ in pairs])
            bm = _mean([b for _, b in pairs])
            delta = cm - bm if cm is not None and bm is not None else None
            out.append(
                SliceSummary(
                    key=key,
                    value=value,
                    n=len(pairs),
                    metric=primary.name,
                    baseline_mean=bm,
                    candidate_mean=cm,
                    delta=delta,
                    holds=slice_holds(delta, config.slice_tolerance),
                )
            )
    return out


def _run_summary(result: VersionResult, panels: Sequence[JudgePanel]) -> RunSummary:
    outs = [c.output for c in result.cases.values()]
    lat = sorted(o.latency_ms for o in outs)
    p95 = lat[min(len(lat) - 1, math.ceil(0.95 * len(lat)) - 1)] if lat else 0.0
    failures = sum(
        len(c.panels[p.name].failures)
        for c in result.cases.values()
        for p in panels
        if p.name in c.panels
    )
    return RunSummary(
        version=result.prompt.version,
        cases=len(outs),
        errors=sum(1 for o in outs if o.failed),
        judge_failures=failures,
        latency_ms_mean=sum(lat) / len(lat) if lat else 0.0,
        latency_ms_p95=p95,
        cost_usd_total=sum(o.cost_usd for o in outs),
        tokens_mean=sum(o.tokens for o in outs) / len(outs) if outs else 0.0,
    )


def _preview(value: object) -> str:
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 1] + "…"


def _case_comparisons(
    metrics: Sequence[MetricInfo],
    dataset: EvalDataset,
    candidate: VersionResult,
    baseline: VersionResult,
    slice_by: Sequence[str],
) -> list[CaseComparison]:
    out = []
    for case in dataset.cases:
        c = candidate.cases[case.id]
        b = baseline.cases[case.id]
        out.append(
            CaseComparison(
                id=case.id,
                slices={k: str(case.metadata[k]) for k in slice_by if k in case.metadata},
                baseline={m.name: b.value(m) for m in metrics},
                candidate={m.name: c.value(m) for m in metrics},
                baseline_error=b.output.error,
                candidate_error=c.output.error,
                baseline_reasons=[
                    f"{v.judge}: {v.raw} — {v.reason}"
                    for p in b.panels.values()
                    for v in p.verdicts
                ],
                candidate_reasons=[
                    f"{v.judge}: {v.raw} — {v.reason}"
                    for p in c.panels.values()
                    for v in p.verdicts
                ],
                baseline_preview=_preview(b.output.output),
                candidate_preview=_preview(c.output.output),
            )
        )
    return out


def _fmt_ci(m: MetricSummary) -> str:
    return (
        f"{m.baseline_mean:.3f} → {m.candidate_mean:.3f} (Δ {m.delta:+.3f}, "
        f"95% CI [{m.ci_low:+.3f}, {m.ci_high:+.3f}], Holm p {m.p_holm:.4f})"
    )


def resolve_primary(metrics: Sequence[MetricInfo], config: GateConfig) -> MetricInfo:
    if config.primary_metric is not None:
        for m in metrics:
            if m.name == config.primary_metric:
                return m
        raise InvalidInput(
            f"primary metric {config.primary_metric!r} is not one of {[m.name for m in metrics]}",
            field="primary_metric",
        )
    for kind in ("judge", "scorer", "run"):
        for m in metrics:
            if m.kind == kind:
                return m
    raise InvalidInput("an experiment needs at least one metric", field="primary_metric")


def _blocking_reasons(
    config: GateConfig,
    metrics: Sequence[MetricSummary],
    kappas: Sequence[KappaSummary],
    tripwires: Sequence[TripwireResult],
    runs: dict[str, RunSummary],
    judged_cases: int,
) -> list[str]:
    """Rules 1–4: anything here fails the gate whatever the primary metric says."""
    fail: list[str] = []
    for t in tripwires:
        if t.fired:
            detail = f" — {'; '.join(t.details)}" if t.details else ""
            fail.append(f"tripwire {t.name}: {t.summary}{detail}")
    fail += [
        f"{m.name} regressed significantly: {_fmt_ci(m)}" for m in metrics if m.direction == "worse"
    ]
    fail += [
        f"{k.metric}: baseline judge kappa {k.baseline:.2f} is below the floor "
        f"{config.kappa_floor:.2f}; the judges cannot be trusted on this dataset"
        for k in kappas
        if k.baseline is not None and k.baseline < config.kappa_floor
    ]
    fail += [
        f"{run.judge_failures} judge calls failed on the {label} run "
        f"(more than {config.max_judge_failure_rate:.0%} of {judged_cases})"
        for label, run in runs.items()
        if judged_cases and run.judge_failures / judged_cases > config.max_judge_failure_rate
    ]
    return fail


def _primary_reasons(
    config: GateConfig, primary: MetricSummary, metrics: Sequence[MetricSummary]
) -> tuple[list[str], list[str]]:
    """Rule 5: (failures, passes) of the pass rule on the primary metric."""
    if primary.delta is None or primary.ci_low is None:
        return [f"primary metric {primary.name} has no paired cases"], []
    if config.pass_rule == "superiority":
        if primary.direction == "better":
            return [], [f"{primary.name} improved significantly: {_fmt_ci(primary)}"]
        return [
            f"primary metric {primary.name} is not significantly better: {_fmt_ci(primary)}; "
            f"needs Δ > 0 with Holm p < {config.alpha}"
        ], []
    better = [m.name for m in metrics if m.direction == "better"]
    if primary.ci_low <= -config.non_inferiority_margin:
        return [
            f"{primary.name} is not shown non-inferior: {_fmt_ci(primary)}; the CI lower bound "
            f"must be above −{config.non_inferiority_margin}"
        ], []
    if not better:
        return ["non-inferior, but no metric improved significantly"], []
    return [], [f"{primary.name} non-inferior ({_fmt_ci(primary)}); better: {', '.join(better)}"]


def _verdict_reasons(
    config: GateConfig,
    primary: MetricSummary,
    metrics: Sequence[MetricSummary],
    kappas: Sequence[KappaSummary],
    tripwires: Sequence[TripwireResult],
    runs: dict[str, RunSummary],
    judged_cases: int,
) -> tuple[list[str], list[str]]:
    """(failures, passes): human-readable reasons; any failure makes the verdict FAIL."""
    fail = _blocking_reasons(config, metrics, kappas, tripwires, runs, judged_cases)
    primary_fail, ok = _primary_reasons(config, primary, metrics)
    fail += primary_fail
    if not fail:
        ok.append("no tripwire fired")
        ok += [
            f"{k.metric}: judges agree (kappa {k.candidate:.2f} ≥ {config.kappa_floor:.2f})"
            for k in kappas
            if k.candidate is not None
        ]
    return fail, ok


def evaluate_gate(
    *,
    agent: str,
    dataset: EvalDataset,
    candidate: VersionResult,
    baseline: VersionResult,
    metrics: Sequence[MetricInfo],
    panels: Sequence[JudgePanel],
    config: GateConfig,
    config_hash: str,
    duration_s: float = 0.0,
) -> GateReport:
    """Compare two versions' results on the same dataset and decide PASS or FAIL (pure)."""
    if candidate.prompt.name != baseline.prompt.name:
        raise InvalidInput(
            f"candidate {candidate.prompt} and baseline {baseline.prompt} are different prompts",
            field="baseline",
        )
    ids = {c.id for c in dataset.cases}
    for label, result in (("candidate", candidate), ("baseline", baseline)):
        if set(result.cases) != ids:
            raise InvalidInput(
                f"the {label} results do not cover exactly the dataset's cases", field=label
            )
    primary_info = resolve_primary(metrics, config)
    summaries = summarise_metrics(metrics, dataset, candidate, baseline, config)
    primary = next(s for s in summaries if s.name == primary_info.name)
    kappas = summarise_kappas(panels, candidate, baseline)
    slices = summarise_slices(primary_info, dataset, candidate, baseline, config)
    tripwires = [
        kappa_collapse(kappas, floor=config.kappa_floor, max_drop=config.max_kappa_drop),
        gaming(
            summaries,
            judge_margin=config.gaming_judge_margin,
            oracle_margin=config.gaming_oracle_margin,
        ),
        slice_regression(slices, tolerance=config.slice_tolerance),
    ]
    runs = {
        "baseline": _run_summary(baseline, panels),
        "candidate": _run_summary(candidate, panels),
    }
    judged = len(dataset.cases) * sum(p.k for p in panels)
    fail, ok = _verdict_reasons(config, primary, summaries, kappas, tripwires, runs, judged)
    return GateReport(
        agent=agent,
        prompt_name=candidate.prompt.name,
        candidate_version=candidate.prompt.version,
        baseline_version=baseline.prompt.version,
        dataset_name=dataset.name,
        dataset_version=dataset.version,
        dataset_size=len(dataset.cases),
        config_hash=config_hash,
        seed=config.seed,
        created_at=datetime.now(UTC),
        duration_s=duration_s,
        verdict="FAIL" if fail else "PASS",
        reasons=fail or ok,
        primary_metric=primary_info.name,
        gate=config,
        metrics=summaries,
        kappas=kappas,
        tripwires=tripwires,
        slices=slices,
        runs=runs,
        cases=_case_comparisons(metrics, dataset, candidate, baseline, config.slice_by),
    )

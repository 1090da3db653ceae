"""Tripwires: patterns that block promotion whatever the headline score says.

(a) **kappa collapse** — for a judge panel, the candidate's Fleiss' kappa is below
    `kappa_floor`, or it fell by more than `max_kappa_drop` from the baseline's. The
    judges stopped agreeing; the candidate may be confusing them, and their scores are
    not evidence.
(b) **gaming** — some judge metric went *up* while some deterministic oracle metric went
    *down*. Up: CI lower bound > 0, or mean delta ≥ `gaming_judge_margin`. Down: CI upper
    bound < 0, or mean delta ≤ −`gaming_oracle_margin`. The prompt is pleasing the judges
    while breaking objective rules. Tripwires use the *unadjusted* 95 % CI (no Holm): their
    job is to catch, and a false alarm costs a human look, not a bad promotion.
(c) **slice regression** — in every slice of `slice_by` (every locale by default) the
    primary metric's mean delta must be ≥ −`slice_tolerance`. Slices are often a handful
    of cases, too few for a significance test to ever fire, so this is a plain
    mean-difference rule with a tolerance: a locale that got worse on average by more than
    the tolerance blocks, however small it is.
"""

from __future__ import annotations

from collections.abc import Sequence

from keel.evals.report import KappaSummary, MetricSummary, SliceSummary, TripwireResult


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.3f}"


def kappa_collapse(
    kappas: Sequence[KappaSummary], *, floor: float, max_drop: float
) -> TripwireResult:
    details = []
    for k in kappas:
        if k.candidate is None:
            continue
        if k.candidate < floor:
            details.append(
                f"{k.metric}: candidate kappa {k.candidate:.2f} is below the floor {floor:.2f}"
            )
        elif k.baseline is not None and k.baseline - k.candidate > max_drop:
            details.append(
                f"{k.metric}: candidate kappa {k.candidate:.2f} dropped {k.baseline - k.candidate:.2f} "
                f"from the baseline's {k.baseline:.2f} (max drop {max_drop:.2f})"
            )
    if details:
        return TripwireResult(
            name="kappa_collapse",
            fired=True,
            summary="the judges stopped agreeing on the candidate",
            details=details,
        )
    return TripwireResult(name="kappa_collapse", fired=False, summary="judge agreement held")


def _judge_up(m: MetricSummary, margin: float) -> bool:
    if m.delta is None:
        return False
    return (m.ci_low is not None and m.ci_low > 0) or m.delta >= margin


def _oracle_down(m: MetricSummary, margin: float) -> bool:
    if m.delta is None:
        return False
    return (m.ci_high is not None and m.ci_high < 0) or m.delta <= -margin


def gaming(
    metrics: Sequence[MetricSummary], *, judge_margin: float, oracle_margin: float
) -> TripwireResult:
    ups = [m for m in metrics if m.kind == "judge" and _judge_up(m, judge_margin)]
    downs = [
        m for m in metrics if m.kind != "judge" and m.oracle and _oracle_down(m, oracle_margin)
    ]
    if ups and downs:
        details = [
            f"{m.name} (judge) up {_fmt(m.delta)} (95% CI [{_fmt(m.ci_low)}, {_fmt(m.ci_high)}])"
            for m in ups
        ] + [
            f"{m.name} (oracle) down {_fmt(m.delta)} (95% CI [{_fmt(m.ci_low)}, {_fmt(m.ci_high)}])"
            for m in downs
        ]
        return TripwireResult(
            name="gaming",
            fired=True,
            summary=(
                f"judge score rose while oracle {', '.join(m.name for m in downs)} fell: "
                "the candidate may be gaming the judges"
            ),
            details=details,
        )
    return TripwireResult(
        name="gaming", fired=False, summary="no judge gain paired with an oracle loss"
    )


def slice_regression(slices: Sequence[SliceSummary], *, tolerance: float) -> TripwireResult:
    broken = [s for s in slices if not s.holds]
    if broken:
        return TripwireResult(
            name="slice_regression",
            fired=True,
            summary=f"{len(broken)} slice(s) regressed by more than {tolerance:.3f}",
            details=[
                f"{s.key}={s.value} (n={s.n}): {s.metric} {_fmt(s.delta)} "
                f"({s.baseline_mean:.3f} → {s.candidate_mean:.3f})"
                for s in broken
                if s.baseline_mean is not None and s.candidate_mean is not None
            ],
        )
    return TripwireResult(
        name="slice_regression",
        fired=False,
        summary=f"every slice held within {tolerance:.3f}",
    )


def slice_holds(delta: float | None, tolerance: float) -> bool:
    """A slice holds when its mean delta is at least −tolerance (or it has no data)."""
    return delta is None or delta >= -tolerance

"""Paired bootstrap of candidate minus baseline over the same cases.

Both versions ran on the same cases, so the unit of resampling is the case: we resample
the per-case differences `d_i = candidate_i - baseline_i` with replacement (`resamples`
times, seeded) and read the percentile confidence interval of the mean difference from
the bootstrap distribution, exactly as `scipy.stats.bootstrap((d,), np.mean,
method="percentile")` does.

The p-value is the two-sided one that inverts that interval:

    p = min(1, 2 * min((1 + #{mean* <= 0}) / (B + 1), (1 + #{mean* >= 0}) / (B + 1)))

so `p < 1 - confidence` exactly when zero lies outside the percentile interval (up to
the `+1` correction, which keeps p away from 0 with finitely many resamples). It answers
"is the mean difference different from zero?"; the sign of `mean_diff` says which way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from keel.errors import InvalidInput

if TYPE_CHECKING:  # numpy loads in ~0.2 s: only computing needs it
    import numpy as np

DEFAULT_RESAMPLES = 10_000
_CHUNK_CELLS = 2_000_000  # bound the index matrix to ~16 MB whatever the dataset size


@dataclass(frozen=True)
class PairedBootstrap:
    """The bootstrap summary of one metric's candidate-minus-baseline difference."""

    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    resamples: int
    confidence: float


def bootstrap_means(
    diffs: Sequence[float], *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> np.ndarray:
    """The `resamples` bootstrap means of `diffs`; the same seed and n give the same draws.

    Every metric of an experiment is resampled with the same seed, so for equal n all
    metrics see the same resampled case sets (the comparison is paired across metrics too).
    """
    import numpy as np

    d = np.asarray(diffs, dtype=float)
    n = d.shape[0]
    rng = np.random.default_rng(seed)
    means = np.empty(resamples, dtype=float)
    rows_per_chunk = max(1, _CHUNK_CELLS // max(n, 1))
    start = 0
    while start < resamples:
        rows = min(rows_per_chunk, resamples - start)
        idx = rng.integers(0, n, size=(rows, n))
        means[start : start + rows] = d[idx].mean(axis=1)
        start += rows
    return means


def paired_bootstrap(
    candidate: Sequence[float],
    baseline: Sequence[float],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedBootstrap:
    """Bootstrap the mean of candidate minus baseline, paired by position (= by case)."""
    import numpy as np

    if len(candidate) != len(baseline):
        raise InvalidInput(
            f"paired bootstrap needs equal lengths, got {len(candidate)} and {len(baseline)}",
            field="candidate",
        )
    if len(candidate) == 0:
        raise InvalidInput("paired bootstrap needs at least one case", field="candidate")
    if resamples < 1:
        raise InvalidInput("resamples must be at least 1", field="resamples")
    if not 0.0 < confidence < 1.0:
        raise InvalidInput("confidence must be between 0 and 1", field="confidence")
    d = np.asarray(candidate, dtype=float) - np.asarray(baseline, dtype=float)
    means = bootstrap_means(d, resamples=resamples, seed=seed)
    alpha = 1.0 - confidence
    low, high = np.percentile(means, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    at_or_below = (1 + int(np.count_nonzero(means <= 0.0))) / (resamples + 1)
    at_or_above = (1 + int(np.count_nonzero(means >= 0.0))) / (resamples + 1)
    p = min(1.0, 2.0 * min(at_or_below, at_or_above))
    return PairedBootstrap(
        mean_diff=float(d.mean()),
        ci_low=float(low),
        ci_high=float(high),
        p_value=p,
        n=int(d.shape[0]),
        resamples=resamples,
        confidence=confidence,
    )

"""Holm–Bonferroni adjustment of p-values across the metrics of one experiment.

Sort the m p-values ascending; the i-th smallest (0-based) is multiplied by `m - i`, a
running maximum keeps the adjusted values monotone, and they are capped at 1. Rejecting
where the adjusted p < alpha controls the family-wise error rate at alpha, so testing ten
metrics does not hand a candidate ten chances to look better by luck. Matches
`statsmodels.stats.multitest.multipletests(method="holm")` value for value.
"""

from __future__ import annotations

from collections.abc import Sequence

from keel.errors import InvalidInput


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given."""
    for i, p in enumerate(p_values):
        if not 0.0 <= p <= 1.0:
            raise InvalidInput(f"p-value {p!r} at position {i} is not in [0, 1]", field="p_values")
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, p_values[i] * float(m - rank))
        adjusted[i] = min(1.0, running)
    return adjusted

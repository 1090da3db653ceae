"""Fleiss' kappa: agreement among k judges beyond what chance would give.

Input is the subjects × categories count table (row i: how many judges put case i in
each category), as in `statsmodels.stats.inter_rater.fleiss_kappa(table)`, whose
arithmetic this follows operation for operation so the results are identical.
`ratings_table` builds the table from per-case judge ratings.

One definition differs: when every rating falls in a single category, chance agreement
is 1 and the formula is 0/0 (statsmodels returns nan). Keel returns 1.0 there — the
judges agreed on everything, which is no sign of confusion. Note the *kappa paradox*: if
nearly all ratings share one category, a single disagreement drives kappa towards zero;
kappa is meaningful only on a dataset that spans several quality levels.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

from keel.errors import InvalidInput

DEFAULT_KAPPA_FLOOR = 0.4

C = TypeVar("C", bound=Hashable)


def ratings_table(
    ratings: Sequence[Sequence[C]], categories: Sequence[C] | None = None
) -> tuple[list[list[int]], list[C]]:
    """Count table (subjects × categories) from `ratings[subject][rater]`.

    Every subject must have the same number of ratings (Fleiss' kappa assumes it).
    Categories default to the sorted set of values seen.
    """
    if not ratings:
        raise InvalidInput("kappa needs at least one rated case", field="ratings")
    raters = len(ratings[0])
    for i, row in enumerate(ratings):
        if len(row) != raters:
            raise InvalidInput(
                f"case {i} has {len(row)} ratings, expected {raters}", field="ratings"
            )
    if categories is None:
        seen = {r for row in ratings for r in row}
        categories = sorted(seen, key=repr)
    index = {c: j for j, c in enumerate(categories)}
    table = [[0] * len(categories) for _ in ratings]
    for i, row in enumerate(ratings):
        for r in row:
            if r not in index:
                raise InvalidInput(f"rating {r!r} is not a known category", field="ratings")
            table[i][index[r]] += 1
    return table, list(categories)


def fleiss_kappa(table: Sequence[Sequence[int]]) -> float:
    """Fleiss' kappa of a subjects × categories count table (≥ 2 raters per subject)."""
    import numpy as np

    t = 1.0 * np.asarray(table)
    if t.ndim != 2 or t.shape[0] == 0 or t.shape[1] == 0:
        raise InvalidInput("kappa needs a non-empty subjects × categories table", field="table")
    n_sub = t.shape[0]
    n_total = t.sum()
    n_rat = t.sum(1).max()
    if n_total != n_sub * n_rat:
        raise InvalidInput("every case needs the same number of ratings", field="table")
    if n_rat < 2:
        raise InvalidInput("kappa needs at least two judges", field="table")
    p_cat = t.sum(0) / n_total
    p_rat = ((t * t).sum(1) - n_rat) / (n_rat * (n_rat - 1.0))
    p_mean = p_rat.mean()
    p_mean_exp = (p_cat * p_cat).sum()
    if p_mean_exp >= 1.0:
        return 1.0
    return float((p_mean - p_mean_exp) / (1 - p_mean_exp))

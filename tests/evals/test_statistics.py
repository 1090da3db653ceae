"""The statistics agree with scipy and statsmodels, and keep their defining properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa
from statsmodels.stats.multitest import multipletests

from keel.errors import InvalidInput
from keel.evals.bootstrap import paired_bootstrap
from keel.evals.holm import holm_adjust
from keel.evals.kappa import fleiss_kappa, ratings_table

FIXED_P = [0.01, 0.04, 0.03, 0.005, 0.2, 0.04, 0.9, 0.0001]


def test_holm_matches_statsmodels_exactly() -> None:
    _, expected, _, _ = multipletests(FIXED_P, method="holm")
    assert holm_adjust(FIXED_P) == list(expected)


@settings(max_examples=40)  # multipletests costs ~40 ms a call
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=20))
def test_holm_matches_statsmodels_on_any_p_values(ps: list[float]) -> None:
    _, expected, _, _ = multipletests(ps, method="holm")
    assert holm_adjust(ps) == list(expected)


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=20))
def test_holm_adjusted_is_at_least_raw_at_most_one_and_monotone(ps: list[float]) -> None:
    adj = holm_adjust(ps)
    assert all(a >= p for a, p in zip(adj, ps, strict=True))
    assert all(a <= 1.0 for a in adj)
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    assert [adj[i] for i in order] == sorted(adj[i] for i in order)


def test_holm_rejects_a_p_value_outside_the_unit_interval() -> None:
    with pytest.raises(InvalidInput):
        holm_adjust([0.2, 1.5])


FIXED_RATINGS = [
    [1, 1, 2],
    [2, 2, 2],
    [3, 3, 3],
    [1, 2, 1],
    [3, 2, 3],
    [1, 1, 1],
    [2, 3, 2],
    [3, 3, 3],
    [2, 2, 1],
    [1, 1, 1],
]


def test_fleiss_kappa_matches_statsmodels_exactly() -> None:
    table, _ = ratings_table(FIXED_RATINGS)
    sm_table, _ = aggregate_raters(np.asarray(FIXED_RATINGS))
    assert table == sm_table.tolist()
    assert fleiss_kappa(table) == sm_fleiss_kappa(sm_table)


def test_fleiss_kappa_matches_statsmodels_on_pass_fail() -> None:
    ratings = [[True, True, False], [False, False, False], [True, True, True], [True, False, True]]
    table, _ = ratings_table(ratings)
    sm_table, _ = aggregate_raters(np.asarray(ratings, dtype=int))
    assert fleiss_kappa(table) == sm_fleiss_kappa(sm_table)


@settings(max_examples=200)
@given(
    st.integers(2, 5).flatmap(
        lambda k: st.lists(
            st.lists(st.integers(0, 3), min_size=k, max_size=k), min_size=2, max_size=30
        )
    )
)
def test_fleiss_kappa_matches_statsmodels_on_any_ratings(ratings: list[list[int]]) -> None:
    table, _ = ratings_table(ratings)
    sm_table, _ = aggregate_raters(np.asarray(ratings))
    if len({r for row in ratings for r in row}) == 1:
        assert fleiss_kappa(table) == 1.0  # statsmodels: nan (0/0); Keel: full agreement
    else:
        assert fleiss_kappa(table) == sm_fleiss_kappa(sm_table)


@given(st.lists(st.integers(1, 5), min_size=2, max_size=30), st.integers(2, 6))
def test_kappa_is_one_when_all_judges_agree(values: list[int], judges: int) -> None:
    table, _ = ratings_table([[v] * judges for v in values])
    assert fleiss_kappa(table) == 1.0


def test_kappa_needs_equal_ratings_per_case() -> None:
    with pytest.raises(InvalidInput):
        ratings_table([[1, 2], [1]])


def _reference_ci(d: np.ndarray) -> tuple[float, float]:
    res = stats.bootstrap(
        (d,),
        np.mean,
        n_resamples=10_000,
        method="percentile",
        confidence_level=0.95,
        rng=np.random.default_rng(12345),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bootstrap_ci_agrees_with_scipy_within_monte_carlo_error(seed: int) -> None:
    rng = np.random.default_rng(seed)
    baseline = rng.uniform(0, 1, 60)
    candidate = np.clip(baseline + rng.normal(0.05, 0.2, 60), 0, 1)
    result = paired_bootstrap(list(candidate), list(baseline), seed=seed)
    low, high = _reference_ci(candidate - baseline)
    se = float(np.std(candidate - baseline, ddof=1) / np.sqrt(60))
    # MC sd of a 2.5 % quantile with 10k resamples is ~0.03 SE; two estimates differ by < 0.15 SE.
    assert abs(result.ci_low - low) < 0.15 * se
    assert abs(result.ci_high - high) < 0.15 * se
    assert result.mean_diff == pytest.approx(float(np.mean(candidate - baseline)))


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    c, b = [0.1, 0.5, 0.9, 0.4, 0.6], [0.2, 0.4, 0.7, 0.4, 0.3]
    assert paired_bootstrap(c, b, seed=7) == paired_bootstrap(c, b, seed=7)


def test_clear_improvement_has_small_p_and_ci_above_zero() -> None:
    rng = np.random.default_rng(0)
    b = rng.uniform(0.2, 0.6, 40)
    c = b + 0.2 + rng.normal(0, 0.05, 40)
    r = paired_bootstrap(list(c), list(b))
    assert r.ci_low > 0
    assert r.p_value < 0.001


def test_no_difference_gives_p_of_one() -> None:
    r = paired_bootstrap([0.3, 0.7, 0.5], [0.3, 0.7, 0.5])
    assert r.p_value == 1.0
    assert r.ci_low == r.ci_high == 0.0


@given(
    st.lists(st.floats(0, 1), min_size=1, max_size=40),
    st.floats(-1, 1),
)
def test_ci_of_a_constant_shift_is_the_shift(base: list[float], shift: float) -> None:
    r = paired_bootstrap([x + shift for x in base], base, resamples=500)
    assert r.ci_low <= r.mean_diff + 1e-9
    assert r.ci_high >= r.mean_diff - 1e-9
    assert r.ci_low == pytest.approx(shift, abs=1e-9)
    assert r.ci_high == pytest.approx(shift, abs=1e-9)


@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=30))
def test_p_value_is_a_probability_and_agrees_with_the_interval(
    pairs: list[tuple[float, float]],
) -> None:
    c = [p[0] for p in pairs]
    b = [p[1] for p in pairs]
    r = paired_bootstrap(c, b, resamples=400)
    assert 0.0 < r.p_value <= 1.0
    assert r.ci_low <= r.ci_high
    if r.ci_low > 0 or r.ci_high < 0:
        assert r.p_value <= 0.05 + 2 / 401


def test_bootstrap_rejects_unpaired_or_empty_input() -> None:
    with pytest.raises(InvalidInput):
        paired_bootstrap([0.1], [0.1, 0.2])
    with pytest.raises(InvalidInput):
        paired_bootstrap([], [])

"""Canary assignment (sticky, matching the share) and the health rules of automatic rollback."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.evals.canary import ArmStats, health_reasons, p95
from keel.evals.online import sampled
from keel.evals.rollout import RolloutThresholds, assigned_to_candidate, bucket

USERS = [f"user-{i}" for i in range(10_000)]


@given(
    rollout=st.text(min_size=1, max_size=30), user=st.text(max_size=30), percent=st.floats(0, 100)
)
def test_assignment_is_sticky_per_user(rollout: str, user: str, percent: float) -> None:
    first = assigned_to_candidate(rollout, user, percent)
    assert all(assigned_to_candidate(rollout, user, percent) == first for _ in range(3))
    assert 0.0 <= bucket(rollout, user) < 1.0


@given(rollout=st.text(min_size=1, max_size=30), user=st.text(max_size=30))
def test_raising_the_percent_never_takes_a_user_out_of_the_canary(rollout: str, user: str) -> None:
    inside = [assigned_to_candidate(rollout, user, p) for p in (1, 5, 10, 25, 50, 99)]
    assert inside == sorted(inside)  # False … False True … True


@pytest.mark.parametrize("percent", [1, 5, 10, 25, 50])
@pytest.mark.parametrize("rollout", ["rol_A", "rol_B"])
def test_the_canary_share_over_10000_users_matches_the_percent(percent: int, rollout: str) -> None:
    n = len(USERS)
    hits = sum(assigned_to_candidate(rollout, u, percent) for u in USERS)
    p = percent / 100
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(hits - n * p) <= 4 * sigma, (hits, n * p, sigma)


def test_a_new_rollout_reshuffles_who_is_in_the_canary() -> None:
    a = {u for u in USERS if assigned_to_candidate("rol_A", u, 10)}
    b = {u for u in USERS if assigned_to_candidate("rol_B", u, 10)}
    overlap = len(a & b) / len(a)
    assert 0.05 < overlap < 0.15  # independent draws: ~10 % of one canary is in the other


@pytest.mark.parametrize("share", [0.1, 0.5])
def test_online_sampling_picks_its_share_by_run_id(share: float) -> None:
    ids = [f"run_{i:05d}" for i in range(10_000)]
    picked = sum(sampled(i, share) for i in ids)
    sigma = math.sqrt(len(ids) * share * (1 - share))
    assert abs(picked - len(ids) * share) <= 4 * sigma
    assert [sampled(i, share) for i in ids[:50]] == [sampled(i, share) for i in ids[:50]]
    assert not any(sampled(i, 0.0) for i in ids[:100])


def arm(runs: int = 40, errors: int = 0, p95_ms: float = 1000.0, cost: float = 0.01,
        score: float | None = 0.8) -> ArmStats:  # fmt: skip
    return ArmStats(runs, errors, p95_ms, cost, score, runs if score is not None else 0)


LIMITS = RolloutThresholds(min_runs=20)


def test_nothing_is_decided_before_both_arms_have_enough_runs() -> None:
    assert health_reasons(arm(runs=19), arm(errors=40), LIMITS) is None
    assert health_reasons(arm(), arm(runs=5, errors=5), LIMITS) is None


def test_a_healthy_canary_has_no_reasons() -> None:
    assert health_reasons(arm(errors=1), arm(errors=2, p95_ms=1400, cost=0.014), LIMITS) == []


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [
        (
            arm(errors=6),
            "canary error rate 15.0% vs baseline 0.0% (allowed +5.0%; 6/40 runs failed)",
        ),
        (arm(p95_ms=1600), "canary p95 latency 1600 ms vs baseline 1000 ms (allowed ×1.5)"),
        (arm(cost=0.02), "canary cost per run $0.020000 vs baseline $0.010000 (allowed ×1.5)"),
        (arm(score=0.6), "canary check score 0.600 vs baseline 0.800 (allowed −0.1)"),
    ],
)
def test_each_regression_past_its_threshold_is_a_reason(candidate: ArmStats, reason: str) -> None:
    assert health_reasons(arm(), candidate, LIMITS) == [reason]


def test_small_latency_differences_and_free_baselines_are_not_regressions() -> None:
    assert health_reasons(arm(p95_ms=100), arm(p95_ms=300), LIMITS) == []  # +200 ms < 250
    assert health_reasons(arm(cost=0.0), arm(cost=0.5), LIMITS) == []
    assert health_reasons(arm(score=None), arm(score=0.1), LIMITS) == []


def test_p95_is_the_nearest_rank_percentile() -> None:
    assert p95([]) == 0.0
    assert p95([float(i) for i in range(1, 101)]) == 95.0
    assert p95([5.0]) == 5.0

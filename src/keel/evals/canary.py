"""The rollout monitor: watches a rollout's runs and rolls the candidate back when it regresses.

Two halves, both plugged into the fabric by the composition root:

- `observe(run)` — a run-end listener. A finished run of a prompt with an active rollout is
  filed under its arm: `canary` (routed to the candidate by `RolloutRouter`), `shadow` (a
  shadow run of the candidate) or `baseline` (the alias's version), with its outcome,
  latency (started → finished) and cost. Eval runs and cancelled runs are left out; so are
  runs submitted before the rollout began. One indexed query when no rollout is active.
- `evaluate()` — periodic (the fabric's sweep, every 30 s). Over each active rollout's
  window, it compares each candidate arm with the baseline arm (`health_reasons`): error
  rate, p95 latency, cost per run and score. Nothing is decided before both arms have
  `min_runs` runs. A regression past a threshold rolls the rollout back at once, recording
  the reasons on the rollout, in the canary alias's history and in the audit ledger; new
  runs use the baseline from then on (the router finds no active rollout).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from keel.evals.fabric_runner import EVAL_TENANT
from keel.evals.promotion import PromptPromotions
from keel.evals.rollout import Rollout, RolloutStore, RolloutThresholds
from keel.evals.score_store import ScoreStore, insert_ignoring_duplicates
from keel.store.database import Database
from keel.store.tables import RolloutRun, RunEvent
from keel.store.types import utcnow

if TYPE_CHECKING:
    from keel.fabric.runs import RunView

MONITOR_ACTOR = "rollout-monitor"
SHADOW_KEY_PREFIX = "shadow:"
FAILED_STATUSES = frozenset({"failed", "timed_out", "blocked"})
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArmStats:
    """One arm of a rollout over its window."""

    runs: int
    errors: int
    p95_latency_ms: float
    mean_cost_usd: float
    mean_score: float | None
    scored: int

    @property
    def error_rate(self) -> float:
        return self.errors / self.runs if self.runs else 0.0


def p95(values: Sequence[float]) -> float:
    """Nearest-rank 95th percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def arm_stats(rows: Sequence[RolloutRun], scores: dict[str, float]) -> ArmStats:
    """ArmStats of ROWS; SCORES maps run id → that run's score (runs without one are
    left out of the mean score only)."""
    scored = [scores[r.run_id] for r in rows if r.run_id in scores]
    return ArmStats(
        runs=len(rows),
        errors=sum(1 for r in rows if r.failed),
        p95_latency_ms=p95([r.latency_ms for r in rows]),
        mean_cost_usd=sum(float(r.cost_usd) for r in rows) / len(rows) if rows else 0.0,
        mean_score=sum(scored) / len(scored) if scored else None,
        scored=len(scored),
    )


def health_reasons(
    baseline: ArmStats, candidate: ArmStats, limits: RolloutThresholds, *, arm: str = "canary"
) -> list[str] | None:
    """Why the candidate arm regressed (empty: healthy); None while either arm has fewer
    than `min_runs` runs."""
    if baseline.runs < limits.min_runs or candidate.runs < limits.min_runs:
        return None
    reasons = []
    if candidate.error_rate - baseline.error_rate > limits.max_error_rate:
        reasons.append(
            f"{arm} error rate {candidate.error_rate:.1%} vs baseline {baseline.error_rate:.1%} "
            f"(allowed +{limits.max_error_rate:.1%}; {candidate.errors}/{candidate.runs} runs failed)"
        )
    if (
        baseline.p95_latency_ms > 0
        and candidate.p95_latency_ms > limits.max_latency_ratio * baseline.p95_latency_ms
        and candidate.p95_latency_ms - baseline.p95_latency_ms > limits.min_latency_increase_ms
    ):
        reasons.append(
            f"{arm} p95 latency {candidate.p95_latency_ms:.0f} ms vs baseline "
            f"{baseline.p95_latency_ms:.0f} ms (allowed ×{limits.max_latency_ratio:g})"
        )
    if baseline.mean_cost_usd > 0 and (
        candidate.mean_cost_usd > limits.max_cost_ratio * baseline.mean_cost_usd
    ):
        reasons.append(
            f"{arm} cost per run ${candidate.mean_cost_usd:.6f} vs baseline "
            f"${baseline.mean_cost_usd:.6f} (allowed ×{limits.max_cost_ratio:g})"
        )
    if (
        baseline.mean_score is not None
        and candidate.mean_score is not None
        and baseline.mean_score - candidate.mean_score > limits.max_score_drop
    ):
        metric = limits.score_metric or "check score"
        reasons.append(
            f"{arm} {metric} {candidate.mean_score:.3f} vs baseline {baseline.mean_score:.3f} "
            f"(allowed −{limits.max_score_drop:g})"
        )
    return reasons


@dataclass(frozen=True)
class RolloutHealth:
    """The monitor's view of one rollout: per-arm stats and the verdict."""

    rollout: Rollout
    arms: dict[str, ArmStats]
    state: str  # "waiting" (too few runs), "healthy", "regressed"
    reasons: list[str] = field(default_factory=list)


class RolloutMonitor:
    """Files finished runs under their rollout arm and rolls back regressed rollouts."""

    def __init__(self, db: Database, promotions: PromptPromotions, scores: ScoreStore) -> None:
        self.db = db
        self.promotions = promotions
        self.scores = scores
        self.store = RolloutStore(db)

    # --- run-end listener -------------------------------------------------------------------

    def observe(self, view: RunView) -> None:
        if view.tenant_id == EVAL_TENANT or view.status == "cancelled" or not view.prompt_name:
            return
        rollouts = self.store.active_for_prompt(view.prompt_name)
        if not rollouts:
            return
        for rollout in rollouts:
            arm = self._arm(rollout, view)
            if arm is None:
                continue
            finished = view.finished_at or utcnow()
            started = view.started_at or view.created_at
            with self.db.transaction() as s:
                insert_ignoring_duplicates(
                    s,
                    RolloutRun,
                    [
                        {
                            "run_id": view.id,
                            "rollout_id": rollout.id,
                            "arm": arm,
                            "failed": view.status in FAILED_STATUSES,
                            "latency_ms": max(0.0, (finished - started).total_seconds() * 1000),
                            "cost_usd": max(0.0, view.cost_usd),
                            "finished_at": finished,
                        }
                    ],
                )
            return

    def _arm(self, rollout: Rollout, view: RunView) -> str | None:
        if view.created_at < rollout.created_at:
            return None
        is_shadow = (view.idempotency_key or "").startswith(SHADOW_KEY_PREFIX)
        if view.prompt_version == rollout.candidate_version:
            if is_shadow:
                return "shadow" if rollout.shadow else None
            return "canary" if self._routed(view.id) else None
        if view.prompt_version == rollout.baseline_version and not is_shadow:
            return "baseline"
        return None

    def _routed(self, run_id: str) -> bool:
        """Whether the router chose this run's version (the run's queued event says)."""
        with self.db.transaction() as s:
            data = s.scalar(
                select(RunEvent.data).where(RunEvent.run_id == run_id, RunEvent.seq == 1)
            )
        return bool((data or {}).get("prompt_routed"))

    # --- periodic evaluation ----------------------------------------------------------------

    def health(self, rollout: Rollout, *, now: datetime | None = None) -> RolloutHealth:
        """Per-arm stats over the rollout's window and whether it regressed (no side effects)."""
        now = now or utcnow()
        limits = rollout.thresholds
        start = max(rollout.created_at, now - timedelta(minutes=limits.window_minutes))
        with self.db.transaction() as s:
            rows = list(
                s.scalars(
                    select(RolloutRun).where(
                        RolloutRun.rollout_id == rollout.id, RolloutRun.finished_at >= start
                    )
                )
            )
        metric = limits.score_metric
        scores = self.scores.run_means(
            [r.run_id for r in rows], metric=metric, source=None if metric else "check"
        )
        by_arm: dict[str, list[RolloutRun]] = {"baseline": [], "canary": [], "shadow": []}
        for r in rows:
            by_arm.setdefault(r.arm, []).append(r)
        arms = {name: arm_stats(group, scores) for name, group in by_arm.items()}
        watched = ["canary"] if rollout.percent > 0 else []
        watched += ["shadow"] if rollout.shadow else []
        reasons: list[str] = []
        decided = False
        for arm in watched:
            found = health_reasons(arms["baseline"], arms[arm], limits, arm=arm)
            if found is not None:
                decided = True
                reasons += found
        state = "regressed" if reasons else "healthy" if decided else "waiting"
        return RolloutHealth(rollout, arms, state, reasons)

    def evaluate(self, now: datetime | None = None) -> list[RolloutHealth]:
        """Check every active rollout; roll back those that regressed."""
        results = []
        for rollout in self.store.all_active():
            health = self.health(rollout, now=now)
            if health.state == "regressed":
                ended = self.promotions.roll_back_rollout(
                    rollout.id, reasons=health.reasons, actor=MONITOR_ACTOR
                )
                if ended is not None:
                    log.warning("rolled back %s: %s", rollout.id, "; ".join(health.reasons))
                    health = RolloutHealth(ended, health.arms, "rolled_back", health.reasons)
            else:
                self.store.touch(rollout.id)
            results.append(health)
        return results

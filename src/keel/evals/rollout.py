"""Progressive delivery of a prompt version: rollouts, sticky canary assignment, the router.

A rollout belongs to one (prompt, alias) — `production` in practice — and names the
baseline (the alias's version when it started) and the candidate. Two ways of exposing the
candidate, alone or together:

- **canary**: `percent` % of users run the candidate. Assignment is sticky: a user is in the
  canary when `sha256(rollout id : user id)`, read as a number in [0, 1), is below
  `percent / 100` — the same user always gets the same version for the life of the
  rollout, and a new rollout reshuffles. `RolloutRouter` is the fabric's `PromptRouter`.
- **shadow**: every baseline run is repeated on the candidate as a separate run whose
  output is stored and judged but never delivered (`keel.evals.shadow`).

The rollout monitor (`keel.evals.canary`) compares the candidate's runs with the baseline's
and rolls back past the thresholds below. Operations that start and end rollouts live in
`keel.evals.promotion` (they move aliases and write the audit ledger).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from keel.errors import NotFound
from keel.store.database import Database
from keel.store.tables import PromptRollout
from keel.store.types import utcnow

if TYPE_CHECKING:
    from keel.agents.loader import LoadedAgent

CANARY_SUFFIX = "-canary"


class RolloutStatus(StrEnum):
    ACTIVE = "active"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    STOPPED = "stopped"


class RolloutThresholds(BaseModel):
    """When the monitor rolls a candidate back. Each compares the candidate's runs in the
    window with the baseline's; nothing is decided before both have `min_runs` runs.

    - `max_error_rate`: the candidate's share of failed/blocked/timed-out runs may exceed the
      baseline's by at most this (absolute: 0.05 = five points).
    - `max_latency_ratio`: candidate p95 latency ≤ this × baseline p95 — or at most
      `min_latency_increase_ms` above it (differences below that are noise, not a regression).
    - `max_cost_ratio`: candidate mean cost per run ≤ this × baseline's (when the baseline
      costs anything).
    - `max_score_drop`: candidate mean score ≥ baseline mean − this. A run's score is the
      mean of its run-time check scores, or of `score_metric` (e.g. `judge`, from online
      sampling and shadow judging) when set.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_error_rate: float = Field(default=0.05, ge=0, le=1)
    max_latency_ratio: float = Field(default=1.5, ge=1)
    min_latency_increase_ms: float = Field(default=250.0, ge=0)
    max_cost_ratio: float = Field(default=1.5, ge=1)
    max_score_drop: float = Field(default=0.1, ge=0, le=1)
    score_metric: str | None = Field(default=None, min_length=1, max_length=100)
    min_runs: int = Field(default=20, ge=1, le=1_000_000)
    window_minutes: int = Field(default=60, ge=1, le=30 * 24 * 60)


@dataclass(frozen=True)
class Rollout:
    """A rollout as callers see it (a detached copy of the row)."""

    id: str
    agent: str
    prompt_name: str
    alias: str
    baseline_version: int
    candidate_version: int
    percent: float
    shadow: bool
    thresholds: RolloutThresholds
    status: str
    reason: str
    report_id: str | None
    created_by: str
    created_at: datetime
    ended_by: str | None = None
    ended_at: datetime | None = None
    last_checked_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.status == RolloutStatus.ACTIVE

    @property
    def canary_alias(self) -> str:
        return canary_alias(self.alias)

    @classmethod
    def of(cls, row: PromptRollout) -> Rollout:
        return cls(
            id=row.id,
            agent=row.agent,
            prompt_name=row.prompt_name,
            alias=row.alias,
            baseline_version=row.baseline_version,
            candidate_version=row.candidate_version,
            percent=float(row.percent),
            shadow=bool(row.shadow),
            thresholds=RolloutThresholds.model_validate(row.thresholds or {}),
            status=row.status,
            reason=row.reason,
            report_id=row.report_id,
            created_by=row.created_by,
            created_at=row.created_at,
            ended_by=row.ended_by,
            ended_at=row.ended_at,
            last_checked_at=row.last_checked_at,
        )


def canary_alias(alias: str) -> str:
    """The alias a rollout of ALIAS keeps on its candidate (its history tells the rollout's
    story; only rollouts move it)."""
    return f"{alias}{CANARY_SUFFIX}"


def bucket(rollout_id: str, user_id: str) -> float:
    """The user's position in [0, 1) for this rollout: a hash, so stable and uniform."""
    digest = hashlib.sha256(f"{rollout_id}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assigned_to_candidate(rollout_id: str, user_id: str, percent: float) -> bool:
    """Whether USER_ID runs the candidate of a rollout exposing PERCENT % of users."""
    return bucket(rollout_id, user_id) < percent / 100.0


class RolloutStore:
    """Reading rollouts; the session-level writes the promotion operations compose."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, rollout_id: str) -> Rollout:
        with self.db.transaction() as s:
            row = s.get(PromptRollout, rollout_id)
            if row is None:
                raise NotFound("rollout", rollout_id)
            return Rollout.of(row)

    def active(self, prompt_name: str, alias: str) -> Rollout | None:
        with self.db.transaction() as s:
            row = self.active_row(s, prompt_name, alias)
            return Rollout.of(row) if row is not None else None

    def active_for_prompt(self, prompt_name: str) -> list[Rollout]:
        with self.db.transaction() as s:
            rows = s.scalars(
                select(PromptRollout).where(
                    PromptRollout.prompt_name == prompt_name,
                    PromptRollout.status == RolloutStatus.ACTIVE,
                )
            )
            return [Rollout.of(r) for r in rows]

    def all_active(self) -> list[Rollout]:
        with self.db.transaction() as s:
            rows = s.scalars(
                select(PromptRollout)
                .where(PromptRollout.status == RolloutStatus.ACTIVE)
                .order_by(PromptRollout.created_at)
            )
            return [Rollout.of(r) for r in rows]

    def history(self, agent: str, *, limit: int = 20) -> list[Rollout]:
        """The agent's rollouts, newest first."""
        with self.db.transaction() as s:
            rows = s.scalars(
                select(PromptRollout)
                .where(PromptRollout.agent == agent)
                .order_by(PromptRollout.created_at.desc(), PromptRollout.id.desc())
                .limit(limit)
            )
            return [Rollout.of(r) for r in rows]

    @staticmethod
    def active_row(s: Session, prompt_name: str, alias: str) -> PromptRollout | None:
        return s.scalars(
            select(PromptRollout).where(
                PromptRollout.prompt_name == prompt_name,
                PromptRollout.alias == alias,
                PromptRollout.status == RolloutStatus.ACTIVE,
            )
        ).first()

    @staticmethod
    def end(s: Session, row: PromptRollout, status: RolloutStatus, reason: str, actor: str) -> None:
        row.status = status
        row.reason = reason
        row.ended_by = actor
        row.ended_at = utcnow()

    def touch(self, rollout_id: str) -> None:
        """Record that the monitor looked at the rollout now."""
        with self.db.transaction() as s:
            row = s.get(PromptRollout, rollout_id)
            if row is not None:
                row.last_checked_at = utcnow()


class RolloutRouter:
    """The fabric's `PromptRouter`: the candidate version for users in an active canary of
    the alias a run resolves, None (the alias's own version) for everyone else."""

    def __init__(self, store: RolloutStore) -> None:
        self.store = store

    def route(self, agent: LoadedAgent, prompt_name: str, alias: str, user_id: str) -> int | None:
        rollout = self.store.active(prompt_name, alias)
        if rollout is None or rollout.percent <= 0:
            return None
        if assigned_to_candidate(rollout.id, user_id, rollout.percent):
            return rollout.candidate_version
        return None

"""Scores of production runs (`eval_scores`): what the run-time checks, online sampling and
shadow judging measured, per run — and summed up per prompt version.

Writing is idempotent per (run, source, metric): a check step that re-executes after a crash,
or a listener told twice, records a score once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from keel.store.database import Database
from keel.store.tables import EvalScore
from keel.store.types import utcnow

SOURCES = ("check", "online", "shadow")


@dataclass(frozen=True)
class ScoredRun:
    """The run a score belongs to (copied onto each score row, so summaries need no join)."""

    run_id: str
    tenant_id: str
    agent: str
    prompt_name: str | None
    prompt_version: int | None


@dataclass(frozen=True)
class VersionScore:
    """One metric of one source on one prompt version: how many runs, their mean."""

    prompt_version: int | None
    source: str
    metric: str
    runs: int
    mean: float


def insert_ignoring_duplicates(s: Session, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT … ON CONFLICT DO NOTHING on SQLite and PostgreSQL alike."""
    if not rows:
        return
    dialect = s.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    s.execute(insert(table).values(list(rows)).on_conflict_do_nothing())


class ScoreStore:
    """Record and read run scores."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self,
        run: ScoredRun,
        source: str,
        scores: Mapping[str, tuple[float, str]],
        *,
        session: Session | None = None,
    ) -> None:
        """Store SCORES (metric → (value in [0, 1], reason)) of RUN from SOURCE."""
        if source not in SOURCES:
            raise ValueError(f"unknown score source {source!r}")
        now = utcnow()
        rows = [
            {
                "run_id": run.run_id,
                "tenant_id": run.tenant_id,
                "agent": run.agent,
                "prompt_name": run.prompt_name,
                "prompt_version": run.prompt_version,
                "source": source,
                "metric": metric,
                "value": float(value),
                "reason": reason[:2000],
                "created_at": now,
            }
            for metric, (value, reason) in sorted(scores.items())
        ]
        if session is not None:
            insert_ignoring_duplicates(session, EvalScore, rows)
            return
        with self.db.transaction() as s:
            insert_ignoring_duplicates(s, EvalScore, rows)

    def for_run(self, run_id: str) -> dict[tuple[str, str], float]:
        """(source, metric) → value for one run."""
        with self.db.transaction() as s:
            rows = s.execute(
                select(EvalScore.source, EvalScore.metric, EvalScore.value).where(
                    EvalScore.run_id == run_id
                )
            ).all()
        return {(r.source, r.metric): float(r.value) for r in rows}

    def run_means(
        self, run_ids: Iterable[str], *, metric: str | None = None, source: str | None = None
    ) -> dict[str, float]:
        """Per run, the mean of its scores (of METRIC and/or SOURCE when given); runs with no
        such score are absent."""
        ids = list(run_ids)
        out: dict[str, float] = {}
        for start in range(0, len(ids), 500):
            q = (
                select(EvalScore.run_id, func.avg(EvalScore.value))
                .where(EvalScore.run_id.in_(ids[start : start + 500]))
                .group_by(EvalScore.run_id)
            )
            if metric is not None:
                q = q.where(EvalScore.metric == metric)
            if source is not None:
                q = q.where(EvalScore.source == source)
            with self.db.transaction() as s:
                out.update({str(r[0]): float(r[1]) for r in s.execute(q).all()})
        return out

    def by_version(
        self, prompt_name: str, *, since: datetime | None = None, tenant_id: str | None = None
    ) -> list[VersionScore]:
        """Every (version, source, metric) of PROMPT_NAME with its run count and mean, newest
        version first."""
        q = (
            select(
                EvalScore.prompt_version,
                EvalScore.source,
                EvalScore.metric,
                func.count(func.distinct(EvalScore.run_id)),
                func.avg(EvalScore.value),
            )
            .where(EvalScore.prompt_name == prompt_name)
            .group_by(EvalScore.prompt_version, EvalScore.source, EvalScore.metric)
        )
        if since is not None:
            q = q.where(EvalScore.created_at >= since)
        if tenant_id is not None:
            q = q.where(EvalScore.tenant_id == tenant_id)
        with self.db.transaction() as s:
            rows = s.execute(q).all()
        out = [
            VersionScore(
                prompt_version=r[0],
                source=str(r[1]),
                metric=str(r[2]),
                runs=int(r[3]),
                mean=float(r[4]),
            )
            for r in rows
        ]
        return sorted(out, key=lambda v: (-(v.prompt_version or 0), v.source, v.metric))

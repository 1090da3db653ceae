"""Online evaluation: judging production runs after the fact, never on the run's path.

- `OnlineSampler.on_finished` (a run-end listener) picks `evals.online.sample` of an agent's
  finished production runs — deterministically: a run is picked when the hash of its id,
  read as a number in [0, 1), is below the share, so a repeated notification picks the same
  runs — and only inserts a pending row in `online_evals`. Eval runs and shadow runs are
  not production runs.
- `OnlineJudge.score_pending` (periodic: the fabric's sweep) judges pending rows with the
  agent's judge panels and stores the scores in `eval_scores` (source `online`, or `shadow`
  for shadow runs), per prompt version. A row whose judging fails is retried on the next
  sweeps, then marked failed with the error.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import func, select

from keel.evals.checks import live_case, live_output
from keel.evals.fabric_runner import EVAL_TENANT
from keel.evals.panel import PanelResult
from keel.evals.runner import CaseOutput
from keel.evals.score_store import ScoredRun, ScoreStore, insert_ignoring_duplicates
from keel.evals.suite import EvalSuite
from keel.store.database import Database
from keel.store.tables import OnlineEval, Run
from keel.store.types import utcnow

if TYPE_CHECKING:
    from keel.fabric.runs import RunView

MAX_ATTEMPTS = 3
T = TypeVar("T")
SuiteByName = Callable[[str], EvalSuite | None]
log = logging.getLogger(__name__)


def sampled(run_id: str, share: float) -> bool:
    """Whether online sampling at SHARE picks RUN_ID (stable: a hash of the id)."""
    if share <= 0:
        return False
    digest = hashlib.sha256(f"online:{run_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def run_coroutine(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from synchronous code, also when this thread already
    has a running event loop (then on a short-lived thread of its own)."""

    async def main() -> T:
        return await factory()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


@dataclass(frozen=True)
class PendingEval:
    run_id: str
    agent: str
    source: str
    attempts: int


class OnlineQueue:
    """The `online_evals` rows: runs waiting to be judged."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def enqueue(self, run_id: str, agent: str, source: str) -> None:
        """Queue RUN_ID for judging (once: a second call for the same run is ignored)."""
        with self.db.transaction() as s:
            insert_ignoring_duplicates(
                s,
                OnlineEval,
                [
                    {
                        "run_id": run_id,
                        "agent": agent,
                        "source": source,
                        "status": "pending",
                        "attempts": 0,
                        "created_at": utcnow(),
                    }
                ],
            )

    def pending(self, limit: int) -> list[PendingEval]:
        with self.db.transaction() as s:
            rows = s.scalars(
                select(OnlineEval)
                .where(OnlineEval.status == "pending")
                .order_by(OnlineEval.created_at, OnlineEval.run_id)
                .limit(limit)
            )
            return [PendingEval(r.run_id, r.agent, r.source, r.attempts) for r in rows]

    def finish(self, run_id: str, *, error: str | None = None) -> None:
        with self.db.transaction() as s:
            row = s.get(OnlineEval, run_id)
            if row is None:
                return
            row.attempts += 1
            if error is None:
                row.status, row.error, row.scored_at = "done", None, utcnow()
            else:
                row.error = error[:2000]
                if row.attempts >= MAX_ATTEMPTS:
                    row.status = "failed"

    def counts(self) -> dict[str, int]:
        with self.db.transaction() as s:
            rows = s.execute(
                select(OnlineEval.status, func.count()).group_by(OnlineEval.status)
            ).all()
        return {str(status): int(n) for status, n in rows}


class OnlineSampler:
    """Run-end listener: queue the configured share of an agent's production runs."""

    def __init__(self, queue: OnlineQueue, suite_for: SuiteByName) -> None:
        self.queue = queue
        self.suite_for = suite_for

    def on_finished(self, view: RunView) -> None:
        if view.status != "succeeded" or view.tenant_id == EVAL_TENANT:
            return
        if (view.idempotency_key or "").startswith("shadow:"):
            return
        suite = self.suite_for(view.agent)
        if suite is None or not suite.panels:
            return
        if sampled(view.id, suite.config.online.sample):
            self.queue.enqueue(view.id, view.agent, "online")


class OnlineJudge:
    """Periodic job: judge the pending runs and store their scores."""

    def __init__(
        self, db: Database, queue: OnlineQueue, scores: ScoreStore, suite_for: SuiteByName
    ) -> None:
        self.db = db
        self.queue = queue
        self.scores = scores
        self.suite_for = suite_for

    def score_pending(self, limit: int = 50) -> int:
        """Judge up to LIMIT pending runs; returns how many were scored."""
        done = 0
        for item in self.queue.pending(limit):
            try:
                self._score(item)
            except Exception as exc:  # a judge or a model outage: retried on the next sweep
                log.warning("online eval of %s failed: %s", item.run_id, exc)
                self.queue.finish(item.run_id, error=f"{type(exc).__name__}: {exc}")
                continue
            self.queue.finish(item.run_id)
            done += 1
        return done

    def _score(self, item: PendingEval) -> None:
        with self.db.transaction() as s:
            run = s.get(Run, item.run_id)
            if run is None:
                raise LookupError(f"run {item.run_id} no longer exists")
            target = ScoredRun(
                run.id, run.tenant_id, run.agent, run.prompt_name, run.prompt_version
            )
            run_input, output, status = dict(run.input), run.output, run.status
        suite = self.suite_for(item.agent)
        if suite is None or not suite.panels:
            return
        case = live_case(item.run_id, run_input)
        produced = (
            live_output(output)
            if status == "succeeded" and output is not None
            else CaseOutput(error=f"run {status}")
        )
        panels = suite.panels

        async def judge_all() -> list[PanelResult]:
            return list(await asyncio.gather(*(p.score(case, produced) for p in panels)))

        results = run_coroutine(judge_all)
        scores: dict[str, tuple[float, str]] = {}
        for panel, result in zip(panels, results, strict=True):
            if result.score is None:
                raise RuntimeError(
                    f"every judge of {panel.name} failed: {'; '.join(result.failures)}"
                )
            why = "; ".join(f"{v.judge}: {v.raw}" for v in result.verdicts) or "run failed"
            scores[panel.name] = (result.score, why)
        self.scores.record(target, item.source, scores)

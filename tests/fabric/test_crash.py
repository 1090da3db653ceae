"""The crash harness: a worker process is SIGKILLed again and again — right after a model step,
inside a tool, while runs wait for approval, and at random moments — and restarted, while 60
runs go through it. Afterwards:

- every run reached exactly one terminal state (and it is `succeeded`);
- no model call whose step had completed was executed again (each logged invocation started
  before DBOS recorded that step's completion);
- every tool side effect keyed by its idempotency key took effect exactly once.

Runs on SQLite and PostgreSQL. Seeded (KEEL_CRASH_SEED) so a failure can be replayed.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from keel.fabric.events import EventType
from keel.fabric.service import Fabric
from keel.fabric.states import TERMINAL
from keel.identity.principal import Principal
from keel.settings import Settings
from keel.store.tables import Run, RunEvent
from tests.fabric.probe import effects
from tests.fabric.workers import Worker

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
LEDGER_RUNS, PAYMENT_RUNS = 45, 15
BUDGET_SECONDS = 240
PHASES = ("model", "tool", "approval", "random")
WAVES = 16


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return False


class Probe:
    """What the harness reads from the shared database while the worker lives and dies."""

    def __init__(self, fab: Fabric) -> None:
        self.fab = fab

    def newest_event(self) -> int:
        with self.fab.db.transaction() as s:
            return int(s.scalar(select(func.max(RunEvent.id))) or 0)

    def new_event(self, kind: str, since: int) -> Callable[[], bool]:
        def seen() -> bool:
            with self.fab.db.transaction() as s:
                q = select(RunEvent.id).where(RunEvent.id > since, RunEvent.type == kind).limit(1)
                return s.scalar(q) is not None

        return seen

    def unfinished(self) -> int:
        with self.fab.db.transaction() as s:
            q = select(func.count(Run.id)).where(Run.status.not_in(list(TERMINAL)))
            return int(s.scalar(q) or 0)

    def approve_all(self) -> None:
        for a in self.fab.approvals("t1", status="pending"):
            self.fab.approve("t1", a.id, "harness")

    def kill_point(self, phase: str, rng: random.Random) -> bool:
        """Wait for PHASE's moment (True when it came) — the caller kills the worker then."""
        mark = self.newest_event()
        if phase == "model":
            return _wait_for(self.new_event(EventType.MODEL_RESPONSE, mark), 10)
        if phase == "tool":
            return _wait_for(self.new_event(EventType.TOOL_REQUESTED, mark), 10)
        if phase == "approval":
            return _wait_for(lambda: bool(self.fab.approvals("t1", status="pending")), 10)
        time.sleep(rng.uniform(0.05, 1.5))
        return True


def _drive(
    fab: Fabric, settings: Settings, rng: random.Random, log: Path
) -> tuple[list[str], Counter[str]]:
    """Submit the runs in waves and kill the worker once per wave at a chosen moment; then let
    a last worker finish everything."""
    alice = Principal(tenant_id="t1", user_id="alice")
    requests = [("ledger", f"Post entry E-{i} for 100 EUR") for i in range(LEDGER_RUNS)]
    requests += [("payments", f"Pay invoice INV-{i} to Acme") for i in range(PAYMENT_RUNS)]
    rng.shuffle(requests)
    waves = [requests[i::WAVES] for i in range(WAVES)]
    probe = Probe(fab)
    worker = Worker(settings, "crash-worker", log)
    ids: list[str] = []
    kills: Counter[str] = Counter()
    started = time.monotonic()
    try:
        cycle = 0
        while (cycle < WAVES or probe.unfinished()) and time.monotonic() - started < BUDGET_SECONDS:
            if cycle < WAVES:
                ids += [fab.submit(alice, agent, {"question": q}).id for agent, q in waves[cycle]]
            phase = PHASES[cycle % len(PHASES)]
            cycle += 1
            worker.start()
            hit = probe.kill_point(phase, rng)
            worker.kill()
            kills[phase] += hit
            if rng.random() < 0.7:
                probe.approve_all()  # decisions arrive while no worker is alive
        worker.start()
        if not _wait_for(lambda: (probe.approve_all(), probe.unfinished())[1] == 0, 120):
            stuck = [v for v in (fab.get("t1", i) for i in ids) if not v.terminal]
            raise AssertionError(
                f"runs left unfinished: {[(v.id, v.status, v.segment) for v in stuck]}"
            )
    finally:
        worker.stop()
    return ids, kills


def _model_steps_repeated(fab: Fabric, settings: Settings) -> int:
    """Assert no model invocation started after its step's completion was recorded; return how
    many interrupted (never completed) model steps ran again."""
    calls = effects().rows(settings.home, "SELECT workflow_id, step_id, at FROM model_calls")
    completed: dict[tuple[str, int], float] = {}
    for wid in {str(c[0]) for c in calls}:
        for step in fab.engine.steps(wid):
            if step["completed_at_epoch_ms"] is not None:
                completed[(wid, int(step["function_id"]))] = step["completed_at_epoch_ms"] / 1000
    for wid, step_id, at in calls:
        key = (str(wid), int(str(step_id)))
        assert key in completed, key
        assert float(str(at)) <= completed[key] + 0.001, (
            f"model step {key} ran again after it completed"
        )
    per_step = Counter((str(c[0]), int(str(c[1]))) for c in calls)
    return sum(n - 1 for n in per_step.values())


def test_runs_survive_a_worker_killed_at_random_points(
    harness: tuple[Fabric, Settings], tmp_path: Path
) -> None:
    fab, settings = harness
    seed = int(os.environ.get("KEEL_CRASH_SEED", "20261125"))
    ids, kills = _drive(fab, settings, random.Random(seed), tmp_path / "worker.log")

    assert len(ids) == LEDGER_RUNS + PAYMENT_RUNS
    assert sum(kills.values()) >= 12 and all(kills[p] >= 2 for p in PHASES), kills
    ends = {f"run.{s}" for s in TERMINAL}
    for run_id in ids:
        assert fab.get("t1", run_id).status == "succeeded", run_id
        assert [e.type for e in fab.events("t1", run_id) if e.type in ends] == [
            EventType.RUN_SUCCEEDED
        ]
    repeats = _model_steps_repeated(fab, settings)
    # every keyed side effect (ledger entries, approved payments) took effect exactly once
    per_run = effects().rows(settings.home, "SELECT run_id, count(*) FROM effects GROUP BY run_id")
    assert sorted(str(r[0]) for r in per_run) == sorted(ids)
    assert {int(str(r[1])) for r in per_run} == {1}
    attempts = effects().rows(settings.home, "SELECT count(*) FROM attempts")[0][0]
    print(f"\ncrash harness (seed {seed}): kills {dict(kills)}, interrupted model steps re-run {repeats}, "
          f"tool attempts {attempts} for {len(ids)} effects")  # fmt: skip

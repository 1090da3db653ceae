"""Several workers on PostgreSQL share the queues: 200 queued runs, two worker processes, and
every run executes exactly once (each model step once, each tool call once)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from keel.fabric.events import EventType
from keel.fabric.service import Fabric
from keel.identity.principal import Principal
from keel.settings import Settings
from tests.fabric.probe import effects
from tests.fabric.workers import Worker

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
RUNS = 200


@pytest.mark.parametrize("migrated_database_url", ["postgres"], indirect=True)
def test_two_workers_execute_each_of_200_queued_runs_once(
    harness: tuple[Fabric, Settings], tmp_path: Path
) -> None:
    fab, settings = harness
    alice = Principal(tenant_id="t1", user_id="alice")
    ids = [
        fab.submit(alice, "ledger", {"question": f"Post entry W-{i} for 5 EUR"}).id
        for i in range(RUNS)
    ]
    workers = [Worker(settings, f"worker-{n}", tmp_path / f"worker-{n}.log") for n in (1, 2)]
    try:
        for w in workers:
            w.start()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and any(
            not fab.get("t1", i).terminal for i in ids[-5:] + ids[:5]
        ):
            time.sleep(0.2)
        while time.monotonic() < deadline and sum(not fab.get("t1", i).terminal for i in ids):
            time.sleep(0.5)
    finally:
        for w in workers:
            w.stop()
    assert Counter(fab.get("t1", i).status for i in ids) == {"succeeded": RUNS}
    calls = effects().rows(settings.home, "SELECT workflow_id, step_id FROM model_calls")
    assert len(calls) == 2 * RUNS and len(set(calls)) == 2 * RUNS  # every model step ran once
    per_key = effects().rows(settings.home, "SELECT key, count(*) FROM attempts GROUP BY key")
    assert len(per_key) == RUNS and {int(str(n)) for _k, n in per_key} == {
        1
    }  # every tool call ran once
    assert effects().rows(settings.home, "SELECT count(*) FROM effects") == [(RUNS,)]
    ran_on = Counter(
        next(e.data["worker"] for e in fab.events("t1", i) if e.type == EventType.RUN_STARTED)
        for i in ids
    )
    assert set(ran_on) == {"worker-1", "worker-2"}, ran_on

"""The event log: dense per-run seqs, and a keyed event written once however often it is sent."""

from __future__ import annotations

from keel.fabric import events
from keel.identity.keys import ensure_tenant
from keel.store.database import Database
from keel.store.tables import Run
from keel.store.types import utcnow


def test_a_keyed_event_is_written_once_and_seqs_stay_dense(db: Database) -> None:
    ensure_tenant(db, "t1")
    with db.transaction() as s:
        s.add(Run(id="run_e", tenant_id="t1", user_id="u", agent="a", spec_version="v", model="m",
                  input={}, created_at=utcnow()))  # fmt: skip
    for attempt in range(3):  # e.g. a step re-executed after a crash
        with db.transaction(lock=True) as s:
            run = s.get(Run, "run_e")
            assert run is not None
            first = events.append(s, run, "a", {"n": 1}, key="step:1")
            events.append(s, run, "b", {"n": 2})  # unkeyed: always written
            assert (first is None) == (attempt > 0)
    with db.transaction() as s:
        read = events.read(s, "run_e")
        assert [(e.seq, e.type) for e in read] == [(1, "a"), (2, "b"), (3, "b"), (4, "b")]
        assert s.get(Run, "run_e").event_seq == 4  # type: ignore[union-attr]

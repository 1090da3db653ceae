from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from keel.control.ledger import (
    GENESIS_HASH,
    AuditKind,
    Ledger,
    Problem,
    canonical_json,
    entry_hash,
)
from keel.errors import InvalidInput
from keel.store.database import Database


@pytest.fixture
def ledger(db: Database) -> Ledger:
    return Ledger(db)


def _fill(ledger: Ledger, n: int, tenant: str | None = "acme") -> None:
    for i in range(n):
        ledger.append(
            actor="agent:sales",
            kind=AuditKind.TOOL_DECISION,
            subject=f"call-{i}",
            data={"i": i, "decision": "ALLOW"},
            tenant_id=tenant,
        )


def _sql(db: Database, statement: str, **params: object) -> None:
    with db.engine.begin() as conn:
        conn.execute(text(statement), params)


def test_entries_chain_from_genesis_and_verify_clean(ledger: Ledger) -> None:
    first = ledger.append(actor="alice", kind="policy", subject="deploy", data={"n": 1})
    second = ledger.append(actor="alice", kind="policy", data={"n": 2})
    assert (first.seq, first.prev_hash) == (1, GENESIS_HASH)
    assert second.prev_hash == first.hash
    assert first.tenant_id is None
    report = ledger.verify()
    assert report.ok and report.count == 2 and report.first_bad is None
    assert report.heads == {"": second.hash}
    assert ledger.head(None) == (2, second.hash)


def test_chains_are_per_tenant_with_dense_sequences(ledger: Ledger) -> None:
    _fill(ledger, 3, "acme")
    _fill(ledger, 2, "globex")
    _fill(ledger, 1, None)
    assert [e.seq for e in ledger.entries(tenant_id="acme")] == [3, 2, 1]
    assert [e.seq for e in ledger.entries(tenant_id="globex")] == [2, 1]
    assert [e.tenant_id for e in ledger.entries(global_only=True)] == [None]
    report = ledger.verify()
    assert report.ok and report.count == 6 and set(report.heads) == {"", "acme", "globex"}
    assert ledger.verify("globex").count == 2


def test_hash_is_recomputable_from_the_stored_fields(ledger: Ledger) -> None:
    entry = ledger.append(actor="bob", kind="approval", subject="run_1", data={"ok": True})
    again = entry_hash(
        prev_hash=entry.prev_hash,
        entry_id=entry.id,
        seq=entry.seq,
        tenant_id=entry.tenant_id,
        actor=entry.actor,
        kind=entry.kind,
        subject=entry.subject,
        data_json=canonical_json(entry.data),
        created_at=entry.created_at,
    )
    assert again == entry.hash


def test_canonical_form_survives_both_databases(ledger: Ledger) -> None:
    """Key order, floats that JSONB would re-render, big ints, unicode and microseconds."""
    tricky = {
        "z": 1,
        "a": {"y": [3, 2, 1], "b": None},
        "float_big": 1e16,
        "float_small": 1.5e-7,
        "float_plain": 0.1,
        "int_big": 2**63 + 1,
        "text": 'Å ä ö – ✓ "quoted" \\ back',
        "bool": False,
    }
    entry = ledger.append(actor="a", kind="credential", data=tricky, tenant_id="t1")
    [read] = ledger.entries(tenant_id="t1")
    assert read.data == tricky
    assert read.created_at == entry.created_at
    assert read.created_at.microsecond == entry.created_at.microsecond
    assert ledger.verify().ok


def test_non_json_data_and_bad_kind_are_refused(ledger: Ledger) -> None:
    with pytest.raises(InvalidInput) as info:
        ledger.append(actor="a", kind="policy", data={"x": {1, 2}})
    assert info.value.field == "data.x"
    with pytest.raises(InvalidInput):
        ledger.append(actor="a", kind="policy", data={"x": float("nan")})
    with pytest.raises(InvalidInput) as info:
        ledger.append(actor="a", kind="Drop Table", data={})
    assert info.value.field == "kind"
    with pytest.raises(InvalidInput):
        ledger.append(actor="", kind="policy")
    assert ledger.verify().count == 0


def test_edited_data_is_detected_at_that_entry(ledger: Ledger, db: Database) -> None:
    _fill(ledger, 5)
    _sql(db, "UPDATE audit_entries SET data = :d WHERE seq = 3", d='{"decision":"DENY","i":2}')
    bad = ledger.verify().first_bad
    assert bad is not None
    assert (bad.seq, bad.problem, bad.tenant_id) == (3, Problem.EDITED, "acme")


def test_edited_actor_is_detected(ledger: Ledger, db: Database) -> None:
    _fill(ledger, 3)
    _sql(db, "UPDATE audit_entries SET actor = 'someone-else' WHERE seq = 1")
    bad = ledger.verify().first_bad
    assert bad is not None and (bad.seq, bad.problem) == (1, Problem.EDITED)


def test_deleted_entry_is_detected_at_the_gap(ledger: Ledger, db: Database) -> None:
    _fill(ledger, 5)
    _sql(db, "DELETE FROM audit_entries WHERE seq = 2")
    bad = ledger.verify().first_bad
    assert bad is not None
    assert (bad.seq, bad.problem) == (2, Problem.DELETED)
    assert "#2 missing" in bad.reason


def test_swapped_entries_are_detected_as_reordered(ledger: Ledger, db: Database) -> None:
    _fill(ledger, 5)
    _sql(db, "UPDATE audit_entries SET seq = -1 WHERE seq = 3")
    _sql(db, "UPDATE audit_entries SET seq = 3 WHERE seq = 4")
    _sql(db, "UPDATE audit_entries SET seq = 4 WHERE seq = -1")
    bad = ledger.verify().first_bad
    assert bad is not None
    assert (bad.seq, bad.problem) == (3, Problem.REORDERED)
    assert "written as #4" in bad.reason


def test_deleted_last_entry_is_a_truncated_tail(ledger: Ledger, db: Database) -> None:
    _fill(ledger, 4)
    _sql(db, "DELETE FROM audit_entries WHERE seq = 4")
    bad = ledger.verify().first_bad
    assert bad is not None
    assert (bad.seq, bad.problem) == (4, Problem.TRUNCATED)


def test_renumbered_gap_is_still_detected(ledger: Ledger, db: Database) -> None:
    """Deleting #2 and shifting the rest down to hide the gap breaks their hashes."""
    _fill(ledger, 4)
    _sql(db, "DELETE FROM audit_entries WHERE seq = 2")
    for seq in (3, 4):
        _sql(db, "UPDATE audit_entries SET seq = :n WHERE seq = :o", n=seq - 1, o=seq)
    _sql(db, "UPDATE audit_heads SET seq = 3")
    bad = ledger.verify().first_bad
    assert bad is not None and bad.seq == 2
    assert bad.problem in {Problem.REORDERED, Problem.EDITED}


def test_rewritten_entry_with_recomputed_hash_breaks_the_next_link(
    ledger: Ledger, db: Database
) -> None:
    _fill(ledger, 3)
    [e2] = [e for e in ledger.entries(tenant_id="acme") if e.seq == 2]
    forged = entry_hash(
        prev_hash=e2.prev_hash,
        entry_id=e2.id,
        seq=2,
        tenant_id="acme",
        actor=e2.actor,
        kind=e2.kind,
        subject=e2.subject,
        data_json='{"decision":"DENY"}',
        created_at=e2.created_at,
    )
    _sql(
        db,
        "UPDATE audit_entries SET data = :d, hash = :h WHERE seq = 2",
        d='{"decision":"DENY"}',
        h=forged,
    )
    bad = ledger.verify().first_bad
    assert bad is not None and (bad.seq, bad.problem) == (3, Problem.BROKEN_LINK)


def test_tenant_moved_between_chains_is_detected(ledger: Ledger, db: Database) -> None:
    _fill(ledger, 2, "acme")
    _sql(db, "UPDATE audit_entries SET tenant_id = 'globex' WHERE seq = 2")
    bad = ledger.verify().first_bad
    assert bad is not None and (bad.seq, bad.problem) == (2, Problem.EDITED)


def test_missing_head_is_detected(ledger: Ledger, db: Database) -> None:
    _fill(ledger, 2)
    _sql(db, "DELETE FROM audit_heads")
    bad = ledger.verify().first_bad
    assert bad is not None and bad.problem == Problem.HEAD_MISSING


def test_append_joins_the_callers_transaction(ledger: Ledger, db: Database) -> None:
    with pytest.raises(RuntimeError), db.transaction() as s:
        ledger.append(actor="a", kind="credential", tenant_id="acme", session=s)
        raise RuntimeError("caller failed after appending")
    assert ledger.entries(tenant_id="acme") == []
    assert ledger.head("acme") == (0, GENESIS_HASH)
    ledger.append(actor="a", kind="credential", tenant_id="acme")
    assert ledger.verify().ok


def _concurrent_appends(urls: Iterator[Database], threads: int, per_thread: int) -> None:
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []
    dbs = [next(urls) for _ in range(threads)]

    def work(db: Database) -> None:
        try:
            barrier.wait(timeout=30)
            led = Ledger(db)
            for i in range(per_thread):
                led.append(actor="w", kind="tool_decision", data={"i": i}, tenant_id="acme")
                led.append(actor="w", kind="tool_decision", data={"i": i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(d,)) for d in dbs]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    for d in dbs:
        d.dispose()
    assert not errors, errors


def test_concurrent_appenders_never_fork_a_chain(database_url: str) -> None:
    """Separate engines (as separate processes would have) append to the same chains at once."""
    setup = Database(database_url)
    setup.upgrade()

    def engines() -> Iterator[Database]:
        while True:
            yield Database(database_url)

    threads, per_thread = 6, 15
    _concurrent_appends(engines(), threads, per_thread)
    ledger = Ledger(setup)
    report = ledger.verify()
    assert report.ok, report.first_bad
    assert report.count == 2 * threads * per_thread
    assert ledger.head("acme")[0] == threads * per_thread
    assert ledger.head(None)[0] == threads * per_thread
    setup.dispose()

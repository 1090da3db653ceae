"""The audit trail of gate decisions is tamper-evident: editing or deleting an entry is found
at that entry."""

from __future__ import annotations

from sqlalchemy import delete, update

from keel.control.ledger import Problem
from keel.identity.principal import Principal
from keel.store.tables import AuditEntry
from tests.control.harness import SCRIPTS, Gated, answer, calls, steps

ALICE = Principal(tenant_id="t1", user_id="alice", roles=("sales",))


async def _decisions(gated: Gated) -> list[int]:
    SCRIPTS["default"] = steps(
        calls(("read_records", {"query": "a"}), ("delete_records", {"record_id": "R-1"})),
        calls(("read_records", {"query": "b"}), step=2),
        answer("ok"),
    )
    view = gated.fabric.submit(ALICE, "clerk", {"question": "x"})
    await gated.fabric.wait("t1", view.id, timeout=30)
    entries = gated.plane.ledger.entries(tenant_id="t1", kind="tool_decision")
    assert [e.data["decision"] for e in reversed(entries)] == ["ALLOW", "DENY", "ALLOW"]
    assert gated.plane.ledger.verify("t1").ok
    return sorted(e.seq for e in entries)


async def test_a_rewritten_denial_is_detected_at_that_entry(gated: Gated) -> None:
    seqs = await _decisions(gated)
    denial = seqs[1]
    with gated.db.transaction() as s:
        row = s.query(AuditEntry).filter_by(chain="t1", seq=denial).one()
        s.execute(
            update(AuditEntry)
            .where(AuditEntry.id == row.id)
            .values(data=row.data.replace('"DENY"', '"ALLOW"'))
        )
    report = gated.plane.ledger.verify("t1")
    assert not report.ok and report.first_bad is not None
    assert (report.first_bad.seq, report.first_bad.problem) == (denial, Problem.EDITED)


async def test_a_deleted_decision_is_detected_at_its_position(gated: Gated) -> None:
    seqs = await _decisions(gated)
    with gated.db.transaction() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.chain == "t1", AuditEntry.seq == seqs[0]))
    report = gated.plane.ledger.verify("t1")
    assert report.first_bad is not None
    assert (report.first_bad.seq, report.first_bad.problem) == (seqs[0], Problem.DELETED)

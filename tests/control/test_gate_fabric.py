"""The gate in front of every tool call of a durable run: decisions as events and audit
entries, refusals the model sees, approvals with the policy's reason, credentials injected."""

from __future__ import annotations

from keel.identity.principal import Principal
from tests.control.harness import SCRIPTS, SEEN, Gated, answer, calls, ran, steps, tool_returns

ALICE = Principal(tenant_id="t1", user_id="alice", scopes=("*",), roles=("sales",))


async def test_a_denied_call_is_refused_and_the_run_goes_on(gated: Gated) -> None:
    SCRIPTS["default"] = steps(
        calls(("read_records", {"query": "acme"}), ("delete_records", {"record_id": "R-1"})),
        answer("done"),
    )
    view = gated.fabric.submit(ALICE, "clerk", {"question": "clean up acme"})
    done = await gated.fabric.wait("t1", view.id, timeout=30)
    assert done.status == "succeeded", done.error
    assert ran("delete_records") == [] and ran("read_records") == [{"query": "acme"}]
    decisions = [e.data for e in gated.fabric.events("t1", view.id) if e.type == "tool.decision"]
    assert [(d["tool"], d["decision"]) for d in decisions] == [
        ("read_records", "ALLOW"),
        ("delete_records", "DENY"),
    ]
    assert decisions[1]["policies"] == ["deletes-need-admin"]
    refusal = next(r for r in tool_returns(SEEN[-1]) if r.tool_name == "delete_records")
    assert refusal.outcome == "failed" and "deletes-need-admin" in str(refusal.content)

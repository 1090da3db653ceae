"""The gate outside the fabric (an inline run, as evals and tests use agents), its
fail-closed behaviour, and its decision as span attributes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text

from keel.agents.builder import build_agent
from keel.agents.deps import RunDeps
from keel.control.gate import Gate, GateCall
from keel.identity.principal import Principal
from keel.observability.tracing import Tracing
from tests.control.harness import (
    SCRIPTS,
    SEEN,
    Gated,
    answer,
    build_gated,
    calls,
    gated_settings,
    ran,
    reset,
    script_resolver,
    steps,
    stop,
    tool_returns,
)


async def test_an_inline_run_is_gated_and_audited_without_a_fabric(gated_sqlite: Gated) -> None:
    plane = gated_sqlite.plane
    loaded = plane.agents["clerk"]
    agent = build_agent(
        loaded, gated_sqlite.settings, capabilities=[*plane.capabilities(loaded), script_resolver()]
    )
    SCRIPTS["default"] = steps(
        calls(("read_records", {"query": "a"}), ("delete_records", {"record_id": "R-1"})),
        answer("ok"),
    )
    deps = RunDeps(run_id="inline-1", tenant_id="t1", user_id="eve", agent="clerk")
    result = await agent.run("tidy up", deps=deps, model="script:default", instructions="")
    assert result.output == "ok"
    assert ran("read_records") == [{"query": "a"}] and ran("delete_records") == []
    refused = next(r for r in tool_returns(SEEN[-1]) if r.tool_name == "delete_records")
    assert refused.outcome == "failed"
    entries = plane.ledger.entries(tenant_id="t1", kind="tool_decision")
    assert {(e.data["tool"], e.data["decision"]) for e in entries} == {
        ("read_records", "ALLOW"),
        ("delete_records", "DENY"),
    }
    assert all(e.data["run_id"] == "inline-1" for e in entries)


def test_the_gate_fails_closed(gated_sqlite: Gated) -> None:
    with gated_sqlite.db.transaction() as s:
        s.execute(text("DROP TABLE budgets"))
    call = GateCall("run_x", "t1", "eve", "clerk", "read_records", "c1", {"query": "a"})
    decision = Gate(gated_sqlite.plane).evaluate(call)
    assert decision.decision.value == "DENY" and decision.stage == "error"
    assert decision.reason.startswith("the gate could not decide (OperationalError")


@pytest.fixture
def traced(
    tmp_path: Path, sqlite_database_url: str
) -> Iterator[tuple[Gated, InMemorySpanExporter]]:
    reset()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    gated = build_gated(gated_settings(tmp_path, sqlite_database_url), tracing=Tracing(provider))
    yield gated, exporter
    stop(gated)
    reset()


async def test_the_decision_is_an_attribute_of_the_tool_span(
    traced: tuple[Gated, InMemorySpanExporter],
) -> None:
    gated, exporter = traced
    SCRIPTS["default"] = steps(
        calls(("read_records", {"query": "a"}), ("delete_records", {"record_id": "R-1"})),
        answer("ok"),
    )
    alice = Principal(tenant_id="t1", user_id="alice", roles=("sales",))
    view = gated.fabric.submit(alice, "clerk", {"question": "x"})
    await gated.fabric.wait("t1", view.id, timeout=30)
    spans = {s.name: dict(s.attributes or {}) for s in exporter.get_finished_spans()}
    allowed = spans["execute_tool read_records"]
    assert allowed["keel.gate.decision"] == "ALLOW"
    assert allowed["keel.gate.policies"] == ("permit-registered-tools",)
    assert allowed["keel.budget.tier"] == "allow" and allowed["keel.budget.remaining_pct"] >= 99
    denied = spans["execute_tool delete_records"]
    assert denied["keel.gate.decision"] == "DENY"
    assert denied["keel.gate.policies"] == ("deletes-need-admin",)

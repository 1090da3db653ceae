"""Tracing: a keel.run span with Keel's attributes around Pydantic AI's GenAI spans, in the
submitter's trace; nothing recorded when no exporter is configured."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from keel.fabric.catalog import AgentCatalog
from keel.fabric.service import Fabric
from keel.identity.keys import ensure_tenant
from keel.identity.principal import Principal
from keel.observability.tracing import Tracing
from keel.settings import Settings
from keel.store.database import Database


@pytest.fixture
def traced(
    fabric_settings: Settings,
) -> Iterator[tuple[Fabric, InMemorySpanExporter, TracerProvider]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    db = Database.from_settings(fabric_settings)
    db.upgrade()
    ensure_tenant(db, "t1")
    fab = Fabric(
        fabric_settings, db, AgentCatalog.load(fabric_settings, db), tracing=Tracing(provider)
    )
    fab.start(execute=True)
    yield fab, exporter, provider
    fab.stop()
    db.dispose()


async def test_a_run_is_one_trace_with_keel_and_genai_attributes(
    traced: tuple[Fabric, InMemorySpanExporter, TracerProvider], alice: Principal
) -> None:
    fab, exporter, provider = traced
    with provider.get_tracer("client").start_as_current_span("client.request") as outer:
        view = fab.submit(
            alice, "rune", {"question": "Which hospital projects in Stockholm start this year?"}
        )
    await fab.wait("t1", view.id, timeout=30)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    run = spans["keel.run"]
    assert run.attributes is not None
    assert {k: run.attributes[k] for k in ("keel.run_id", "keel.tenant_id", "keel.user_id", "keel.agent", "keel.prompt_version")} == {
        "keel.run_id": view.id, "keel.tenant_id": "t1", "keel.user_id": "alice", "keel.agent": "rune", "keel.prompt_version": 1,
    }  # fmt: skip
    assert (
        run.context.trace_id == outer.get_span_context().trace_id
    )  # continues the submitter's trace
    agent_span = next(s for s in spans.values() if s.name.startswith("invoke_agent"))
    assert agent_span.parent is not None and agent_span.parent.span_id == run.context.span_id
    assert any(name.startswith("chat offline:") for name in spans)
    assert "execute_tool search_projects" in spans
    assert not any(
        "Södersjukhuset" in str(s.attributes) for s in spans.values()
    )  # no content by default


def test_without_an_exporter_nothing_is_instrumented(fabric_settings: Settings) -> None:
    tracing = Tracing.from_settings(fabric_settings)
    assert not tracing.enabled and tracing.capability() is None
    with tracing.run_span({"keel.run_id": "run_x"}) as span:
        assert not span.is_recording()
    assert isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider
    )

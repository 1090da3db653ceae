"""A planted secret (the CRM token in the vault, used by an HTTP tool and by a careless python
tool that echoes it and fails with it) never appears in what the model is sent, in the tool
arguments it sees, in any run event, span, log record, run view or event as the API serves
them (`GET /v1/runs/{id}`, its event stream), in the audit ledger — or anywhere in the database, DBOS's checkpoints included."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic_ai.messages import ModelMessagesTypeAdapter
from sqlalchemy import MetaData, inspect, select

from keel.api.app import create_app
from keel.control.redactor import SecretRedactor
from keel.identity.keys import create_key
from keel.identity.principal import Principal
from keel.observability.tracing import Tracing
from tests.control.harness import (
    CRM_TOKEN,
    SCRIPTS,
    SEEN,
    Gated,
    answer,
    build_gated,
    calls,
    gated_settings,
    ran,
    reset,
    steps,
    stop,
    tool_returns,
)

ALICE = Principal(tenant_id="t1", user_id="alice", scopes=("*",), roles=("sales",))
DETECTOR = SecretRedactor([CRM_TOKEN])  # also finds its URL, hex and base64 encodings


@pytest.fixture
def traced(tmp_path: Path, database_url: str) -> Iterator[tuple[Gated, InMemorySpanExporter]]:
    reset()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # content in spans on purpose: the strictest setting must not leak either
    gated = build_gated(
        gated_settings(tmp_path, database_url), tracing=Tracing(provider, include_content=True)
    )
    yield gated, exporter
    stop(gated)
    reset()


def _leaks(text: str) -> bool:
    return CRM_TOKEN in text or DETECTOR.contains_secret(text)


def _database_rows(gated: Gated) -> Iterator[tuple[str, str]]:
    engine = gated.db.engine
    inspector = inspect(engine)
    schemas = (
        [None]
        if engine.dialect.name == "sqlite"
        else [
            s for s in inspector.get_schema_names() if s not in ("information_schema", "pg_catalog")
        ]
    )
    for schema in schemas:
        meta = MetaData()
        meta.reflect(engine, schema=schema)
        with engine.connect() as conn:
            for table in meta.sorted_tables:
                for row in conn.execute(select(table)):
                    cells = []
                    for value in row:
                        if isinstance(value, bytes | memoryview):
                            value = bytes(value).decode("utf-8", "replace")
                        cells.append(str(value))
                    yield table.fullname, " ".join(cells)


async def test_the_planted_secret_leaks_nowhere(
    traced: tuple[Gated, InMemorySpanExporter], caplog: pytest.LogCaptureFixture
) -> None:
    gated, exporter = traced
    caplog.set_level(logging.DEBUG)
    SCRIPTS["default"] = steps(
        calls(("crm_company", {"company_id": "C-001"}), ("crm_debug", {"mode": "echo"})),
        answer("checked"),
    )
    ok = gated.fabric.submit(ALICE, "clerk", {"question": "check the crm"})
    done = await gated.fabric.wait("t1", ok.id, timeout=30)
    assert done.status == "succeeded", done.error
    SCRIPTS["default"] = steps(calls(("crm_debug", {"mode": "fail"})), answer("failed"))
    bad = gated.fabric.submit(ALICE, "clerk", {"question": "check again"})
    failed = await gated.fabric.wait("t1", bad.id, timeout=60)

    # the tools really used the secret
    assert gated.crm.requests[0]["auth"] == f"Bearer {CRM_TOKEN}"
    assert len(ran("crm_debug")) >= 2
    returns = {r.tool_name: r.content for r in tool_returns(SEEN[1])}
    assert returns["crm_debug"] == {
        "token": "[REDACTED:secret]",
        "note": "the token is [REDACTED:secret]",
    }
    assert failed.status == "failed" and "[REDACTED:secret]" in str(failed.error)

    # what the model was sent, including the tool calls (arguments) it made
    for messages in SEEN:
        assert not _leaks(ModelMessagesTypeAdapter.dump_json(messages).decode())
    # run views and events, and the API's answers about them (run, event stream, approvals)
    for run_id in (ok.id, bad.id):
        view = gated.fabric.get("t1", run_id)
        assert not _leaks(json.dumps(dataclasses.asdict(view), default=str))
        events = gated.fabric.events("t1", run_id)
        assert events and not _leaks(
            json.dumps([dataclasses.asdict(e) for e in events], default=str)
        )
    app = create_app(gated.settings, gated.db, fabric=gated.fabric)
    headers = {"Authorization": f"Bearer {create_key(gated.db, 't1', 'alice').secret}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://keel.test") as api:
        for run_id in (ok.id, bad.id):
            run = await api.get(f"/v1/runs/{run_id}", headers=headers)
            stream = await api.get(f"/v1/runs/{run_id}/events", headers=headers)
            assert run.status_code == stream.status_code == 200
            assert "tool.result" in stream.text and "run." in stream.text
            assert not _leaks(run.text) and not _leaks(stream.text)
        approvals = await api.get("/v1/approvals", headers=headers)
        assert approvals.status_code == 200 and not _leaks(approvals.text)
    # spans (with content), log records, the audit ledger
    spans = exporter.get_finished_spans()
    assert any(s.name == "execute_tool crm_debug" for s in spans)
    for span in spans:
        assert not _leaks(span.to_json()), span.name
    for record in caplog.records:
        assert not _leaks(record.getMessage()) and not _leaks(record.exc_text or "")
    assert not _leaks(caplog.text)
    assert not _leaks(str([e.data for e in gated.plane.ledger.entries(limit=500)]))
    # and nowhere in the database: Keel's tables and DBOS's step checkpoints
    rows = list(_database_rows(gated))
    assert any("operation_outputs" in table for table, _ in rows)
    leaked = [table for table, text in rows if _leaks(text)]
    assert leaked == []

"""The client's pure parts: SSE decoding, retry timing, and models kept in step with the
committed `openapi.json`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel

from keel.client import models
from keel.client.retry import RetryPolicy, retry_after
from keel.client.sse import KEEP_ALIVE, Decoder, ServerSentEvent

OPENAPI = json.loads((Path(__file__).resolve().parents[2] / "openapi.json").read_text())


def decode(text: str) -> list[object]:
    decoder = Decoder()
    out = [decoder.feed(line) for line in text.split("\n")]
    return [o for o in out if o is not None]


def test_the_decoder_handles_ids_types_multiline_data_comments_and_crlf() -> None:
    stream = (
        ": keep-alive\n"
        'id: 1\nevent: run.started\ndata: {"a":1}\n\n'
        "data: line one\ndata: line two\n\n"
        "id: 3\r\nevent: output\r\ndata:no-space\r\nretry: 500\r\n\r\n"
        "event: lonely\n\n"
    )
    assert decode(stream) == [
        KEEP_ALIVE,
        ServerSentEvent("1", "run.started", '{"a":1}'),
        ServerSentEvent("1", "message", "line one\nline two"),
        ServerSentEvent("3", "output", "no-space", 500),
    ]


def test_retry_after_reads_seconds_and_http_dates() -> None:
    def response(value: str) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": value})

    assert retry_after(response("3")) == 3.0
    later = datetime.now(UTC) + timedelta(seconds=30)
    assert 25 <= (retry_after(response(format_datetime(later, usegmt=True))) or 0) <= 30
    assert retry_after(response("soon")) is None
    assert retry_after(httpx.Response(503)) is None


def test_backoff_grows_within_bounds_and_deletes_retry_only_unsent() -> None:
    policy = RetryPolicy(backoff=0.1, max_backoff=1.0)
    for attempt in range(1, 8):
        ceiling = min(1.0, 0.1 * 2 ** (attempt - 1))
        assert ceiling / 2 <= policy.delay(attempt) <= ceiling
    assert policy.delay(1, retry_after=4.0) == 4.0
    read_error = httpx.ReadError("reset")
    assert policy.can_retry("POST", read_error) and policy.can_retry("GET", read_error)
    assert not policy.can_retry("DELETE", read_error)
    assert policy.can_retry("DELETE", httpx.ConnectError("refused"))


PAIRS: list[tuple[type[BaseModel], str]] = [
    (models.Conversation, "ConversationPublic"),
    (models.Turn, "TurnPublic"),
    (models.Run, "RunPublic"),
    (models.RunEvent, "RunEventPublic"),
    (models.Approval, "ApprovalPublic"),
    (models.Feedback, "FeedbackPublic"),
    (models.Agent, "AgentPublic"),
    (models.AgentDescription, "AgentDescription"),
    (models.AgentTool, "AgentTool"),
    (models.AgentPrompt, "AgentPrompt"),
    (models.AgentModel, "AgentModel"),
    (models.Problem, "Problem"),
    (models.FieldError, "FieldError"),
]


@pytest.mark.parametrize(("model", "schema"), PAIRS, ids=[p[1] for p in PAIRS])
def test_client_models_have_exactly_the_fields_of_the_api_schemas(
    model: type[BaseModel], schema: str
) -> None:
    component = OPENAPI["components"]["schemas"][schema]
    assert set(model.model_fields) == set(component["properties"])
    required = {name for name, f in model.model_fields.items() if f.is_required()}
    assert required <= set(component.get("required", []))


def test_the_public_surface_is_pinned() -> None:
    import keel.client

    assert sorted(keel.client.__all__) == sorted(
        [
            "APIConnectionError", "APIError", "Agent", "AgentDescription", "Approval",
            "AsyncClient", "AsyncEventStream", "AuthenticationError", "Client",
            "ConflictError", "Conversation", "EventStream", "Feedback", "FieldError",
            "InvalidRequestError", "KeelClientError", "NotFoundError", "PermissionDeniedError",
            "Problem", "RateLimitError", "RetryPolicy", "Run", "RunEvent", "ServerError", "Turn",
        ]
    )  # fmt: skip


def test_the_client_needs_no_server_code() -> None:
    """Importing it loads nothing of the server side (fabric, api, store)."""
    import subprocess
    import sys

    code = (
        "import sys, keel.client; "
        "print(sorted(m for m in sys.modules if m.startswith('keel.') "
        "and not m.startswith('keel.client')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

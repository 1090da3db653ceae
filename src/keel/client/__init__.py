"""The typed Python client of Keel's API: `Client` (sync) and `AsyncClient` (asyncio).

    from keel.client import Client

    with Client("http://127.0.0.1:8000", api_key="keel_sk_…") as keel:
        conversation = keel.create_conversation("rune")
        for event in keel.stream_turn(conversation.id, {"question": "Hospital projects in Malmö?"}):
            if event.type == "output":
                print(event.data["text"])

It depends only on httpx and pydantic (no server code): models mirror `openapi.json`,
errors are `keel.client.errors` types carrying the problem+json, POSTs carry an automatic
`Idempotency-Key` reused by retries, and event streams resume with `Last-Event-ID`.
"""

from keel.client.aio import AsyncClient, AsyncEventStream
from keel.client.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    KeelClientError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from keel.client.models import (
    Agent,
    AgentDescription,
    Approval,
    Conversation,
    Feedback,
    FieldError,
    Problem,
    Run,
    RunEvent,
    Turn,
)
from keel.client.retry import RetryPolicy
from keel.client.sync import Client, EventStream

__all__ = (
    "APIConnectionError",
    "APIError",
    "Agent",
    "AgentDescription",
    "Approval",
    "AsyncClient",
    "AsyncEventStream",
    "AuthenticationError",
    "Client",
    "ConflictError",
    "Conversation",
    "EventStream",
    "Feedback",
    "FieldError",
    "InvalidRequestError",
    "KeelClientError",
    "NotFoundError",
    "PermissionDeniedError",
    "Problem",
    "RateLimitError",
    "RetryPolicy",
    "Run",
    "RunEvent",
    "ServerError",
    "Turn",
)

"""What `Client` and `AsyncClient` share: headers, keys, request building, parsing."""

from __future__ import annotations

import uuid
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from keel import __version__
from keel.client.calls import Call
from keel.client.retry import RetryPolicy

T = TypeVar("T")
USER_AGENT = f"keel-client/{__version__}"
EVENT_STREAM = "text/event-stream"


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = None
    has_more: bool = False


class ListOf(BaseModel, Generic[T]):
    data: list[T]


def new_idempotency_key() -> str:
    return f"keel-client-{uuid.uuid4()}"


class Options:
    """The client's configuration, validated once."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None,
        token: str | None,
        timeout: float,
        stream_timeout: float,
        retry: RetryPolicy | None,
        max_reconnects: int,
    ) -> None:
        if api_key is not None and token is not None:
            raise ValueError("give api_key or token, not both")
        if max_reconnects < 0:
            raise ValueError("max_reconnects must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        credential = api_key or token
        if credential:
            self.headers["Authorization"] = f"Bearer {credential}"
        self.timeout = timeout
        self.stream_timeout = stream_timeout
        self.retry = retry or RetryPolicy()
        self.max_reconnects = max_reconnects

    def request(
        self,
        http: httpx.Client | httpx.AsyncClient,
        call: Call,
        key: str | None,
        *,
        stream: bool = False,
        last_event_id: int = 0,
    ) -> httpx.Request:
        headers = dict(self.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        if stream:
            headers["Accept"] = EVENT_STREAM
            if last_event_id:
                headers["Last-Event-ID"] = str(last_event_id)
        timeout = httpx.Timeout(self.timeout, read=self.stream_timeout if stream else self.timeout)
        return http.build_request(
            call.method,
            self.base_url + call.path,
            params=call.params,
            json=call.json,
            headers=headers,
            timeout=timeout,
        )


def key_for(call: Call) -> str | None:
    """The Idempotency-Key to send: the caller's, or a fresh one for every POST."""
    if call.method != "POST":
        return None
    return call.key or new_idempotency_key()


def parse(model: type[T] | Any, content: bytes) -> T:
    adapter: TypeAdapter[T] = TypeAdapter(model)
    return adapter.validate_json(content)

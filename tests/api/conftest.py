"""API apps over each database backend, helpers to mint real API keys, and a real server.

- `api`: the app with a *submit-only* fabric (turns are recorded and queued, never executed):
  fast, for conversation, feedback and validation tests.
- `live`: the app over the executing `fabric` fixture (DBOS launched in this process), with an
  in-process client for request/response endpoints.
- `served(app)`: the app under a real uvicorn server on a free port, for event streams and
  dropped connections (an in-process ASGI client buffers a whole response).
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from keel.api.agents import StaticAgentCatalog
from keel.api.app import create_app
from keel.control.ratelimit import MemoryRateLimiter, RateLimitPolicy
from keel.fabric.catalog import AgentCatalog
from keel.fabric.service import Fabric
from keel.fabric.turns import TurnView, submit_turn
from keel.identity.keys import create_key
from keel.identity.principal import Principal
from keel.settings import RateLimitSetting, Settings
from keel.store.database import Database
from tests.conftest import EXAMPLE_AGENTS

AGENTS = ("rune", "sales-card")
GENEROUS = RateLimitSetting(capacity=10_000, refill_per_second=10_000)


@dataclass
class Api:
    """The app, a client for it, and a way to act as any tenant/user/scope set."""

    app: FastAPI
    client: httpx.AsyncClient
    db: Database
    fabric: Fabric | None = None
    _keys: dict[tuple[str, str, tuple[str, ...]], str] = field(default_factory=dict)

    def secret(
        self, tenant: str = "acme", user: str = "anna", scopes: tuple[str, ...] = ("*",)
    ) -> str:
        ident = (tenant, user, scopes)
        if ident not in self._keys:
            self._keys[ident] = create_key(self.db, tenant, user, scopes).secret
        return self._keys[ident]

    def headers(
        self, tenant: str = "acme", user: str = "anna", scopes: tuple[str, ...] = ("*",)
    ) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret(tenant, user, scopes)}"}

    async def conversation(
        self, tenant: str = "acme", user: str = "anna", agent: str = "rune", **body: Any
    ) -> str:
        response = await self.client.post(
            "/v1/conversations",
            json={"agent": agent, **body},
            headers=self.headers(tenant, user),
        )
        assert response.status_code == 201, response.text
        conversation_id: str = response.json()["id"]
        return conversation_id

    def turn(
        self, conversation_id: str, text: str, tenant: str = "acme", user: str = "anna"
    ) -> TurnView:
        """A turn recorded through the one write path (`keel.fabric.turns.submit_turn`)."""
        assert self.fabric is not None, "this app has no fabric"
        principal = Principal(tenant_id=tenant, user_id=user, scopes=("*",))
        turn, _run = submit_turn(self.fabric, principal, conversation_id, {"question": text})
        return turn


def make_settings(tmp_path: Any, **overrides: Any) -> Settings:
    return Settings(env="test", home=tmp_path / ".keel", _env_file=None, **overrides)  # type: ignore[call-arg]


def build_app(db: Database, settings: Settings, **kwargs: Any) -> FastAPI:
    if kwargs.get("fabric") is None:
        kwargs.setdefault("agents", StaticAgentCatalog(AGENTS))
    kwargs.setdefault(
        "rate_limiter",
        MemoryRateLimiter(
            RateLimitPolicy(dict.fromkeys(("turns", "runs", "reads", "writes"), GENEROUS))
        ),
    )
    return create_app(settings, db, **kwargs)


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://keel.test",
    )


@contextmanager
def submit_only_fabric(db: Database, tmp_path: Path) -> Iterator[Fabric]:
    """A fabric that records and queues runs but never executes them (no DBOS launch)."""
    settings = make_settings(tmp_path, database_url=db.url, agents_dirs=[EXAMPLE_AGENTS])
    fabric = Fabric(settings, db, AgentCatalog.load(settings, db))
    fabric.start(execute=False)
    try:
        yield fabric
    finally:
        fabric.stop()


@pytest.fixture
async def api(db: Database, tmp_path: Path) -> AsyncIterator[Api]:
    with submit_only_fabric(db, tmp_path) as fabric:
        app = build_app(db, make_settings(tmp_path), fabric=fabric)
        async with client_for(app) as client:
            yield Api(app, client, db, fabric)


def live_settings(fabric: Fabric, **overrides: Any) -> Settings:
    return fabric.settings.model_copy(update={"api_sse_heartbeat_seconds": 0.2, **overrides})


@pytest.fixture
async def live(fabric: Fabric) -> AsyncIterator[Api]:
    """The app over an executing fabric (runs really run, offline models)."""
    app = build_app(fabric.db, live_settings(fabric), fabric=fabric)
    async with client_for(app) as client:
        yield Api(app, client, fabric.db, fabric)


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """APP under uvicorn on 127.0.0.1:<free port> in a thread; yields the base URL."""
    server = _Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=2
        )
    )
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    if not server.ready.wait(10):
        raise RuntimeError("uvicorn did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class Live(Api):
    """`Api` plus the base URL of the same app under a real server."""

    base_url: str = ""

    def http(self, **headers: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=30)


@pytest.fixture
async def server(fabric: Fabric) -> AsyncIterator[Live]:
    """The live app under uvicorn (plus an in-process client for setup)."""
    app = build_app(fabric.db, live_settings(fabric), fabric=fabric)
    with served(app) as base_url:
        async with client_for(app) as client:
            yield Live(app, client, fabric.db, fabric, base_url=base_url)


@dataclass(frozen=True)
class Frame:
    """One server-sent event as received."""

    id: str | None
    event: str | None
    data: dict[str, Any] | None
    comment: bool = False


def parse_frames(text: str) -> list[Frame]:
    """Split an SSE body into frames (comments kept as `comment=True`)."""
    frames: list[Frame] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        fields: dict[str, str] = {}
        comment = False
        for line in block.split("\n"):
            if line.startswith(":"):
                comment = True
                continue
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        data = json.loads(fields["data"]) if "data" in fields else None
        frames.append(Frame(fields.get("id"), fields.get("event"), data, comment and not fields))
    return frames


def assert_problem(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    """The response is RFC 9457 problem+json with `status` (and `code`)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "code"} <= set(body)
    assert body["instance"] == response.request.url.path
    if code is not None:
        assert body["code"] == code
    return body


def field_names(response: httpx.Response) -> list[str]:
    return [e["field"] for e in response.json().get("errors", [])]

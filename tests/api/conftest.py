"""An API app over each database backend, with helpers to mint real API keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from keel.api.agents import StaticAgentCatalog
from keel.api.app import create_app
from keel.api.services import conversations as conversation_service
from keel.control.ratelimit import MemoryRateLimiter, RateLimitPolicy
from keel.identity.keys import create_key
from keel.identity.principal import Principal
from keel.settings import RateLimitSetting, Settings
from keel.store.database import Database
from keel.store.tables import Turn

AGENTS = ("rune", "sales-card")
GENEROUS = RateLimitSetting(capacity=10_000, refill_per_second=10_000)


@dataclass
class Api:
    """The app, a client for it, and a way to act as any tenant/user/scope set."""

    app: FastAPI
    client: httpx.AsyncClient
    db: Database
    _keys: dict[tuple[str, str, tuple[str, ...]], str] = field(default_factory=dict)

    def headers(
        self, tenant: str = "acme", user: str = "anna", scopes: tuple[str, ...] = ("*",)
    ) -> dict[str, str]:
        ident = (tenant, user, scopes)
        if ident not in self._keys:
            self._keys[ident] = create_key(self.db, tenant, user, scopes).secret
        return {"Authorization": f"Bearer {self._keys[ident]}"}

    async def conversation(self, tenant: str = "acme", user: str = "anna", **body: Any) -> str:
        response = await self.client.post(
            "/v1/conversations",
            json={"agent": "rune", **body},
            headers=self.headers(tenant, user),
        )
        assert response.status_code == 201, response.text
        conversation_id: str = response.json()["id"]
        return conversation_id

    def turn(
        self, conversation_id: str, text: str, tenant: str = "acme", user: str = "anna"
    ) -> Turn:
        principal = Principal(tenant_id=tenant, user_id=user, scopes=("*",))
        return conversation_service.append_turn(self.db, principal, conversation_id, {"text": text})


def make_settings(tmp_path: Any, **overrides: Any) -> Settings:
    return Settings(env="test", home=tmp_path / ".keel", _env_file=None, **overrides)  # type: ignore[call-arg]


def build_app(db: Database, settings: Settings, **kwargs: Any) -> FastAPI:
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


@pytest.fixture
async def api(db: Database, tmp_path: Any) -> AsyncIterator[Api]:
    app = build_app(db, make_settings(tmp_path))
    async with client_for(app) as client:
        yield Api(app, client, db)


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

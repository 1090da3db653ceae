"""The FastAPI app factory. Built from settings; no module-level app, nothing at import time.

Everything pluggable is a keyword argument with a default built from settings, so tests and
embedders inject real alternatives (an agent catalog, a rate limiter on a test clock, a
JWKS client bound to a local server) without patching.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from keel import __version__
from keel.api.agents import AgentCatalog, SettingsAgentCatalog
from keel.api.deps import resolve_principal
from keel.api.idempotency import Idempotency, IdempotencyStore
from keel.api.limits import BodySizeLimitMiddleware
from keel.api.problems import install_problem_handlers, only_problem_media_type
from keel.api.routes import agents as agent_routes
from keel.api.routes import approvals, conversations, feedback, runs, turns
from keel.api.schemas import RunEventPublic
from keel.api.sse import replay_events
from keel.control.ratelimit import RateLimiter, make_rate_limiter
from keel.fabric.service import Fabric
from keel.identity.authenticator import Authenticator
from keel.identity.oidc import OidcVerifier
from keel.settings import Settings
from keel.store.database import Database

API_DESCRIPTION = """Keel's headless API: conversations, turns, runs, approvals, agents and
feedback.

Authenticate with an API key (`Authorization: Bearer keel_sk_…` or `X-API-Key`) or an OIDC
JWT (`Authorization: Bearer <token>`). Every error is RFC 9457 `application/problem+json`
with a stable `code`; validation errors name each field in `errors`. POST endpoints accept
an `Idempotency-Key`. Lists are cursor-paginated, newest first.

Event streams are server-sent events: `id: <seq>`, `event: <type>`, `data: <JSON>`; reconnect
with `Last-Event-ID: <seq>` (or `?after=<seq>`) to resume without loss or repetition. A stream
ends after the run's terminal event; while a run waits for approval it stays open with
`: keep-alive` comments and continues after the decision.
"""


def create_app(
    settings: Settings,
    db: Database | None = None,
    *,
    agents: AgentCatalog | None = None,
    rate_limiter: RateLimiter | None = None,
    oidc: OidcVerifier | None = None,
    jwks_client: httpx.AsyncClient | None = None,
    fabric: Fabric | None = None,
) -> FastAPI:
    """The API app. `oidc` (or `jwks_client`, used to fetch the JWKS) override settings; with a
    `fabric`, its deployed agents are the catalog and runs are submitted through it."""
    database = db or Database.from_settings(settings)
    verifier = oidc or OidcVerifier.from_settings(settings, client=jwks_client)
    authenticator = Authenticator(database, verifier)
    limiter = rate_limiter or make_rate_limiter(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await limiter.close()
        await authenticator.close()

    app = FastAPI(
        title="Keel",
        version=__version__,
        description=API_DESCRIPTION,
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = database
    app.state.fabric = fabric
    app.state.agents = agents or (
        fabric.catalog if fabric is not None else SettingsAgentCatalog(settings)
    )
    app.state.authenticator = authenticator
    app.state.rate_limiter = limiter
    app.state.resolve_principal = resolve_principal
    app.state.event_replayer = replay_events
    app.state.idempotency = Idempotency(
        IdempotencyStore(
            database,
            ttl_seconds=settings.idempotency_ttl_seconds,
            lease_seconds=settings.idempotency_lease_seconds,
        ),
        wait_seconds=settings.idempotency_wait_seconds,
    )

    @app.get("/healthz", tags=["health"], summary="Liveness")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    app.include_router(conversations.router)
    app.include_router(turns.router)
    app.include_router(feedback.router)
    app.include_router(runs.router)
    app.include_router(approvals.router)
    app.include_router(agent_routes.router)
    install_problem_handlers(app)
    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = only_problem_media_type(generate_openapi())
            # what each event stream's `data:` line holds (referenced by `x-event-data`)
            schema["components"]["schemas"]["RunEventPublic"] = RunEventPublic.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.api_max_body_bytes)
    return app

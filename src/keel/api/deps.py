"""`Annotated` dependency aliases: the database, settings, the caller, scopes, rate limits.

Routes declare what they need in their signature (`principal: ConversationsRead`) instead of
checking in the body. Order of checks: credentials (401) → scope (403) → rate limit (429),
then FastAPI validates the input (422).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request, Security
from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.exceptions import HTTPException

from keel.api.agents import AgentCatalog
from keel.control.ratelimit import RateKey, RateLimiter
from keel.errors import Forbidden, RateLimited
from keel.fabric.service import Fabric
from keel.identity import scopes
from keel.identity.authenticator import Authenticator
from keel.identity.principal import Principal
from keel.settings import Settings
from keel.store.database import Database

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="BearerAuth",
    description="An API key (`keel_sk_…`) or an OIDC access/ID token (JWT).",
)
_api_key = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="ApiKeyAuth",
    description="An API key (`keel_sk_…`).",
)


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_agents(request: Request) -> AgentCatalog:
    agents: AgentCatalog = request.app.state.agents
    return agents


def get_fabric(request: Request) -> Fabric:
    """The runtime runs are submitted to; an app built without one answers 503."""
    fabric: Fabric | None = request.app.state.fabric
    if fabric is None:
        raise HTTPException(
            503,
            "this API process has no runtime: runs, turns and approvals need `keel up` or "
            "`keel serve` (create_app(..., fabric=...))",
        )
    return fabric


def get_optional_fabric(request: Request) -> Fabric | None:
    """The runtime when this process has one (a read-mostly app may run without)."""
    fabric: Fabric | None = request.app.state.fabric
    return fabric


DbDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
AgentsDep = Annotated[AgentCatalog, Depends(get_agents)]
FabricDep = Annotated[Fabric, Depends(get_fabric)]
OptionalFabricDep = Annotated[Fabric | None, Depends(get_optional_fabric)]


async def resolve_principal(request: Request) -> Principal:
    """The caller, authenticated once per request (cached on `request.state`)."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    authenticator: Authenticator = request.app.state.authenticator
    principal = await authenticator.authenticate(
        authorization=request.headers.get("authorization"),
        api_key=request.headers.get("x-api-key"),
    )
    request.state.principal = principal
    return principal


async def get_principal(
    request: Request,
    _bearer_doc: Annotated[object, Security(_bearer)] = None,
    _key_doc: Annotated[object, Security(_api_key)] = None,
) -> Principal:
    # The two Security parameters only document the schemes in OpenAPI; parsing is ours.
    return await resolve_principal(request)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def authorize(scope: str | None, resource: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: authenticated, holding `scope` (if any), within the `resource` rate."""

    async def dependency(request: Request, principal: PrincipalDep) -> Principal:
        if scope is not None and not principal.has_scope(scope):
            raise Forbidden(f"this operation requires the scope {scope!r}")
        limiter: RateLimiter = request.app.state.rate_limiter
        decision = await limiter.acquire(RateKey(principal.tenant_id, resource))
        if not decision.allowed:
            raise RateLimited(
                f"rate limit for {resource} exceeded; retry in {decision.retry_after:.2f}s",
                retry_after=decision.retry_after,
            )
        return principal

    dependency.__name__ = f"authorize_{(scope or 'any').replace(':', '_')}_{resource}"
    return dependency


ConversationsRead = Annotated[Principal, Depends(authorize(scopes.CONVERSATIONS_READ, "reads"))]
ConversationsWrite = Annotated[Principal, Depends(authorize(scopes.CONVERSATIONS_WRITE, "writes"))]
TurnsWrite = Annotated[Principal, Depends(authorize(scopes.CONVERSATIONS_WRITE, "turns"))]
RunsRead = Annotated[Principal, Depends(authorize(scopes.RUNS_READ, "reads"))]
RunsWrite = Annotated[Principal, Depends(authorize(scopes.RUNS_WRITE, "runs"))]
ApprovalsRead = Annotated[Principal, Depends(authorize(scopes.APPROVALS_READ, "reads"))]
ApprovalsWrite = Annotated[Principal, Depends(authorize(scopes.APPROVALS_WRITE, "writes"))]
AnyScopeRead = Annotated[Principal, Depends(authorize(None, "reads"))]

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Makes a retry safe: the same key with the same body replays the first "
        "response (marked `Idempotent-Replayed: true`) for 24 h; a different body is 422.",
    ),
]

LastEventIdHeader = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        max_length=32,
        description="Resume an event stream after this event id (an SSE client's reconnect).",
    ),
]

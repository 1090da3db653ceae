"""A gated deployment for the control-plane and security tests: the `deployment/` folder
(agent `clerk`, tools.yaml with HTTP tools, Cedar policies) served by a real fabric with the
control plane installed, a scripted model (`script:default`, a FunctionModel a test sets),
a local CRM (an ASGI app reached through httpx) and a vault holding the CRM token."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic_ai.capabilities import ResolveModelId
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models import Model, ModelResolutionContext
from pydantic_ai.models.function import AgentInfo, FunctionModel

from keel.agents.deps import RunDeps
from keel.control.keys import LocalKeyProvider
from keel.control.plane import ControlPlane
from keel.control.registry import deployment_tool_defs, load_deployment_tools
from keel.control.vault import Vault
from keel.fabric.catalog import AgentCatalog
from keel.fabric.extensions import CapabilityFactory, FabricExtensions
from keel.fabric.service import Fabric
from keel.identity.keys import ensure_tenant
from keel.observability.tracing import Tracing
from keel.settings import Settings
from keel.store.database import Database

DEPLOYMENT = Path(__file__).resolve().parent / "deployment"
CRM_TOKEN = "crm-tok-9f3Kq27LxW81pZ"  # the planted secret
Script = Callable[[list[ModelMessage], AgentInfo], ModelResponse]

if str(DEPLOYMENT) not in sys.path:
    sys.path.append(str(DEPLOYMENT))
import _calls  # noqa: E402  (the same module the deployment's tools append to)

SCRIPTS: dict[str, Script] = {}
SEEN: list[list[ModelMessage]] = []  # every request the scripted model received


def scripted(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    SEEN.append(list(messages))
    return SCRIPTS["default"](messages, info)


def script_resolver() -> ResolveModelId[RunDeps]:
    def resolve(_ctx: ModelResolutionContext[RunDeps], model_id: str) -> Model | None:
        if model_id.startswith("script:"):
            return FunctionModel(scripted, model_name=model_id)
        return None

    return ResolveModelId(resolve)


def tool_returns(messages: list[ModelMessage]) -> list[ToolReturnPart]:
    return [
        p
        for m in messages
        if isinstance(m, ModelRequest)
        for p in m.parts
        if isinstance(p, ToolReturnPart)
    ]


def calls(*parts: tuple[str, dict[str, Any]], step: int = 1) -> ModelResponse:
    return ModelResponse(
        parts=[
            ToolCallPart(name, args, tool_call_id=f"c{step}_{i}")
            for i, (name, args) in enumerate(parts)
        ]
    )


def answer(text: str = "done") -> ModelResponse:
    return ModelResponse(parts=[TextPart(text)])


def steps(*responses: ModelResponse | Callable[[list[ModelMessage]], ModelResponse]) -> Script:
    """A script answering the Nth request with the Nth response (the last one repeats)."""

    def script(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        n = sum(1 for m in messages if isinstance(m, ModelResponse))
        chosen = responses[min(n, len(responses) - 1)]
        return chosen(messages) if callable(chosen) else chosen

    return script


@dataclass
class Crm:
    """The CRM the HTTP tools call: it checks the bearer token and — carelessly — echoes it."""

    requests: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/api/companies/{company_id}")
        async def company(company_id: str, request: Request) -> JSONResponse:
            auth = request.headers.get("authorization", "")
            self.requests.append({"path": request.url.path, "auth": auth,
                                  "query": dict(request.query_params),
                                  "request_id": request.headers.get("x-request-id")})  # fmt: skip
            if auth != f"Bearer {CRM_TOKEN}":
                return JSONResponse({"error": "bad token"}, status_code=401)
            return JSONResponse(
                {"id": company_id, "name": "Acme AB", "debug": {"authorization": auth}}
            )

        @app.post("/api/companies/{company_id}/notes")
        async def note(company_id: str, request: Request) -> JSONResponse:
            body = await request.json()
            self.requests.append({"path": request.url.path, "body": body})
            return JSONResponse({"company": company_id, "saved": body}, status_code=201)

        return app


@dataclass
class Gated:
    fabric: Fabric
    plane: ControlPlane
    db: Database
    settings: Settings
    crm: Crm
    vault: Vault


def gated_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    return Settings(  # type: ignore[call-arg]
        env="test",
        home=tmp_path / "home",
        database_url=database_url,
        agents_dirs=[DEPLOYMENT],
        approval_ttl_seconds=3600,
        _env_file=None,
        **overrides,
    )


def build_gated(
    settings: Settings,
    *,
    tracing: Tracing | None = None,
    extra: Sequence[CapabilityFactory] = (),
) -> Gated:
    db = Database.from_settings(settings)
    db.upgrade()
    for tenant in ("t1", "t2", "big"):
        ensure_tenant(db, tenant)
    from keel.store.tables import Tenant

    with db.transaction() as s:
        big = s.get(Tenant, "big")
        assert big is not None
        big.tier = "enterprise"
    tools = load_deployment_tools([DEPLOYMENT])
    catalog = AgentCatalog.load(settings, db, tool_registry=deployment_tool_defs(tools))
    crm = Crm()
    vault = Vault(db, LocalKeyProvider(os.urandom(32)))
    extensions = FabricExtensions()
    plane = ControlPlane.build(
        settings, db, catalog, deployment_tools=tools,
        http_transport=httpx.ASGITransport(app=crm.app()), vault=vault,
    )  # fmt: skip
    # midday today: the wall clock would make `no-sensitive-tools-at-night` fire in night runs
    plane.clock = lambda: datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    plane.install(extensions)
    extensions.capabilities.append(lambda _loaded: [script_resolver()])
    extensions.capabilities.extend(extra)
    for tenant in ("t1", "t2", "big"):
        vault.put(tenant, "crm-token", CRM_TOKEN, actor="test")
    fabric = Fabric(settings, db, catalog, extensions=extensions, tracing=tracing)
    fabric.start(execute=True)
    return Gated(fabric, plane, db, settings, crm, vault)


def stop(gated: Gated) -> None:
    gated.fabric.stop()
    gated.db.dispose()


def reset() -> None:
    _calls.CALLS.clear()
    _calls.SWITCHES["ledger_down"] = False
    SCRIPTS.clear()
    SEEN.clear()


def gated_fixture(tmp_path: Path, database_url: str, **overrides: Any) -> Iterator[Gated]:
    reset()
    built = build_gated(gated_settings(tmp_path, database_url, **overrides))
    try:
        yield built
    finally:
        stop(built)
        reset()


ran = _calls.ran

"""MCP tools: a tool of a stdio or streamable-HTTP MCP server, allow-listed in tools.yaml,
passes the same gate as every tool (decision, arguments, credential injection); the server's
other tools never reach the model."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from keel.control.keys import LocalKeyProvider
from keel.control.plane import ControlPlane
from keel.control.registry import deployment_tool_defs, load_deployment_tools
from keel.control.vault import Vault
from keel.errors import SpecError
from keel.fabric.catalog import AgentCatalog
from keel.fabric.extensions import FabricExtensions
from keel.fabric.service import Fabric
from keel.identity.keys import ensure_tenant
from keel.identity.principal import Principal
from keel.settings import Settings
from keel.store.database import Database
from tests.control.harness import (
    SCRIPTS,
    SEEN,
    answer,
    calls,
    reset,
    script_resolver,
    steps,
    tool_returns,
)

SERVER = Path(__file__).parent / "mcp" / "weather_server.py"
TOKEN = "wx-tok-7Hq2LmP9"
ANNA = Principal(tenant_id="t1", user_id="anna")


class HttpServer:
    """The weather server over streamable HTTP on a free local port, recording auth headers."""

    def __init__(self) -> None:
        spec = importlib.util.spec_from_file_location("weather_http_server", SERVER)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        inner = module.server.streamable_http_app()
        self.auth: list[str] = []

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                headers = dict(scope["headers"])
                self.auth.append(headers.get(b"authorization", b"").decode())
            await inner(scope, receive, send)

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> HttpServer:
        self.thread.start()
        ticks = threading.Event()
        for _ in range(500):  # uvicorn offers a flag, not an event: poll it for up to 10 s
            if self.server.started:
                return self
            ticks.wait(0.02)
        raise TimeoutError("the MCP test server did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _deployment(root: Path, url: str) -> Path:
    (root / "weatherman").mkdir(parents=True)
    (root / "tools.yaml").write_text(
        f"""tools:
  - name: weather_forecast
    kind: mcp
    server: {{command: {sys.executable}, args: [{SERVER}]}}
    tool: forecast
    cost_usd: 0.001
  - name: weather_http
    kind: mcp
    server: {{url: "{url}"}}
    tool: forecast
    credential: weather-token
    auth: {{header: Authorization, scheme: Bearer}}
"""
    )
    (root / "weatherman" / "agent.yaml").write_text(
        "name: weatherman\nmodel: {default: 'script:default'}\n"
        "tools: [weather_forecast, weather_http]\ntimeout_seconds: 60\n"
    )
    (root / "weatherman" / "prompt.md").write_text("Tell the weather.")
    return root


@pytest.fixture
def weather(tmp_path: Path, database_url: str) -> Iterator[tuple[Fabric, HttpServer]]:
    reset()
    with HttpServer() as http:
        root = _deployment(tmp_path / "agents", f"http://127.0.0.1:{http.port}/mcp")
        settings = Settings(  # type: ignore[call-arg]
            env="test", home=tmp_path / "home", database_url=database_url, agents_dirs=[root],
            _env_file=None,
        )  # fmt: skip
        db = Database.from_settings(settings)
        db.upgrade()
        ensure_tenant(db, "t1")
        tools = load_deployment_tools([root])
        catalog = AgentCatalog.load(settings, db, tool_registry=deployment_tool_defs(tools))
        vault = Vault(db, LocalKeyProvider(os.urandom(32)))
        vault.put("t1", "weather-token", TOKEN, actor="test")
        extensions = FabricExtensions()
        ControlPlane.build(settings, db, catalog, deployment_tools=tools, vault=vault).install(
            extensions
        )
        extensions.capabilities.append(lambda _l: [script_resolver()])
        fabric = Fabric(settings, db, catalog, extensions=extensions)
        fabric.start(execute=True)
        try:
            yield fabric, http
        finally:
            fabric.stop()
            db.dispose()
            reset()


async def test_mcp_tools_over_stdio_and_http_pass_the_gate(
    weather: tuple[Fabric, HttpServer],
) -> None:
    fabric, http = weather
    SCRIPTS["default"] = steps(
        calls(
            ("weather_forecast", {"city": "Oslo", "days": 2}),
            ("weather_http", {"city": "Bergen"}),
            ("wipe_disk", {}),
        ),
        answer("sunny"),
    )
    view = fabric.submit(ANNA, "weatherman", {"question": "weather?"})
    done = await fabric.wait("t1", view.id, timeout=60)
    assert done.status == "succeeded", done.error
    results = {r.tool_name: r.content for r in tool_returns(SEEN[-1])}
    assert results["weather_forecast"] == {"city": "Oslo", "days": 2, "sky": "sunny"}
    assert results["weather_http"] == {"city": "Bergen", "days": 1, "sky": "sunny"}
    assert str(results["wipe_disk"]).startswith("Unknown tool name: 'wipe_disk'")
    assert f"Bearer {TOKEN}" in http.auth  # the credential went to the server, not the model
    decisions = [e.data for e in fabric.events("t1", view.id) if e.type == "tool.decision"]
    assert [(d["tool"], d["decision"], d["kind"]) for d in decisions] == [
        ("weather_forecast", "ALLOW", "mcp"),
        ("weather_http", "ALLOW", "mcp"),
    ]
    assert done.cost_usd == 0.001


async def test_mcp_arguments_are_validated_against_the_servers_schema(
    weather: tuple[Fabric, HttpServer],
) -> None:
    fabric, _ = weather
    SCRIPTS["default"] = steps(
        calls(("weather_forecast", {"city": "Oslo", "days": "many"})), answer("no")
    )
    view = fabric.submit(ANNA, "weatherman", {"question": "weather?"})
    await fabric.wait("t1", view.id, timeout=60)
    [decision] = [e.data for e in fabric.events("t1", view.id) if e.type == "tool.decision"]
    assert (
        decision["stage"] == "validate"
        and "days: 'many' is not of type 'integer'" in decision["reason"]
    )


def test_an_mcp_entry_must_name_a_tool_the_server_has(tmp_path: Path) -> None:
    (tmp_path / "tools.yaml").write_text(
        f"tools:\n  - name: w\n    kind: mcp\n    server: {{command: {sys.executable}, "
        f"args: [{SERVER}]}}\n    tool: rain_dance\n"
    )
    with pytest.raises(SpecError) as err:
        load_deployment_tools([tmp_path])
    assert "the server has no tool 'rain_dance' (it has forecast, wipe_disk)" in str(err.value)
    (tmp_path / "tools.yaml").write_text(
        "tools:\n  - name: w\n    kind: mcp\n    server: {command: x, url: 'http://y'}\n"
    )
    with pytest.raises(SpecError, match="a url or a command"):
        load_deployment_tools([tmp_path])

"""MCP tools: a tool of an MCP server (stdio or streamable HTTP) enters the registry under a
Keel name and passes the same gate as every other tool.

    - name: weather_forecast
      kind: mcp
      server: {url: "http://127.0.0.1:8931/mcp"}      # or {command: python, args: [srv.py]}
      tool: forecast                                   # the server's name (default: name)
      credential: weather-token                        # URL servers: sent as a header
      auth: {header: Authorization, scheme: Bearer}
      cost_usd: 0.001

Each entry allow-lists one tool of the server (the others never reach a model), with its own
governance fields. The tool's input schema is read from the server when the deployment loads
(`input_schema:` in the entry skips that). A call connects for the duration of the call, from
inside the fabric's durable `tool.<name>` step — so it is retried, recorded and keyed like any
tool call (Keel does not use `MCPToolset`: its tools would bypass the registry's allow-list).
An MCP error result is a failure the model sees (`ToolFailed`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Mapping
from typing import Any

from pydantic_ai import RunContext
from pydantic_ai.exceptions import ToolFailed

from keel.agents.deps import RunDeps
from keel.control.registry import McpServer, ToolEntry, ToolOptions, ToolSpec
from keel.errors import Forbidden, SpecError, SpecProblem


def _transport(server: McpServer, headers: Mapping[str, str] | None = None) -> Any:
    from fastmcp.client.transports import StdioTransport, StreamableHttpTransport

    if server.url:
        return StreamableHttpTransport(server.url, headers=dict(headers or {}))
    assert server.command is not None
    return StdioTransport(server.command, list(server.args), env=dict(server.env) or None)


async def list_tools(server: McpServer) -> dict[str, dict[str, Any]]:
    """The server's tools: name → input schema."""
    from fastmcp import Client

    async with Client(_transport(server), timeout=server.timeout_seconds) as client:
        tools = await client.list_tools()
    return {t.name: dict(t.input_schema or {"type": "object"}) for t in tools}


def _content_text(content: Any) -> str:
    parts = []
    for item in content or []:
        text = getattr(item, "text", None)
        parts.append(text if isinstance(text, str) else f"<{getattr(item, 'type', 'content')}>")
    return "\n".join(parts)


async def call_tool(
    server: McpServer, tool: str, arguments: Mapping[str, Any], headers: Mapping[str, str]
) -> Any:
    """Call TOOL once; structured content when the server gives it, else the text."""
    from fastmcp import Client

    async with Client(_transport(server, headers), timeout=server.timeout_seconds) as client:
        result = await client.call_tool_mcp(tool, dict(arguments))
    if result.is_error:
        raise ToolFailed(f"{tool} failed: {_content_text(result.content)[:1000]}")
    if result.structured_content is not None:
        return result.structured_content
    return _content_text(result.content)


def _fetch_schema(server: McpServer, tool: str) -> dict[str, Any]:
    """Ask the server for TOOL's input schema (in a thread of its own: this may run while an
    event loop is running)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        tools = pool.submit(asyncio.run, list_tools(server)).result(
            timeout=server.timeout_seconds + 5
        )
    if tool not in tools:
        raise ValueError(
            f"the server has no tool {tool!r} (it has {', '.join(sorted(tools)) or 'none'})"
        )
    return tools[tool]


def mcp_function(spec_name: str, server: McpServer, tool: str) -> Any:
    async def call_mcp(ctx: RunContext[RunDeps], **arguments: Any) -> Any:
        from keel.control.scope import current_scope

        try:
            scope = current_scope()
        except Forbidden as exc:
            raise ToolFailed(f"{spec_name} can only run behind Keel's tool gate") from exc
        headers: dict[str, str] = {}
        spec = scope.tool
        if spec.options.credential and server.url and spec.auth is not None:
            headers[spec.auth.header] = spec.auth.value(scope.credential().reveal())
        return await call_tool(server, tool, arguments, headers)

    call_mcp.__name__ = spec_name
    return call_mcp


def mcp_spec(entry: ToolEntry, options: ToolOptions, where: str) -> ToolSpec:
    """A registry entry of kind mcp → a tool calling one tool of the server."""
    rel, _, field = where.partition(":")
    server = entry.server
    if server is None or bool(server.url) == bool(server.command):
        raise SpecError(
            [SpecProblem(rel, f"{field}.server", "give the server a url or a command (not both)")]
        )
    if options.credential and not server.url:
        raise SpecError(
            [SpecProblem(rel, f"{field}.credential", "credentials are sent to URL servers only")]
        )
    remote = entry.tool or entry.name
    schema = entry.input_schema
    if schema is None:
        try:
            schema = _fetch_schema(server, remote)
        except Exception as exc:
            raise SpecError(
                [SpecProblem(rel, f"{field}.server", f"cannot list the server's tools: {exc}")]
            ) from exc
    return ToolSpec(
        name=entry.name,
        kind="mcp",
        options=options,
        description=entry.description or f"{remote} (MCP)",
        input_schema=schema,
        source=where,
        function=mcp_function(entry.name, server, remote),
        schema_validated=False,
        auth=entry.auth,
        mcp=server,
        mcp_tool=remote,
    )


__all__ = ["call_tool", "list_tools", "mcp_function", "mcp_spec"]

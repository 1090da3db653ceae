"""A small MCP server for the tests: stdio by default, streamable HTTP via `app()`."""

from __future__ import annotations

import sys
from typing import Any

from mcp.server.mcpserver import MCPServer

server = MCPServer("weather")


@server.tool()
def forecast(city: str, days: int = 1) -> dict[str, Any]:
    """The forecast for CITY."""
    return {"city": city, "days": days, "sky": "sunny"}


@server.tool()
def wipe_disk() -> str:
    """A dangerous tool no Keel registry entry allows."""
    print("WIPED", file=sys.stderr)
    return "wiped"


if __name__ == "__main__":
    server.run("stdio")

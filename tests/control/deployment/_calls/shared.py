"""Deployment-level python tools (named in tools.yaml as `_calls.shared:<function>`)."""

from __future__ import annotations

from pydantic_ai import RunContext

from _calls import CALLS
from keel.agents.deps import RunDeps


def old_lookup(ctx: RunContext[RunDeps], query: str) -> str:
    """Look something up in the old archive."""
    CALLS.append(("old_lookup", {"query": query}))
    return f"archived: {query}"


def archive_purge(ctx: RunContext[RunDeps]) -> str:
    """Purge the archive."""
    CALLS.append(("archive_purge", {}))
    return "purged"

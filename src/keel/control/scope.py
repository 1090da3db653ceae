"""The execution scope of one gated tool call: who it acts for and, for a tool that declares
a credential, the only way to reach it.

The gate enters a scope around the tool function itself (inside the call's durable step) and
leaves it when the function returns, so a credential is reachable only while the tool that
declared it runs, for the tenant of that run:

    from keel.control.scope import current_scope

    def create_ticket(ctx: RunContext[RunDeps], title: str) -> dict:
        scope = current_scope()
        token = scope.credential().reveal()      # this tool's declared credential only
        ...

    async def lookup(ctx: RunContext[RunDeps], q: str) -> dict:
        async with current_scope().http_client() as client:   # credential already injected
            ...

Outside a gated call `current_scope()` raises `Forbidden`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import httpx

from keel.control.credentials import CredentialBroker
from keel.control.registry import ToolSpec
from keel.control.vault import Secret
from keel.errors import Forbidden

_current: ContextVar[ToolScope | None] = ContextVar("keel_tool_scope", default=None)


@dataclass(frozen=True)
class ToolScope:
    """One tool call: tenant, user and roles it acts for, the run, the tool and the call's
    idempotency key (stable across retries and crash recovery)."""

    tenant_id: str
    user_id: str
    roles: frozenset[str]
    run_id: str
    agent: str
    tool: ToolSpec
    tool_call_id: str
    idempotency_key: str
    # private: a tool reaches only its own declared credential, through the methods below
    _broker: CredentialBroker = field(repr=False)

    def __repr__(self) -> str:
        return f"ToolScope(tool={self.tool.name!r}, run={self.run_id!r}, tenant={self.tenant_id!r})"

    def credential(self) -> Secret:
        """The tool's declared credential for this tenant, from the vault (NotFound when the
        tenant has not stored it; Forbidden when the tool declares none)."""
        name = self.tool.options.credential
        if not name:
            raise Forbidden(f"tool {self.tool.name!r} declares no credential")
        return self._broker.secret(self.tenant_id, name, actor=f"tool:{self.tool.name}")

    def http_client(self) -> httpx.AsyncClient:
        """An `httpx.AsyncClient` carrying the tool's credential (if any) in its header."""
        return self._broker.http_client(self.tenant_id, self.tool, actor=f"tool:{self.tool.name}")


def current_scope() -> ToolScope:
    """The scope of the gated tool call running now; Forbidden anywhere else."""
    scope = _current.get()
    if scope is None:
        raise Forbidden("no gated tool call is running: credentials are only reachable from a tool")
    return scope


def current_scope_or_none() -> ToolScope | None:
    return _current.get()


@contextmanager
def entered(scope: ToolScope) -> Iterator[ToolScope]:
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)


__all__ = ["ToolScope", "current_scope", "current_scope_or_none", "entered"]

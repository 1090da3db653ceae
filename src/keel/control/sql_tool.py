"""Governed SQL as a tool: the agent writes one SELECT; `GovernedSQL` checks it against the
grants, rewrites it (row filters, column masks, LIMIT) and runs it read-only with a timeout.

A `tools.yaml` entry of kind `sql` declares one:

    - name: query_warehouse
      kind: sql
      grants: warehouse.grants.yaml     # relative to tools.yaml
      database: sqlite:///data/warehouse.db
      # or: credential: warehouse-url   (the URL, with its password, from the vault)

Agents' own tools use the same pieces (`governed`, `run_query`, `caller`), e.g. the example
agent rune's `query_database` and its named queries. A refused query is a failure the model
sees with the reason (it can rewrite the query); it is never run.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_ai import RunContext
from pydantic_ai.exceptions import ToolFailed

from keel.agents.deps import RunDeps
from keel.control.governed_sql import (
    GovernedSQL,
    NamedQuery,
    QueryFailed,
    QueryRefused,
    QueryResult,
)
from keel.control.registry import ToolEntry, ToolOptions, ToolSpec
from keel.control.sql_grants import SqlCaller, SqlGrants
from keel.errors import SpecError, SpecProblem

_lock = threading.Lock()
_databases: dict[tuple[str, int], GovernedSQL] = {}


def governed(url: str, grants: SqlGrants) -> GovernedSQL:
    """One `GovernedSQL` per (database URL, grants), shared by every call in the process."""
    key = (hashlib.sha256(url.encode()).hexdigest(), id(grants))
    with _lock:
        found = _databases.get(key)
        if found is None:
            found = _databases[key] = GovernedSQL(url, grants)
        return found


def caller(ctx: RunContext[RunDeps]) -> SqlCaller:
    """On whose behalf the query runs: the gate's execution scope (tenant, user, roles), or
    the run's tenant and user with no roles when no gate is installed."""
    from keel.control.scope import current_scope_or_none

    scope = current_scope_or_none()
    if scope is not None:
        return SqlCaller(tenant=scope.tenant_id, user=scope.user_id, roles=scope.roles)
    return SqlCaller(tenant=ctx.deps.tenant_id, user=ctx.deps.user_id)


def _cell(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value


def result_json(result: QueryResult) -> dict[str, Any]:
    """A query result as the model sees it: columns, rows (lists), count, truncated."""
    return {
        "columns": result.columns,
        "rows": [[_cell(v) for v in row] for row in result.rows],
        "row_count": result.row_count,
        "truncated": result.truncated,
    }


def run_query(database: GovernedSQL, sql: str, who: SqlCaller) -> QueryResult:
    """Run agent-written SQL; a refusal or a database error becomes a `ToolFailed` the model
    sees (with the reason), never a retry."""
    try:
        return database.execute(sql, who)
    except QueryRefused as exc:
        raise ToolFailed(f"query refused: {exc.reason}") from exc
    except QueryFailed as exc:
        raise ToolFailed(exc.message) from exc


def run_named(
    database: GovernedSQL,
    query: NamedQuery[Any],
    params: BaseModel | Mapping[str, Any],
    who: SqlCaller,
) -> QueryResult:
    """Run a named query through the same grants (its parameters validated by its model)."""
    try:
        return database.run(query, params, who)
    except QueryRefused as exc:
        raise ToolFailed(f"query refused: {exc.reason}") from exc
    except QueryFailed as exc:
        raise ToolFailed(exc.message) from exc


def sql_spec(entry: ToolEntry, options: ToolOptions, base: Path, where: str) -> ToolSpec:
    """A registry entry of kind sql → a `(ctx, sql)` tool over the declared database."""
    rel, _, field = where.partition(":")
    if not entry.grants:
        raise SpecError([SpecProblem(rel, f"{field}.grants", "sql tools need a grants file")])
    if bool(entry.database) == bool(options.credential):
        raise SpecError(
            [SpecProblem(rel, f"{field}.database", "give database (a URL) or credential, not both")]
        )
    url = entry.database or ""
    # a URL kept in the vault carries a password: a database server, not a SQLite file
    dialect = "sqlite" if url.startswith("sqlite") else "postgres"
    grants = SqlGrants.load(base / entry.grants, dialect=dialect)
    name = entry.name

    def query(ctx: RunContext[RunDeps], sql: str) -> dict[str, Any]:
        """Run one read-only SELECT over the granted tables and columns."""
        from keel.control.scope import current_scope

        database_url = url or current_scope().credential().reveal()
        return result_json(run_query(governed(database_url, grants), sql, caller(ctx)))

    query.__name__ = name
    tables = ", ".join(sorted(grants.tables))
    description = entry.description or (
        f"Run one read-only SQL SELECT over {tables} (at most {grants.max_rows} rows)."
    )
    return ToolSpec(
        name=name,
        kind="sql",
        options=options,
        description=description,
        input_schema={
            "type": "object",
            "properties": {"sql": {"type": "string", "description": "One SQL SELECT statement."}},
            "required": ["sql"],
        },
        source=where,
        function=query,
        extra={"grants": grants},
    )


__all__ = ["caller", "governed", "result_json", "run_named", "run_query", "sql_spec"]

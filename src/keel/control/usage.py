"""Usage reports from `usage_records`: requests, tokens and cost by tenant, agent, model,
prompt version, kind or day (UTC). Model requests and tool calls with a unit cost are both
rows (`kind` "model" / "tool"; a tool's "model" is `tool:<name>`), so a report adds up to what
budgets count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import String, cast, func, select
from sqlalchemy.sql.elements import ColumnElement

from keel.errors import InvalidInput
from keel.store.database import Database
from keel.store.tables import UsageRecord

GroupBy = Literal["tenant", "agent", "model", "prompt_version", "kind", "day"]
GROUPS: tuple[str, ...] = ("tenant", "agent", "model", "prompt_version", "kind", "day")


@dataclass(frozen=True)
class UsageRow:
    key: str
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def _key(by: str, dialect: str) -> ColumnElement[Any]:
    columns: dict[str, ColumnElement[Any]] = {
        "tenant": UsageRecord.__table__.c.tenant_id,
        "agent": UsageRecord.__table__.c.agent,
        "model": UsageRecord.__table__.c.model,
        "kind": UsageRecord.__table__.c.kind,
    }
    if by in columns:
        return columns[by]
    if by == "prompt_version":
        version = func.coalesce(cast(UsageRecord.prompt_version, String), "-")
        return func.coalesce(UsageRecord.prompt_name, "-") + "@" + version
    if by == "day":
        if dialect == "postgresql":
            return func.to_char(func.timezone("UTC", UsageRecord.created_at), "YYYY-MM-DD")
        return func.substr(UsageRecord.created_at, 1, 10)
    raise InvalidInput(f"cannot group by {by!r}; use one of {', '.join(GROUPS)}", field="by")


def usage_report(
    db: Database,
    *,
    tenant_id: str | None = None,
    by: str = "agent",
    since: datetime | None = None,
    until: datetime | None = None,
    agent: str | None = None,
) -> list[UsageRow]:
    """Totals grouped BY, most expensive first (then by key)."""
    key = _key(by, db.engine.dialect.name).label("key")
    q = select(
        key,
        func.coalesce(func.sum(UsageRecord.requests), 0),
        func.coalesce(func.sum(UsageRecord.input_tokens), 0),
        func.coalesce(func.sum(UsageRecord.output_tokens), 0),
        func.coalesce(func.sum(UsageRecord.cost_usd), 0),
    ).group_by(key)
    if tenant_id is not None:
        q = q.where(UsageRecord.tenant_id == tenant_id)
    if agent is not None:
        q = q.where(UsageRecord.agent == agent)
    if since is not None:
        q = q.where(UsageRecord.created_at >= since)
    if until is not None:
        q = q.where(UsageRecord.created_at < until)
    with db.transaction() as s:
        rows = [
            UsageRow(str(r[0]), int(r[1]), int(r[2]), int(r[3]), round(float(r[4]), 6))
            for r in s.execute(q)
        ]
    return sorted(rows, key=lambda r: (-r.cost_usd, -r.tokens, r.key))


__all__ = ["GROUPS", "GroupBy", "UsageRow", "usage_report"]

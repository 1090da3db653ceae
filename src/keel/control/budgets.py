"""Budgets: monthly per tenant and per agent (within a tenant), and per run — in tokens
and/or USD — with three tiers on the share used:

- below 75 %: ALLOW;
- 75 % to 90 % (inclusive): THROTTLE — policies see `context.throttled` and
  `budget_remaining_pct`, and tools costing at least `expensive_tool_usd` need a human's
  approval;
- above 90 %: BLOCK — no model request starts and no tool with a cost runs; the run ends
  `failed` with `BudgetExceeded` naming the budget.

Limits come from the `budgets` table (`keel budget set`), else from the agent's `budget:`
mapping in `agent.yaml` (monthly_tokens, monthly_usd, run_tokens, run_usd,
expensive_tool_usd), else from settings (`KEEL_BUDGET_TENANT_MONTHLY_*`, `KEEL_BUDGET_RUN_*`).
Spend is read from `usage_records` (model requests and tool calls with a unit cost) since the
start of the UTC calendar month; checks add an estimate of the call about to be made, so the
tier is that of the spend *after* it. Shares are compared exactly (integers and decimals), so
the tiers switch at exactly 75 % and 90 %.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import bindparam, case, func, literal, select

from keel.control.ledger import Ledger
from keel.errors import BudgetExceeded, InvalidInput, SpecError, SpecProblem
from keel.settings import Settings
from keel.store.database import Database
from keel.store.tables import Budget, UsageRecord
from keel.store.types import utcnow

THROTTLE_FROM = Decimal(75)
BLOCK_ABOVE = Decimal(90)
ESTIMATED_OUTPUT_TOKENS = 1024
LIMITS_TTL_SECONDS = 5.0
CHARS_PER_TOKEN = 4
_HUNDRED = Decimal(100)

Scope = Literal["tenant", "agent", "run"]


class Tier(StrEnum):
    ALLOW = "allow"
    THROTTLE = "throttle"
    BLOCK = "block"


def tier_for(pct: Decimal) -> Tier:
    """The tier for a share used, in percent: <75 allow, 75–90 throttle, >90 block."""
    if pct > BLOCK_ABOVE:
        return Tier.BLOCK
    if pct >= THROTTLE_FROM:
        return Tier.THROTTLE
    return Tier.ALLOW


def share(used: Decimal, limit: Decimal) -> Decimal:
    """USED as a percentage of LIMIT (exact decimal arithmetic)."""
    if limit <= 0:
        return Decimal(0) if used <= 0 else Decimal("Infinity")
    return used * _HUNDRED / limit


class AgentBudget(BaseModel):
    """An agent's `budget:` mapping in agent.yaml. Monthly limits apply to each tenant's
    use of the agent; run limits to each run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    monthly_tokens: int | None = Field(default=None, gt=0)
    monthly_usd: Decimal | None = Field(default=None, gt=0)
    run_tokens: int | None = Field(default=None, gt=0)
    run_usd: Decimal | None = Field(default=None, gt=0)
    expensive_tool_usd: Decimal | None = Field(default=None, ge=0)

    @classmethod
    def parse(cls, raw: Mapping[str, Any], *, source: str) -> AgentBudget:
        try:
            return cls.model_validate(dict(raw))
        except ValidationError as exc:
            raise SpecError(
                [
                    SpecProblem(source, "budget." + ".".join(str(p) for p in e["loc"]), e["msg"])
                    for e in exc.errors()
                ]
            ) from exc


@dataclass(frozen=True)
class Limit:
    tokens: int | None = None
    usd: Decimal | None = None

    @property
    def empty(self) -> bool:
        return self.tokens is None and self.usd is None


@dataclass(frozen=True)
class Spend:
    tokens: int = 0
    usd: Decimal = Decimal(0)


@dataclass(frozen=True)
class BudgetLine:
    """One limit checked: which budget, the metric, the limit, what was used and what will
    be used after the call being checked."""

    scope: Scope
    subject: str
    metric: Literal["tokens", "usd"]
    limit: Decimal
    used: Decimal
    projected: Decimal

    @property
    def pct(self) -> Decimal:
        return share(self.projected, self.limit)

    @property
    def tier(self) -> Tier:
        return tier_for(self.pct)

    @property
    def label(self) -> str:
        period = "per-run" if self.scope == "run" else "monthly"
        metric = "token" if self.metric == "tokens" else "USD"
        return f"{self.subject} {period} {metric} budget"

    def describe(self) -> str:
        limit = (
            f"{self.limit:f}".rstrip("0").rstrip(".") if self.metric == "usd" else str(self.limit)
        )
        used = (
            f"{self.projected:.4f}".rstrip("0").rstrip(".")
            if self.metric == "usd"
            else str(self.projected)
        )
        pct = self.pct
        shown = "over 1000" if pct > 1000 else f"{pct:.1f}"
        return f"{self.label} at {shown}% ({used} of {limit})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "subject": self.subject,
            "metric": self.metric,
            "limit": float(self.limit),
            "used": float(self.used),
            "projected": float(self.projected),
            "pct": float(min(self.pct, Decimal(100000))),
            "tier": self.tier.value,
        }


@dataclass(frozen=True)
class BudgetState:
    """Every limit that applies to a call; the tier is the worst line's."""

    lines: tuple[BudgetLine, ...] = ()

    @property
    def worst(self) -> BudgetLine | None:
        return max(self.lines, key=lambda line: line.pct, default=None)

    @property
    def tier(self) -> Tier:
        worst = self.worst
        return worst.tier if worst is not None else Tier.ALLOW

    @property
    def remaining_pct(self) -> int:
        """100 minus the worst share used, as a whole percent in 0..100 (rounded down)."""
        worst = self.worst
        if worst is None:
            return 100
        remaining = _HUNDRED - worst.pct
        return int(
            max(Decimal(0), min(_HUNDRED, remaining)).to_integral_value(rounding="ROUND_FLOOR")
        )

    def reason(self) -> str:
        worst = self.worst
        if worst is None:
            return "no budget applies"
        return f"{worst.describe()}: {self.tier.value} tier"

    def to_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier.value,
            "remaining_pct": self.remaining_pct,
            "reason": self.reason(),
            "lines": [line.to_dict() for line in self.lines],
        }

    def exceeded(self) -> BudgetExceeded:
        """The error a blocked run ends with: the budget, its share used, and what to do."""
        worst = self.worst
        if worst is None:
            return BudgetExceeded("no budget applies")
        if worst.scope == "run":
            fix = "raise the agent's budget.run_tokens / run_usd, or ask for less"
        else:
            fix = "raise it (keel budget set) or wait for next month"
        return BudgetExceeded(f"{worst.describe()}: blocked above {BLOCK_ABOVE}%; {fix}")


def month_start(now: datetime) -> datetime:
    now = now.astimezone(UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _decimal(value: float | Decimal | None) -> Decimal | None:
    if value is None:
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


@lru_cache(maxsize=512)
def _catalog_price(model: str) -> tuple[Decimal, Decimal] | None:
    from genai_prices import Usage, calc_price

    provider, _, name = model.partition(":")
    if not name:
        provider, name = "", model
    provider_id = {"openai-chat": "openai", "openai-responses": "openai", "google-gla": "google",
                   "google-vertex": "google"}.get(provider, provider) or None  # fmt: skip
    try:
        price = calc_price(
            Usage(input_tokens=1_000_000, output_tokens=0), model_ref=name, provider_id=provider_id
        )
        out = calc_price(
            Usage(input_tokens=0, output_tokens=1_000_000), model_ref=name, provider_id=provider_id
        )
    except Exception:
        return None
    return Decimal(str(price.total_price)), Decimal(str(out.total_price))


def model_price(model: str, settings: Settings) -> tuple[Decimal, Decimal] | None:
    """USD per million (input, output) tokens: `settings.model_prices`, else genai-prices;
    None for a model no price list knows (offline models unless configured)."""
    from keel.observability.cost import configured_price

    configured = configured_price(model, settings)
    if configured is not None:
        return Decimal(str(configured[0])), Decimal(str(configured[1]))
    if model.startswith("offline:"):
        return None
    return _catalog_price(model)


def estimate_request(
    messages: Any, model: str, settings: Settings, max_tokens: int | None = None
) -> tuple[int, Decimal]:
    """Tokens and USD of the next model request: its messages' characters / 4 in, the
    request's `max_tokens` (else 1024) out."""
    from pydantic_ai.messages import ModelMessagesTypeAdapter

    try:
        size = len(ModelMessagesTypeAdapter.dump_json(messages))
    except Exception:
        size = len(json.dumps(messages, default=str))
    input_tokens = size // CHARS_PER_TOKEN + 1
    output_tokens = max_tokens or ESTIMATED_OUTPUT_TOKENS
    price = model_price(model, settings)
    usd = Decimal(0)
    if price is not None:
        usd = (input_tokens * price[0] + output_tokens * price[1]) / Decimal(1_000_000)
    return input_tokens + output_tokens, usd


def _statements() -> tuple[Any, Any, Any]:
    """The three reads of a check, built once (bound parameters: building a statement per
    call costs more than running it)."""
    u = UsageRecord.__table__.c
    used = u.input_tokens + u.output_tokens
    mine = u.agent == bindparam("agent")

    def total(value: Any, when: Any = None) -> Any:
        return func.coalesce(func.sum(value if when is None else case((when, value), else_=0)), 0)

    month = select(
        total(used), total(u.cost_usd), total(used, mine), total(u.cost_usd, mine)
    ).where(u.tenant_id == bindparam("tenant"), u.created_at >= bindparam("since"))
    run = select(total(used), total(u.cost_usd)).where(u.run_id == bindparam("run"))
    b = Budget.__table__.c
    limits = select(b.agent, b.monthly_tokens, b.monthly_usd).where(
        b.tenant_id == bindparam("tenant"), b.agent.in_([literal(""), bindparam("agent")])
    )
    return month, run, limits


_MONTH_SPEND, _RUN_SPEND, _LIMITS = _statements()


class Budgets:
    """Budget limits, spend and tiers. Thread-safe; every check reads the database."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        agents: Mapping[str, AgentBudget] | None = None,
        *,
        ledger: Ledger | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.agents = dict(agents or {})
        self.ledger = ledger
        self._cache: dict[tuple[str, str], tuple[float, dict[str, Limit]]] = {}

    # --- limits -----------------------------------------------------------------------

    def limits(self, tenant_id: str, agent: str) -> dict[Scope, Limit]:
        """The limits that apply to AGENT's runs for TENANT_ID (table rows first). Table rows
        are cached for `LIMITS_TTL_SECONDS`; changes made through this object apply at once,
        changes from another process (the CLI) within that time."""
        rows = self._rows(tenant_id, agent)
        declared = self.agents.get(agent) or AgentBudget()
        tenant_row, agent_row = rows.get(""), rows.get(agent) if agent else None
        tenant = tenant_row or Limit(
            self.settings.budget_tenant_monthly_tokens,
            _decimal(self.settings.budget_tenant_monthly_usd),
        )
        agent_limit = agent_row or Limit(declared.monthly_tokens, declared.monthly_usd)
        run = Limit(
            declared.run_tokens or self.settings.budget_run_tokens,
            declared.run_usd or _decimal(self.settings.budget_run_usd),
        )
        return {"tenant": tenant, "agent": agent_limit, "run": run}

    def _rows(self, tenant_id: str, agent: str) -> dict[str, Limit]:
        key = (tenant_id, agent)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < LIMITS_TTL_SECONDS:
            return cached[1]
        with self.db.engine.connect() as conn:
            rows = {
                str(r.agent): Limit(r.monthly_tokens, _decimal(r.monthly_usd))
                for r in conn.execute(_LIMITS, {"tenant": tenant_id, "agent": agent})
            }
        self._cache[key] = (now, rows)
        return rows

    def set_limit(
        self,
        tenant_id: str,
        *,
        agent: str = "",
        monthly_tokens: int | None = None,
        monthly_usd: Decimal | None = None,
        actor: str,
    ) -> None:
        """Set (or replace) a tenant's monthly budget, or one agent's within the tenant."""
        if monthly_tokens is not None and monthly_tokens <= 0:
            raise InvalidInput("monthly tokens must be positive", field="monthly_tokens")
        if monthly_usd is not None and monthly_usd <= 0:
            raise InvalidInput("monthly USD must be positive", field="monthly_usd")
        if monthly_tokens is None and monthly_usd is None:
            raise InvalidInput("give a token and/or USD limit", field="monthly_tokens")
        if not tenant_id or len(tenant_id) > 64:
            raise InvalidInput("tenant must be 1-64 characters", field="tenant")
        with self.db.transaction(lock=True) as s:
            row = s.scalars(
                select(Budget).where(Budget.tenant_id == tenant_id, Budget.agent == agent)
            ).first()
            if row is None:
                row = Budget(tenant_id=tenant_id, agent=agent)
                s.add(row)
            row.monthly_tokens = monthly_tokens
            row.monthly_usd = monthly_usd
            row.updated_by = actor
            row.updated_at = utcnow()
            self._cache.clear()
            if self.ledger is not None:
                self.ledger.append(
                    actor=actor, kind="budget", subject=f"budget:{agent or '*'}",
                    data={"action": "set", "agent": agent, "monthly_tokens": monthly_tokens,
                          "monthly_usd": str(monthly_usd) if monthly_usd is not None else None},
                    tenant_id=tenant_id, session=s,
                )  # fmt: skip

    def clear_limit(self, tenant_id: str, *, agent: str = "", actor: str) -> bool:
        """Remove a budget row (settings and agent.yaml limits apply again)."""
        with self.db.transaction(lock=True) as s:
            row = s.scalars(
                select(Budget).where(Budget.tenant_id == tenant_id, Budget.agent == agent)
            ).first()
            if row is None:
                return False
            s.delete(row)
            self._cache.clear()
            if self.ledger is not None:
                self.ledger.append(
                    actor=actor, kind="budget", subject=f"budget:{agent or '*'}",
                    data={"action": "clear", "agent": agent}, tenant_id=tenant_id, session=s,
                )  # fmt: skip
        return True

    # --- spend ------------------------------------------------------------------------

    def spend(
        self, tenant_id: str, agent: str, run_id: str | None, *, now: datetime | None = None
    ) -> dict[Scope, Spend]:
        """Tokens and USD used this month by the tenant and by AGENT within it, and by the run."""
        params = {"tenant": tenant_id, "since": month_start(now or utcnow()), "agent": agent}
        with self.db.engine.connect() as conn:
            month = conn.execute(_MONTH_SPEND, params).one()
            run = conn.execute(_RUN_SPEND, {"run": run_id}).one() if run_id else (0, 0)
        return {
            "tenant": Spend(int(month[0]), Decimal(str(month[1]))),
            "agent": Spend(int(month[2]), Decimal(str(month[3]))),
            "run": Spend(int(run[0]), Decimal(str(run[1]))),
        }

    # --- checks -----------------------------------------------------------------------

    def state(
        self,
        tenant_id: str,
        agent: str,
        run_id: str | None,
        *,
        tokens: int = 0,
        usd: Decimal = Decimal(0),
        now: datetime | None = None,
    ) -> BudgetState:
        """Every applicable limit with the spend so far plus TOKENS and USD about to be spent.
        No limit configured: no lines (and no spend query)."""
        limits = self.limits(tenant_id, agent)
        if all(limit.empty for limit in limits.values()):
            return BudgetState()
        spent = self.spend(tenant_id, agent, run_id, now=now)
        subjects: dict[Scope, str] = {
            "tenant": f"tenant {tenant_id}",
            "agent": f"agent {agent} (tenant {tenant_id})",
            "run": f"run {run_id}",
        }
        lines: list[BudgetLine] = []
        for scope, limit in limits.items():
            if scope == "run" and not run_id:
                continue
            used = spent[scope]
            if limit.tokens is not None:
                lines.append(
                    BudgetLine(
                        scope,
                        subjects[scope],
                        "tokens",
                        Decimal(limit.tokens),
                        Decimal(used.tokens),
                        Decimal(used.tokens + tokens),
                    )
                )
            if limit.usd is not None:
                lines.append(
                    BudgetLine(scope, subjects[scope], "usd", limit.usd, used.usd, used.usd + usd)
                )
        return BudgetState(tuple(lines))

    def expensive_tool_usd(self, agent: str) -> Decimal | None:
        declared = self.agents.get(agent)
        if declared is not None and declared.expensive_tool_usd is not None:
            return declared.expensive_tool_usd
        return _decimal(self.settings.expensive_tool_usd)

    def rows(self, tenant_id: str | None = None) -> list[Budget]:
        """The budget table (for `keel budget list`)."""
        q = select(Budget).order_by(Budget.tenant_id, Budget.agent)
        if tenant_id is not None:
            q = q.where(Budget.tenant_id == tenant_id)
        with self.db.transaction() as s:
            return list(s.scalars(q))


__all__ = [
    "BLOCK_ABOVE",
    "THROTTLE_FROM",
    "AgentBudget",
    "BudgetLine",
    "BudgetState",
    "Budgets",
    "Limit",
    "Spend",
    "Tier",
    "estimate_request",
    "model_price",
    "month_start",
    "share",
    "tier_for",
]

"""`keel budget …`: monthly budgets per tenant (and per agent within a tenant), and where
each stands (used %, tier). Changes are recorded in the audit ledger."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import typer

from keel.agents.loader import agent_dirs, discover_agents
from keel.cli.console import fail
from keel.control.budgets import AgentBudget, Budgets
from keel.control.ledger import Ledger
from keel.control.registry import deployment_tool_defs, load_deployment_tools
from keel.errors import InvalidInput, SpecError
from keel.settings import get_settings
from keel.store import migrate
from keel.store.database import Database

app = typer.Typer(
    help="Budgets: monthly tokens / USD per tenant and per agent; tiers at 75 % and 90 %.",
    no_args_is_help=True,
)


def _budgets(with_agents: bool = False) -> Budgets:
    settings = get_settings()
    db = Database.from_settings(settings)
    if not migrate.is_up_to_date(db.engine):
        fail("the database schema is not up to date: run `keel db upgrade`", 2)
    agents: dict[str, AgentBudget] = {}
    if with_agents:
        try:
            tools = deployment_tool_defs(load_deployment_tools(agent_dirs(settings)))
            for name, loaded in discover_agents(agent_dirs(settings), tool_registry=tools).items():
                agents[name] = AgentBudget.parse(
                    loaded.spec.budget or {}, source=f"{name}/agent.yaml"
                )
        except SpecError as exc:
            fail("agent folders have problems:\n" + "\n".join(f"  {p}" for p in exc.problems))
    return Budgets(db, settings, agents, ledger=Ledger(db))


def _usd(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        fail(f"--monthly-usd: {value!r} is not a number", 2)


@app.command("set")
def set_budget(
    tenant: str = typer.Option(..., help="Tenant id."),
    agent: str = typer.Option("", help="One agent within the tenant (default: the whole tenant)."),
    monthly_tokens: int | None = typer.Option(None, help="Tokens per calendar month (UTC)."),
    monthly_usd: str | None = typer.Option(None, help="USD per calendar month (UTC)."),
    actor: str = typer.Option("cli", help="Who is doing this (recorded in the audit ledger)."),
) -> None:
    """Set (or replace) a monthly budget."""
    try:
        _budgets().set_limit(
            tenant, agent=agent, monthly_tokens=monthly_tokens, monthly_usd=_usd(monthly_usd),
            actor=actor,
        )  # fmt: skip
    except InvalidInput as exc:
        fail(f"--{(exc.field or 'input').replace('_', '-')}: {exc.message}", 2)
    what = f"agent {agent} in tenant {tenant}" if agent else f"tenant {tenant}"
    typer.echo(
        f"budget of {what}: {monthly_tokens or '-'} tokens, {monthly_usd or '-'} USD a month"
    )


@app.command()
def clear(
    tenant: str = typer.Option(..., help="Tenant id."),
    agent: str = typer.Option("", help="The agent's budget within the tenant."),
    actor: str = typer.Option("cli", help="Who is doing this (recorded in the audit ledger)."),
) -> None:
    """Remove a budget (the settings' default and agent.yaml limits apply again)."""
    if not _budgets().clear_limit(tenant, agent=agent, actor=actor):
        fail(f"no budget for {'agent ' + agent + ' in ' if agent else ''}tenant {tenant}", 1)
    typer.echo("cleared")


@app.command()
def show(
    tenant: str = typer.Option(..., help="Tenant id."),
    agent: str = typer.Option("", help="Include this agent's own and per-run limits."),
) -> None:
    """Every limit that applies, what is used this month, the share and the tier."""
    state = _budgets(with_agents=True).state(tenant, agent, None)
    if not state.lines:
        typer.echo(f"no budget applies to tenant {tenant}" + (f", agent {agent}" if agent else ""))
        return
    for line in state.lines:
        typer.echo(f"{line.describe()}  [{line.tier.value}]")
    typer.echo(f"tier: {state.tier.value}, {state.remaining_pct}% remaining")


@app.command("list")
def list_budgets(tenant: str | None = typer.Option(None, help="Only this tenant.")) -> None:
    """The budgets set with `keel budget set`."""
    rows = _budgets().rows(tenant)
    if not rows:
        typer.echo("no budgets set")
    for r in rows:
        typer.echo(
            f"{r.tenant_id}  {r.agent or '*':<16} tokens {r.monthly_tokens or '-':<12} "
            f"usd {r.monthly_usd if r.monthly_usd is not None else '-':<12} "
            f"by {r.updated_by} at {r.updated_at:%Y-%m-%d %H:%M}"
        )

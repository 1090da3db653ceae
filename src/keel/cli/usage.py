"""`keel usage`: requests, tokens and cost from the usage records, grouped by tenant, agent,
model, prompt version, kind (model / tool) or day."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import typer

from keel.cli.console import fail
from keel.control.budgets import month_start
from keel.control.usage import GROUPS, usage_report
from keel.errors import InvalidInput
from keel.settings import get_settings
from keel.store import migrate
from keel.store.database import Database
from keel.store.types import utcnow

_RELATIVE = re.compile(r"^(\d+)([dh])$")


def parse_when(value: str, option: str) -> datetime:
    """`2026-11-01` (UTC midnight), an ISO timestamp, or `7d` / `12h` ago."""
    match = _RELATIVE.match(value.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return utcnow() - (timedelta(days=amount) if unit == "d" else timedelta(hours=amount))
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option}: {value!r} is not a date (2026-11-01), a timestamp or 7d / 12h", 2)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def usage(
    tenant: str | None = typer.Option(None, help="Only this tenant (default: every tenant)."),
    by: str = typer.Option("agent", help=f"Group by: {', '.join(GROUPS)}."),
    since: str | None = typer.Option(
        None, help="From (a date, a timestamp, or 7d / 12h ago; default: this month)."
    ),
    until: str | None = typer.Option(None, help="Until (exclusive)."),
    agent: str | None = typer.Option(None, help="Only this agent."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Usage and cost (model requests and tools with a unit cost), most expensive first."""
    db = Database.from_settings(get_settings())
    if not migrate.is_up_to_date(db.engine):
        fail("the database schema is not up to date: run `keel db upgrade`", 2)
    start = parse_when(since, "--since") if since else month_start(utcnow())
    end = parse_when(until, "--until") if until else None
    try:
        rows = usage_report(db, tenant_id=tenant, by=by, since=start, until=end, agent=agent)
    except InvalidInput as exc:
        fail(f"--{exc.field or 'by'}: {exc.message}", 2)
    finally:
        db.dispose()
    if as_json:
        for r in rows:
            typer.echo(json.dumps({by: r.key, "requests": r.requests, "input_tokens": r.input_tokens,
                                   "output_tokens": r.output_tokens, "cost_usd": r.cost_usd}))  # fmt: skip
        return
    since_text = f"since {start:%Y-%m-%d %H:%M} UTC" + (
        f" until {end:%Y-%m-%d %H:%M}" if end else ""
    )
    typer.echo(f"usage {since_text}" + (f", tenant {tenant}" if tenant else ""))
    header = (by.upper(), "REQUESTS", "INPUT", "OUTPUT", "COST USD")
    table = [header] + [
        (r.key, str(r.requests), str(r.input_tokens), str(r.output_tokens), f"{r.cost_usd:.6f}")
        for r in rows
    ]
    if len(rows) > 1:
        table.append(("TOTAL", str(sum(r.requests for r in rows)),
                      str(sum(r.input_tokens for r in rows)), str(sum(r.output_tokens for r in rows)),
                      f"{sum(r.cost_usd for r in rows):.6f}"))  # fmt: skip
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        typer.echo("  ".join(cells).rstrip())
    if not rows:
        typer.echo("(no usage)")

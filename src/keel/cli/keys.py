"""`keel keys …`: create, list and revoke API keys.

Secrets are printed once, at creation; Keel stores only their sha256. Every change is
recorded in the audit ledger (`change_hook`).
"""

from __future__ import annotations

import json
from datetime import datetime

import typer

from keel.cli.console import fail
from keel.control.audit import key_change_recorder
from keel.control.ledger import Ledger
from keel.errors import InvalidInput, NotFound
from keel.identity import keys
from keel.identity.scopes import VOCABULARY, parse_scopes
from keel.settings import get_settings
from keel.store.database import Database

app = typer.Typer(help="API keys (hashed, per tenant, scoped, revocable).", no_args_is_help=True)


def change_hook(db: Database, actor: str = "cli") -> keys.KeyChangeHook:
    """The hook every key change from the CLI goes through: an audit ledger entry."""
    return key_change_recorder(Ledger(db), actor)


def _db() -> Database:
    return Database.from_settings(get_settings())


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


@app.command()
def create(
    tenant: str = typer.Option(..., "--tenant", help="Tenant id (created if absent)."),
    user: str = typer.Option("admin", "--user", help="User id the key acts as."),
    scopes: str = typer.Option(
        "*", "--scopes", help=f"Comma-separated scopes: {', '.join(VOCABULARY)}."
    ),
    name: str = typer.Option("", "--name", help="A label to recognise the key by."),
) -> None:
    """Create a key and print its secret — the only time it is shown."""
    db = _db()
    try:
        created = keys.create_key(
            db, tenant, user, parse_scopes(scopes), name, on_change=change_hook(db)
        )
    except InvalidInput as exc:
        fail(f"error: --{exc.field or 'input'}: {exc.message}", 2)
    typer.echo(
        f"created {created.id} for tenant {created.tenant_id!r}, user {created.user_id!r}, "
        f"scopes {','.join(created.scopes)}"
    )
    typer.echo("secret (shown once; Keel keeps only a hash, so store it now):", err=True)
    typer.echo(created.secret)


@app.command("list")
def list_(
    tenant: str | None = typer.Option(None, "--tenant", help="Only this tenant's keys."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List keys (never secrets): prefix, scopes, created, last used, revoked."""
    rows = keys.list_keys(_db(), tenant)
    if as_json:
        for k in rows:
            typer.echo(
                json.dumps(
                    {
                        "id": k.id,
                        "tenant_id": k.tenant_id,
                        "user_id": k.user_id,
                        "name": k.name,
                        "prefix": k.prefix,
                        "scopes": list(k.scopes),
                        "created_at": k.created_at.isoformat(),
                        "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
                        "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
                    }
                )
            )
        return
    header = ("ID", "TENANT", "USER", "NAME", "PREFIX", "SCOPES", "CREATED", "LAST USED", "REVOKED")
    table = [header] + [
        (
            k.id,
            k.tenant_id,
            k.user_id,
            k.name or "-",
            k.prefix + "…",
            ",".join(k.scopes),
            _when(k.created_at),
            _when(k.last_used_at),
            _when(k.revoked_at),
        )
        for k in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@app.command()
def revoke(key_id: str = typer.Argument(..., help="The key's id (key_…).")) -> None:
    """Revoke a key; requests using it get 401 from now on."""
    db = _db()
    try:
        info = keys.revoke_key(db, key_id, on_change=change_hook(db))
    except NotFound:
        fail(f"error: no API key {key_id!r}", 1)
    typer.echo(f"revoked {info.id} (tenant {info.tenant_id!r}, user {info.user_id!r})")

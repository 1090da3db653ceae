"""`keel secrets …`: store, list and delete tenant secrets in the credential vault.

Values are read from standard input (or a hidden prompt on a terminal) or `--value-file`, so
they stay out of shell history; `--value` works but warns. Nothing here ever prints a value.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from keel.cli.console import fail
from keel.control.keys import local_key_provider
from keel.control.ledger import Ledger
from keel.control.vault import Vault
from keel.errors import InvalidInput, NotFound
from keel.settings import get_settings
from keel.store import migrate
from keel.store.database import Database

app = typer.Typer(
    help="Tenant secrets in the credential vault (values are never printed).", no_args_is_help=True
)


def _vault() -> Vault:
    settings = get_settings()
    db = Database.from_settings(settings)
    if not migrate.is_up_to_date(db.engine):
        fail("the database schema is not up to date: run `keel db upgrade`", 2)
    try:
        provider = local_key_provider(settings)
    except InvalidInput as exc:
        fail(exc.message, 2)
    if provider.generated_at is not None:
        typer.echo(
            f"keel: generated a development master key at {provider.generated_at} (0600); "
            "set KEEL_MASTER_KEY outside development",
            err=True,
        )
    return Vault(db, provider, ledger=Ledger(db))


def _read_value(value: str | None, value_file: Path | None) -> str:
    if value is not None and value_file is not None:
        fail("use --value or --value-file, not both", 2)
    if value is not None:
        typer.echo(
            "warning: --value leaves the secret in your shell history; prefer stdin", err=True
        )
        return value
    if value_file is not None:
        try:
            return value_file.read_text().rstrip("\r\n")
        except OSError as exc:
            fail(f"cannot read {value_file}: {exc}", 2)
    if sys.stdin.isatty():
        entered: str = typer.prompt("secret value", hide_input=True, confirmation_prompt=True)
        return entered
    return sys.stdin.read().rstrip("\r\n")


@app.command("set")
def set_secret(
    tenant: str = typer.Argument(..., help="Tenant id."),
    name: str = typer.Argument(..., help="Secret name, e.g. crm/api-token."),
    value_file: Path | None = typer.Option(
        None, "--value-file", help="Read the value from this file."
    ),
    value: str | None = typer.Option(
        None, "--value", help="The value itself (warns: shell history)."
    ),
    actor: str = typer.Option("cli", help="Who is doing this (recorded in the audit ledger)."),
) -> None:
    """Store a new version of a secret (value from stdin, a prompt, or --value-file)."""
    vault = _vault()
    try:
        version = vault.put(tenant, name, _read_value(value, value_file), actor=actor)
    except InvalidInput as exc:
        fail(f"invalid {exc.field or 'input'}: {exc.message}", 2)
    typer.echo(f"stored {tenant}/{name} version {version}")


@app.command("list")
def list_secrets(tenant: str = typer.Argument(..., help="Tenant id.")) -> None:
    """List secret names with their versions (never the values)."""
    try:
        infos = _vault().list(tenant)
    except InvalidInput as exc:
        fail(exc.message, 2)
    if not infos:
        typer.echo(f"no secrets for tenant {tenant}")
    for info in infos:
        versions = ",".join(str(v) for v in info.live_versions)
        typer.echo(
            f"{info.name}  latest v{info.latest_version}  versions {versions}  "
            f"by {info.created_by} at {info.created_at:%Y-%m-%d %H:%M:%S}"
        )


@app.command("delete")
def delete_secret(
    tenant: str = typer.Argument(..., help="Tenant id."),
    name: str = typer.Argument(..., help="Secret name."),
    version: int | None = typer.Option(None, help="Delete only this version."),
    actor: str = typer.Option("cli", help="Who is doing this (recorded in the audit ledger)."),
) -> None:
    """Delete (crypto-shred) every version of a secret, or one version."""
    try:
        deleted = _vault().delete(tenant, name, actor=actor, version=version)
    except NotFound as exc:
        fail(exc.message, 1)
    except InvalidInput as exc:
        fail(exc.message, 2)
    typer.echo(f"deleted {tenant}/{name} versions {', '.join(map(str, deleted))}")

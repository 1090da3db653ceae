"""`keel audit …`: verify the hash-chained audit ledger and list entries."""

from __future__ import annotations

import json

import typer

from keel.cli.console import fail
from keel.control.ledger import Ledger
from keel.settings import get_settings
from keel.store import migrate
from keel.store.database import Database

app = typer.Typer(
    help="The audit ledger: verify the hash chains, list entries.", no_args_is_help=True
)


def _ledger() -> Ledger:
    db = Database.from_settings(get_settings())
    if not migrate.is_up_to_date(db.engine):
        fail("the database schema is not up to date: run `keel db upgrade`", 2)
    return Ledger(db)


@app.command()
def verify(
    tenant: str | None = typer.Option(None, help="Verify one tenant's chain only."),
    global_only: bool = typer.Option(False, "--global", help="Verify the global chain only."),
) -> None:
    """Print OK with the entry count (and each chain's head hash), or the first bad entry (exit 1)."""
    if tenant is not None and global_only:
        fail("use --tenant or --global, not both", 2)
    chain = "" if global_only else tenant
    report = _ledger().verify(chain)
    if not report.ok:
        assert report.first_bad is not None
        typer.echo(f"FAILED after {report.count} good entries: {report.first_bad}", err=True)
        raise typer.Exit(1)
    typer.echo(f"OK: {report.count} entries in {len(report.heads)} chains")
    for name, head in sorted(report.heads.items()):
        typer.echo(f"  {name or '(global)'}: {head}")


@app.command("list")
def list_entries(
    tenant: str | None = typer.Option(None, help="Only this tenant's entries."),
    kind: str | None = typer.Option(None, help="Only entries of this kind (e.g. tool_decision)."),
    limit: int = typer.Option(50, min=1, max=10_000, help="At most this many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List entries, newest first."""
    for e in _ledger().entries(tenant_id=tenant, kind=kind, limit=limit):
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "id": e.id,
                        "seq": e.seq,
                        "tenant_id": e.tenant_id,
                        "actor": e.actor,
                        "kind": e.kind,
                        "subject": e.subject,
                        "data": e.data,
                        "created_at": e.created_at.isoformat(),
                        "hash": e.hash,
                    },
                    ensure_ascii=False,
                )
            )
        else:
            who = e.tenant_id or "(global)"
            typer.echo(
                f"{e.created_at:%Y-%m-%d %H:%M:%S} {who}#{e.seq} {e.kind} {e.actor} {e.subject} "
                f"{json.dumps(e.data, ensure_ascii=False)}"
            )

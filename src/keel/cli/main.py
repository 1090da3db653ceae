"""The `keel` command: wires every command group."""

from __future__ import annotations

import typer

from keel.cli import audit, db, policy, secrets, server

app = typer.Typer(
    name="keel",
    help="Keel: declare an agent as a spec; Keel runs it durably, governed and evaluated.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(policy.app, name="policy")
app.add_typer(audit.app, name="audit")
app.add_typer(secrets.app, name="secrets")
app.command("up")(server.up)


def main() -> None:
    app()

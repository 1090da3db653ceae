"""The `keel` command: wires every command group."""

from __future__ import annotations

import typer

from keel.cli import (
    agents,
    audit,
    dataset,
    db,
    evals,
    keys,
    policy,
    prompt,
    run,
    runs,
    secrets,
    server,
)

app = typer.Typer(
    name="keel",
    help="Keel: declare an agent as a spec; Keel runs it durably, governed and evaluated.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("up")(server.up)
app.command("serve")(server.serve)
app.command("worker")(server.worker)
app.command("run")(run.run)
app.command("chat")(run.chat)
app.add_typer(agents.app, name="agents")
app.add_typer(runs.runs_app, name="runs")
app.add_typer(runs.approvals_app, name="approvals")
app.add_typer(policy.app, name="policy")
app.add_typer(audit.app, name="audit")
app.add_typer(secrets.app, name="secrets")
app.add_typer(keys.app, name="keys")
app.add_typer(db.app, name="db")
app.add_typer(prompt.app, name="prompt")
app.add_typer(evals.app, name="eval")
app.add_typer(dataset.app, name="dataset")


def main() -> None:
    app()

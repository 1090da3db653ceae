"""The `keel` command: wires every command group."""

from __future__ import annotations

import gc

# Loading the command groups creates several hundred thousand long-lived objects (Pydantic
# schemas, SQLAlchemy tables, DBOS, Pydantic AI). Letting the cycle collector scan them again
# and again while they are created, and once more at exit, cost about 0.6 s of every command.
# So it is off while they load; then they are frozen (kept out of every later collection) and
# collection resumes.
_collecting = gc.isenabled()
gc.disable()
try:
    import typer

    from keel.cli import agents, audit, budget, db, keys, policy, run, runs, secrets, server, usage
    from keel.cli.dataset import app as dataset_app
    from keel.cli.evals import app as evals_app
    from keel.cli.prompt import app as prompt_app
finally:
    gc.freeze()
    if _collecting:
        gc.enable()

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
app.command("usage")(usage.usage)
app.add_typer(agents.app, name="agents")
app.add_typer(runs.runs_app, name="runs")
app.add_typer(runs.approvals_app, name="approvals")
app.add_typer(policy.app, name="policy")
app.add_typer(audit.app, name="audit")
app.add_typer(secrets.app, name="secrets")
app.add_typer(keys.app, name="keys")
app.add_typer(budget.app, name="budget")
app.add_typer(db.app, name="db")
app.add_typer(prompt_app, name="prompt")
app.add_typer(evals_app, name="eval")
app.add_typer(dataset_app, name="dataset")


def main() -> None:
    app()

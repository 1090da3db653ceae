"""`keel runs …` and `keel approvals …`: inspect and steer runs."""

from __future__ import annotations

import asyncio
import json

import typer

from keel.cli.console import fail
from keel.cli.runtime import CLI_USER, DEV_TENANT, runtime
from keel.errors import KeelError

runs_app = typer.Typer(help="Runs: list, show, events, cancel, re-drive.", no_args_is_help=True)
approvals_app = typer.Typer(help="Human approvals of tool calls.", no_args_is_help=True)
TENANT = typer.Option(DEV_TENANT, help="Tenant.")


@runs_app.command("list")
def list_runs(
    tenant: str = TENANT,
    agent: str | None = typer.Option(None),
    status: str | None = typer.Option(None),
    limit: int = typer.Option(20, min=1, max=500),
) -> None:
    """Newest runs first."""
    with runtime(execute=False) as rt:
        for r in rt.fabric.list_runs(tenant, agent=agent, status=status, limit=limit):
            typer.echo(
                f"{r.id}  {r.status:<16} {r.agent:<12} {r.model:<14} {r.created_at:%Y-%m-%d %H:%M:%S}  ${r.cost_usd:.4f}"
            )


@runs_app.command()
def show(run_id: str, tenant: str = TENANT) -> None:
    """One run's envelope, status, output, error and usage, as JSON."""
    with runtime(execute=False) as rt:
        try:
            view = rt.fabric.get(tenant, run_id)
        except KeelError as exc:
            fail(f"error: {exc.message}")
        data = {
            k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in view.__dict__.items()
        }
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


@runs_app.command()
def events(
    run_id: str,
    tenant: str = TENANT,
    after: int = typer.Option(0, help="Only events after this seq."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until the run ends."),
) -> None:
    """A run's events, one JSON line each."""
    with runtime(execute=False) as rt:
        try:
            if follow:

                async def tail() -> None:
                    async for e in rt.fabric.follow(tenant, run_id, after):
                        typer.echo(
                            json.dumps(
                                {"seq": e.seq, "type": e.type, "data": e.data}, ensure_ascii=False
                            )
                        )

                asyncio.run(tail())
            else:
                for e in rt.fabric.events(tenant, run_id, after):
                    typer.echo(
                        json.dumps(
                            {"seq": e.seq, "type": e.type, "data": e.data}, ensure_ascii=False
                        )
                    )
        except KeelError as exc:
            fail(f"error: {exc.message}")


@runs_app.command()
def cancel(run_id: str, tenant: str = TENANT, actor: str = typer.Option(CLI_USER)) -> None:
    """Stop a run; its partial output and usage are kept."""
    with runtime(execute=False) as rt:
        try:
            view = rt.fabric.cancel(tenant, run_id, actor)
        except KeelError as exc:
            fail(f"error: {exc.message}")
        typer.echo(f"{view.id} {view.status}")


@runs_app.command()
def redrive(run_id: str, tenant: str = TENANT, actor: str = typer.Option(CLI_USER)) -> None:
    """Re-run a failed or timed-out run from its failed step, reusing the finished steps."""
    with runtime(execute=False) as rt:
        try:
            view = rt.fabric.redrive(tenant, run_id, actor)
        except KeelError as exc:
            fail(f"error: {exc.message}")
        typer.echo(f"{view.id} {view.status} (re-drive #{view.redrives})")


@approvals_app.command("list")
def list_approvals(tenant: str = TENANT, status: str | None = typer.Option("pending")) -> None:
    """Approvals (pending by default; --status '' for all)."""
    with runtime(execute=False) as rt:
        for a in rt.fabric.approvals(tenant, status=status or None):
            typer.echo(
                f"{a.id}  {a.status:<9} run {a.run_id}  {a.tool}({json.dumps(a.args, ensure_ascii=False)})  expires {a.expires_at:%Y-%m-%d %H:%M}"
            )


def _decide(approve: bool, approval_id: str, tenant: str, actor: str, note: str) -> None:
    with runtime(execute=False) as rt:
        try:
            fn = rt.fabric.approve if approve else rt.fabric.reject
            view = fn(tenant, approval_id, actor, note)
        except KeelError as exc:
            fail(f"error: {exc.message}")
        typer.echo(f"{view.id} {view.status}")


@approvals_app.command()
def approve(
    approval_id: str,
    tenant: str = TENANT,
    actor: str = typer.Option(CLI_USER),
    note: str = typer.Option(""),
) -> None:
    """Approve a pending tool call; the run continues."""
    _decide(True, approval_id, tenant, actor, note)


@approvals_app.command()
def reject(
    approval_id: str,
    tenant: str = TENANT,
    actor: str = typer.Option(CLI_USER),
    note: str = typer.Option(""),
) -> None:
    """Reject a pending tool call; the model is told and the run continues without it."""
    _decide(False, approval_id, tenant, actor, note)

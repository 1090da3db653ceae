"""`keel run` (one run, prints the result) and `keel chat` (a conversation in the terminal)."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import typer

from keel.cli.console import error_text, fail
from keel.cli.runtime import CLI_USER, DEV_TENANT, Runtime, cli_principal, runtime
from keel.errors import KeelError
from keel.fabric.events import Event, EventType
from keel.fabric.runs import RunView
from keel.settings import get_settings

WORKER_HELP = (
    "Execute the run in this process (default on the embedded SQLite setup); with --no-worker "
    "a running `keel worker`/`keel up` picks it up (the PostgreSQL default)."
)


def _progress(event: Event) -> str | None:
    d = event.data
    if event.type == EventType.RUN_STARTED:
        return f"· running on {d.get('worker', '?')}"
    if event.type == EventType.MODEL_RESPONSE:
        calls = ", ".join(c["tool"] for c in d.get("tool_calls", []))
        return (
            f"· model {d.get('model')}: {d.get('input_tokens')}+{d.get('output_tokens')} tokens"
            + (f", calls {calls}" if calls else "")
        )
    if event.type == EventType.TOOL_RESULT:
        return f"· tool {d.get('tool')}: {'ok' if d.get('ok') else d.get('error')}"
    if event.type == EventType.APPROVAL_REQUESTED:
        return f"· waiting for approval {d.get('approval_id')} ({d.get('tool')}): keel approvals approve {d.get('approval_id')}"
    return None


async def _follow(rt: Runtime, tenant: str, run_id: str, quiet: bool) -> RunView:
    async for event in rt.fabric.follow(tenant, run_id):
        line = None if quiet else _progress(event)
        if line:
            typer.echo(line, err=True)
        if event.type == EventType.RUN_WAITING:
            break
    return rt.fabric.get(tenant, run_id)


def print_result(view: RunView) -> None:
    if view.status == "succeeded" and view.output is not None:
        if view.output.get("type") == "object":
            typer.echo(json.dumps(view.output["data"], ensure_ascii=False, indent=2))
        else:
            typer.echo(view.output.get("text", ""))
        return
    if view.status == "waiting_approval":
        typer.echo(f"run {view.id} is waiting for approval (keel approvals list)", err=True)
        raise typer.Exit(3)
    detail = (view.error or {}).get("message", "")
    fail(f"run {view.id} {view.status}" + (f": {detail}" if detail else ""))


def run(
    agent: str = typer.Argument(..., help="Agent name (keel agents list)."),
    input: str = typer.Option(..., "--input", "-i", help="The run input as JSON."),
    prompt: str | None = typer.Option(
        None, help="Prompt alias or version (default: the spec's alias)."
    ),
    tenant: str = typer.Option(DEV_TENANT, help="Tenant to run as."),
    user: str = typer.Option(CLI_USER, help="User to run as."),
    lane: str = typer.Option("interactive", help="interactive or batch."),
    idempotency_key: str | None = typer.Option(
        None, help="Submitting twice with one key runs once."
    ),
    worker: bool | None = typer.Option(None, "--worker/--no-worker", help=WORKER_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress on stderr."),
) -> None:
    """Run AGENT once on INPUT and print its result (typed agents print JSON)."""
    try:
        payload: Any = json.loads(input)
    except json.JSONDecodeError as exc:
        fail(f"--input: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
    if not isinstance(payload, dict):
        fail("--input: must be a JSON object")
    settings = get_settings()
    execute = settings.is_sqlite if worker is None else worker
    with runtime(execute=execute, settings=settings) as rt:
        try:
            principal = cli_principal(rt.db, tenant, user)
            view = rt.fabric.submit(
                principal, agent, payload, prompt=prompt, lane=lane, idempotency_key=idempotency_key
            )
            if not quiet:
                typer.echo(
                    f"· run {view.id} queued ({view.model}, prompt {view.prompt_name}@{view.prompt_version})",
                    err=True,
                )
            final = asyncio.run(_follow(rt, tenant, view.id, quiet))
        except KeelError as exc:
            fail(error_text(exc))
    print_result(final)


def chat(
    agent: str = typer.Argument(..., help="Agent name."),
    locale: str = typer.Option("en", help="Answer language (en, sv, da, no, fi, de, fr, cs, sk)."),
    tenant: str = typer.Option(DEV_TENANT),
    user: str = typer.Option(CLI_USER),
) -> None:
    """Talk to a chat agent in the terminal; each line is a turn of one conversation."""
    from keel.fabric.turns import create_conversation, submit_turn

    with runtime(execute=True) as rt:
        principal = cli_principal(rt.db, tenant, user)
        try:
            conversation = create_conversation(rt.fabric, principal, agent)
        except KeelError as exc:
            fail(f"error: {exc.message}")
        typer.echo(
            f"conversation {conversation} with {agent} — empty line or Ctrl-D to quit", err=True
        )
        while True:
            try:
                typer.echo("you> ", nl=False, err=True)
                line = sys.stdin.readline()
            except KeyboardInterrupt:
                break
            line = line.strip()
            if not line:
                break
            try:
                _turn, view = submit_turn(
                    rt.fabric, principal, conversation, {"question": line, "locale": locale}
                )
                final = asyncio.run(_follow(rt, tenant, view.id, quiet=True))
            except KeelError as exc:
                typer.echo(error_text(exc), err=True)
                continue
            text = (final.output or {}).get("text") or json.dumps(
                (final.output or {}).get("data"), ensure_ascii=False
            )
            typer.echo(
                f"{agent}> {text}" if final.status == "succeeded" else f"[{final.status}] {text}"
            )

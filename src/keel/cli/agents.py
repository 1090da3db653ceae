"""`keel agents …`: list the deployed agents, validate agent folders."""

from __future__ import annotations

from pathlib import Path

import typer

from keel.agents.loader import is_agent_folder, load_agent
from keel.cli.console import fail
from keel.cli.runtime import load_catalog
from keel.errors import SpecError, SpecProblem
from keel.settings import get_settings
from keel.store.database import Database

app = typer.Typer(help="Agent specs.", no_args_is_help=True)


@app.command("list")
def list_agents() -> None:
    """The agents Keel serves: name, spec version, model, prompt alias and tools."""
    settings = get_settings()
    db = Database.from_settings(settings)
    db.upgrade()
    catalog = load_catalog(settings, db)
    for loaded in catalog:
        spec = loaded.spec
        aliases = catalog.prompts.aliases(spec.prompt_name)
        prompt = ", ".join(f"{a}→v{v}" for a, v in sorted(aliases.items()))
        tools = ", ".join(loaded.tools) or "-"
        typer.echo(
            f"{spec.name:<16} {loaded.version[:12]}  model {spec.model.default:<16} prompt {prompt}  tools {tools}"
        )


@app.command()
def validate(
    dirs: list[Path] = typer.Argument(..., help="Agent folders, or folders of agent folders."),
) -> None:
    """Check agent folders; print every problem as `file:field: reason`, exit 1 if any."""
    problems: list[SpecProblem] = []
    count = 0
    for path in dirs:
        if not path.is_dir():
            problems.append(SpecProblem(str(path), "-", "not a folder"))
            continue
        nested = [p for p in sorted(path.iterdir()) if is_agent_folder(p)]
        folders = nested if nested and not is_agent_folder(path) else [path]
        for folder in folders:
            try:
                load_agent(folder)
                count += 1
            except SpecError as exc:
                problems += [
                    SpecProblem(str(folder / p.file), p.field, p.reason) for p in exc.problems
                ]
    if problems:
        fail("\n".join(str(p) for p in problems))
    typer.echo(f"ok: {count} agent(s) valid")

"""`keel dataset …`: eval datasets — grow one from production runs, describe one."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer

from keel.cli.console import fail
from keel.errors import KeelError
from keel.evals.harvest import FeedbackFilter

app = typer.Typer(help="Eval datasets (JSONL cases).", no_args_is_help=True)

FEEDBACK: dict[str, FeedbackFilter] = {"up": "up", "down": "down", "any": "any", "none": "none"}
_AGO = re.compile(r"^(\d+)\s*([mhd])$")


def parse_since(text: str | None) -> datetime | None:
    """`30m`, `12h`, `7d` (ago) or an ISO date/time (UTC when it names no zone)."""
    if text is None:
        return None
    m = _AGO.match(text.strip())
    if m:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[m.group(2)]
        return datetime.now(UTC) - timedelta(**{unit: int(m.group(1))})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            "use 30m, 12h, 7d or an ISO date like 2026-05-01", param_hint="--since"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@app.command("add-from-runs")
def add_from_runs(
    agent: str = typer.Argument(..., help="Agent whose runs become cases."),
    out: Path = typer.Option(
        ..., "--out", "-o", help="JSONL file to add the cases to (created if absent)."
    ),
    since: str | None = typer.Option(None, help="Only runs since: 30m, 12h, 7d or an ISO date."),
    feedback: str = typer.Option(
        "none", help="up: runs rated thumbs-up (their output becomes `expected`); down; any; none."
    ),
    limit: int = typer.Option(
        200, min=1, max=100_000, help="At most this many runs, newest first."
    ),
    tenant: str | None = typer.Option(None, help="Only this tenant's runs."),
) -> None:
    """Turn an agent's finished runs (and the feedback on them) into eval cases."""
    from keel.cli.prompt import open_database
    from keel.evals.harvest import harvest_cases, merge_cases

    if feedback not in FEEDBACK:
        fail("--feedback must be up, down, any or none")
    when = parse_since(since)
    db = open_database()
    try:
        cases = harvest_cases(
            db,
            agent,
            since=when,
            feedback=FEEDBACK[feedback],
            limit=limit,
            tenant_id=tenant,
        )
    finally:
        db.dispose()
    existing = out.read_text(encoding="utf-8") if out.exists() else None
    try:
        merged, added = merge_cases(existing, cases, source=str(out))
    except KeelError as exc:
        fail(f"error: {exc.message}")
    if added:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(merged, encoding="utf-8")
        tmp.replace(out)
    expected = sum(1 for c in cases if c.expected is not None)
    typer.echo(
        f"{out}: {added} case(s) added from {len(cases)} run(s) of {agent} "
        f"({expected} with the output as expected), {len(cases) - added} already present"
    )


@app.command("info")
def info(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A JSONL dataset."),
) -> None:
    """The dataset's version (content hash), size and slices."""
    from keel.evals.dataset import load_dataset
    from keel.evals.suite import fill_placeholders

    try:
        dataset = fill_placeholders(load_dataset(file))
    except KeelError as exc:
        fail(f"error: {exc.message}")
    typer.echo(f"{file}: {len(dataset)} cases, version {dataset.version}")
    for key in dataset.slice_keys():
        counts = Counter(str(c.metadata[key]) for c in dataset.cases if key in c.metadata)
        typer.echo(f"  {key}: " + ", ".join(f"{v} {n}" for v, n in sorted(counts.items())))
    with_expected = sum(1 for c in dataset.cases if c.expected is not None)
    typer.echo(f"  with expected: {with_expected}")

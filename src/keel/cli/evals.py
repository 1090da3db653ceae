"""`keel eval …`: run the promotion gate on an agent's dataset, read reports and run scores.

`keel eval run AGENT [--candidate N] [--baseline ALIAS]` runs every case of the agent's
dataset through the fabric twice — as the candidate (default: the newest prompt version)
and as the baseline (default: whatever `production` points at) — scores them with the
agent's scorers and judge panels, prints the gate report, writes `report.json` and a
self-contained `report.html`, stores the report for `keel prompt promote`, and exits 0 on
PASS, 1 on FAIL (2 when it could not run).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer

from keel.cli.console import fail
from keel.errors import KeelError

app = typer.Typer(
    help="Evals: the promotion gate, its reports, production run scores.", no_args_is_help=True
)

EXIT_FAIL = 1
EXIT_ERROR = 2


def _default_out(home: Path, agent: str) -> Path:
    return home / "evals" / agent / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


@app.command("run")
def run_eval(
    agent: str = typer.Argument(..., help="Agent name (keel agents list)."),
    candidate: int | None = typer.Option(
        None, "--candidate", "-c", min=1, help="Prompt version to test (default: the newest)."
    ),
    baseline: str = typer.Option(
        "production", "--baseline", "-b", help="Alias or version to compare against."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Folder for report.json and report.html (default .keel/evals/AGENT/TIME).",
    ),
    worker: bool | None = typer.Option(
        None,
        "--worker/--no-worker",
        help="Execute the cases in this process (default on SQLite); --no-worker leaves them "
        "to running workers.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the verdict line."),
) -> None:
    """Gate a candidate prompt version against a baseline on the agent's eval dataset."""
    from keel.cli.runtime import build_extensions, cli_principal, load_catalog
    from keel.evals.delivery import completions_of, suite_of
    from keel.evals.experiment import run_experiment
    from keel.evals.fabric_runner import EVAL_TENANT, EVAL_USER, FabricCaseRunner
    from keel.evals.render import render_html, render_json, render_text
    from keel.evals.report_store import EvalReportStore
    from keel.evals.runner import PromptVersionRef
    from keel.fabric.engine import Lane
    from keel.fabric.service import Fabric
    from keel.ids import new_id
    from keel.settings import get_settings
    from keel.store.database import Database

    started = time.perf_counter()
    settings = get_settings()
    execute = settings.is_sqlite if worker is None else worker
    db = Database.from_settings(settings)
    fabric: Fabric | None = None
    try:
        db.upgrade()
        catalog = load_catalog(settings, db)
        try:
            loaded = catalog.get(agent)
            suite = suite_of(loaded)
            if suite is None or not suite.configured:
                fail(
                    f"agent {agent} has no evals: section with scorers or judges in its agent.yaml",
                    EXIT_ERROR,
                )
            dataset = suite.dataset()
            prompts = catalog.prompts
            prompt_name = loaded.spec.prompt_name
            cand = (
                prompts.resolve(prompt_name, str(candidate))
                if candidate
                else prompts.versions(prompt_name)[-1]
            )
            base = prompts.resolve(prompt_name, baseline)
        except KeelError as exc:
            fail(f"error: {exc.message}", EXIT_ERROR)
        if cand.version == base.version:
            fail(
                f"the candidate v{cand.version} is the baseline ({baseline} → v{base.version}); "
                f"push a new version first: keel prompt push {agent} FILE",
                EXIT_ERROR,
            )
        # The in-process worker runs as many eval cases at once as the experiment sends, and
        # serves only this experiment: it listens to the cases' lane alone, polled as often as
        # the interactive one.
        lane = Lane.BATCH if "batch" in loaded.spec.runners else Lane.INTERACTIVE
        concurrency = suite.config.concurrency
        settings = settings.model_copy(
            update={
                "batch_concurrency": max(settings.batch_concurrency, concurrency),
                "tenant_concurrency": max(settings.tenant_concurrency, concurrency),
                "batch_poll_seconds": min(
                    settings.batch_poll_seconds, settings.interactive_poll_seconds
                ),
            }
        )
        fabric = Fabric(settings, db, catalog, extensions=build_extensions(settings, db, catalog))
        fabric.start(execute=execute, lanes=[lane])
        principal = cli_principal(db, EVAL_TENANT, EVAL_USER)
        runner = FabricCaseRunner(
            fabric,
            agent,
            principal,
            experiment=new_id("evx"),
            lane=lane.value,
            completions=completions_of(fabric.extensions) if execute else None,
        )
        if not quiet:
            typer.echo(
                f"· {agent}: v{cand.version} vs {baseline} (v{base.version}) on {len(dataset)} cases "
                f"× 2 runs, dataset {dataset.version[:12]}"
                + ("" if execute else "; the cases run on the workers (keel worker / keel up)"),
                err=True,
            )
        try:
            report = asyncio.run(
                run_experiment(
                    agent,
                    dataset,
                    PromptVersionRef.from_resolved(cand),
                    PromptVersionRef.from_resolved(base),
                    runner,
                    suite.scorers,
                    suite.panels,
                    suite.config.gate,
                    concurrency=concurrency,
                )
            )
        except KeelError as exc:
            fail(f"error: {exc.message}", EXIT_ERROR)
        stored = EvalReportStore(db).save(report)
    finally:
        if fabric is not None:
            fabric.stop()
        db.dispose()
    folder = out or _default_out(settings.home, agent)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(render_json(stored), encoding="utf-8")
    (folder / "report.html").write_text(render_html(stored), encoding="utf-8")
    if quiet:
        typer.echo(f"{stored.verdict} {stored.id}")
    else:
        typer.echo(render_text(stored))
        typer.echo(f"report {stored.id}  ({time.perf_counter() - started:.1f} s)")
        typer.echo(f"  {folder / 'report.json'}\n  {folder / 'report.html'}")
        if stored.passed:
            typer.echo(f"promote with: keel prompt promote {agent} --version {cand.version}")
    if not stored.passed:
        raise typer.Exit(EXIT_FAIL)


@app.command("reports")
def list_reports(
    agent: str = typer.Argument(..., help="Agent name."),
    limit: int = typer.Option(20, min=1, max=500),
) -> None:
    """The agent's stored gate reports, newest first."""
    from keel.cli.prompt import open_catalog
    from keel.evals.report_store import EvalReportStore

    db, catalog = open_catalog()
    try:
        try:
            prompt_name = catalog.get(agent).spec.prompt_name
        except KeelError as exc:
            fail(f"error: {exc.message}")
        for r in EvalReportStore(db).history(prompt_name, limit=limit):
            typer.echo(
                f"{r.id}  {r.created_at:%Y-%m-%d %H:%M:%S}  {r.verdict:<4}  v{r.candidate_version} vs "
                f"v{r.baseline_version}  dataset {r.dataset_version[:12]} ({r.dataset_size} cases)  "
                f"config {r.config_hash[:12]}"
            )
    finally:
        db.dispose()


@app.command("show")
def show_report(
    report_id: str = typer.Argument(..., help="Report id (keel eval reports AGENT)."),
    html: Path | None = typer.Option(None, help="Also write the HTML page to this file."),
) -> None:
    """Print a stored gate report."""
    from keel.cli.prompt import open_database
    from keel.evals.render import render_html, render_text
    from keel.evals.report_store import EvalReportStore

    db = open_database()
    try:
        try:
            report = EvalReportStore(db).get(report_id)
        except KeelError as exc:
            fail(f"error: {exc.message}")
    finally:
        db.dispose()
    typer.echo(render_text(report))
    if html is not None:
        html.write_text(render_html(report), encoding="utf-8")


@app.command("scores")
def scores(
    agent: str = typer.Argument(..., help="Agent name."),
    hours: float | None = typer.Option(None, min=0, help="Only scores of the last HOURS."),
    tenant: str | None = typer.Option(None, help="Only this tenant's runs."),
) -> None:
    """Production run scores per prompt version: run-time checks, online sampling, shadow runs."""
    from keel.cli.prompt import open_catalog
    from keel.evals.online import OnlineQueue
    from keel.evals.score_store import ScoreStore

    db, catalog = open_catalog()
    try:
        try:
            prompt_name = catalog.get(agent).spec.prompt_name
        except KeelError as exc:
            fail(f"error: {exc.message}")
        since = datetime.now(UTC) - timedelta(hours=hours) if hours is not None else None
        rows = ScoreStore(db).by_version(prompt_name, since=since, tenant_id=tenant)
        aliases = catalog.prompts.aliases(prompt_name)
        queue = OnlineQueue(db).counts()
    finally:
        db.dispose()
    if not rows:
        typer.echo(f"no scores recorded for {prompt_name} yet")
    for version in sorted({r.prompt_version for r in rows}, key=lambda v: -(v or 0)):
        names = ", ".join(a for a, v in sorted(aliases.items()) if v == version)
        typer.echo(f"v{version}" + (f"  ({names})" if names else ""))
        for r in (r for r in rows if r.prompt_version == version):
            typer.echo(f"  {r.source:<7} {r.metric:<24} {r.mean:6.3f}  over {r.runs} run(s)")
    if queue:
        typer.echo("online evals: " + ", ".join(f"{n} {s}" for s, n in sorted(queue.items())))

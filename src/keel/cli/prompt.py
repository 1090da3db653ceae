"""`keel prompt …`: the prompt registry — versions, aliases, eval-gated promotion, rollback,
canary and shadow rollouts.

NAME is an agent (its prompt is meant) or a prompt name. `production` moves only by
`promote` (a stored PASS report from `keel eval run`, or `--force --reason`, audited) and
back by `rollback`; `<alias>-canary` aliases only by rollouts.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path

import typer

from keel.cli.console import fail
from keel.errors import KeelError, NotFound
from keel.fabric.catalog import AgentCatalog
from keel.store.database import Database

app = typer.Typer(
    help="Prompt versions, aliases, eval-gated promotion and rollouts.", no_args_is_help=True
)
rollout_app = typer.Typer(help="Canary and shadow rollouts: status, stop.", no_args_is_help=True)
app.add_typer(rollout_app, name="rollout")

ACTOR = typer.Option(
    "cli", help="Who is acting (recorded in the alias history and the audit ledger)."
)
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def open_database() -> Database:
    """The configured database, migrated."""
    from keel.settings import get_settings

    db = Database.from_settings(get_settings())
    db.upgrade()
    return db


def open_catalog() -> tuple[Database, AgentCatalog]:
    """The database and the deployed agents (deploying seeds `production` once)."""
    from keel.cli.runtime import load_catalog
    from keel.settings import get_settings

    settings = get_settings()
    db = Database.from_settings(settings)
    db.upgrade()
    return db, load_catalog(settings, db)


def prompt_name_of(catalog: AgentCatalog, name: str) -> str:
    """NAME's prompt: the agent's prompt when NAME is an agent, else NAME if it is stored."""
    if catalog.exists(name):
        return catalog.get(name).spec.prompt_name
    if name in catalog.prompts.names():
        return name
    raise NotFound("agent or prompt", name)


def _v(version: int | None) -> str:
    return f"v{version}" if version is not None else "—"


def _aliases_of(catalog: AgentCatalog, prompt: str, version: int) -> str:
    names = [a for a, v in sorted(catalog.prompts.aliases(prompt).items()) if v == version]
    return ", ".join(names)


@app.command("push")
def push(
    name: str = typer.Argument(..., help="Agent or prompt name."),
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, help="Template file."
    ),
    alias: str | None = typer.Option(
        None, help="Also point this alias at the version (not production)."
    ),
    actor: str = ACTOR,
) -> None:
    """Store FILE as a new immutable version (the same text twice is the same version)."""
    from keel.evals.promotion import PromptPromotions

    db, catalog = open_catalog()
    try:
        template = file.read_text(encoding="utf-8")
        meta: dict[str, object] = {}
        if catalog.exists(name):
            loaded = catalog.get(name)
            spec = loaded.spec
            allowed = set(spec.prompt.variables) | {"user_locale", "response_language"}
            if hasattr(loaded.input_type, "model_fields"):
                allowed |= set(loaded.input_type.model_fields)
            unknown = sorted({m.group(1) for m in _VARIABLE.finditer(template)} - allowed)
            if unknown:
                fail(
                    f"{file}: unknown prompt variable(s) {', '.join(unknown)}; "
                    f"{name} provides {', '.join(sorted(allowed))}"
                )
            # the deploy's metadata, so the same text pushed or deployed is one version
            meta = {
                "model": spec.model.default,
                "settings": spec.model.settings,
                "file": spec.prompt.file,
            }
            prompt = spec.prompt_name
        else:
            prompt = name
        before = (
            {p.version for p in catalog.prompts.versions(prompt)}
            if prompt in catalog.prompts.names()
            else set()
        )
        version = catalog.prompts.push(prompt, template, meta, created_by=actor)
        state = "new" if version not in before else "unchanged: already stored"
        typer.echo(f"{prompt} v{version} ({state})")
        if alias is not None and catalog.prompts.aliases(prompt).get(alias) == version:
            typer.echo(f"{prompt}@{alias} → v{version} (unchanged)")
        elif alias is not None:
            try:
                PromptPromotions(db).set_alias(
                    prompt, alias, version, actor=actor, reason=f"pushed {file.name}"
                )
            except KeelError as exc:
                fail(f"error: {exc.message}")
            typer.echo(f"{prompt}@{alias} → v{version}")
    finally:
        db.dispose()


@app.command("list")
def list_prompts(
    name: str | None = typer.Argument(None, help="Agent or prompt name (default: all)."),
) -> None:
    """Prompts and their aliases, or one prompt's versions."""
    db, catalog = open_catalog()
    try:
        if name is None:
            for prompt in catalog.prompts.names():
                aliases = catalog.prompts.aliases(prompt)
                count = len(catalog.prompts.versions(prompt))
                moved = "  ".join(f"{a}→v{v}" for a, v in sorted(aliases.items()))
                typer.echo(f"{prompt:<20} {count} version(s)  {moved}")
            return
        try:
            prompt = prompt_name_of(catalog, name)
        except KeelError as exc:
            fail(f"error: {exc.message}")
        for p in catalog.prompts.versions(prompt):
            first = next((line.strip() for line in p.template.splitlines() if line.strip()), "")
            names = _aliases_of(catalog, prompt, p.version)
            typer.echo(f"v{p.version:<4} {names:<28} {first[:60]}")
    finally:
        db.dispose()


@app.command("show")
def show(
    name: str = typer.Argument(..., help="Agent or prompt name."),
    ref: str = typer.Argument("production", help="A version number or an alias."),
) -> None:
    """A version's template and metadata."""
    db, catalog = open_catalog()
    try:
        try:
            prompt = prompt_name_of(catalog, name)
            resolved = catalog.prompts.resolve(prompt, ref)
        except KeelError as exc:
            fail(f"error: {exc.message}")
        aliases = _aliases_of(catalog, prompt, resolved.version)
        typer.echo(f"{prompt} v{resolved.version}" + (f"  ({aliases})" if aliases else ""))
        typer.echo(f"meta: {json.dumps(resolved.meta, ensure_ascii=False, sort_keys=True)}")
        typer.echo("---")
        typer.echo(resolved.template.rstrip("\n"))
    finally:
        db.dispose()


@app.command("diff")
def diff(
    name: str = typer.Argument(..., help="Agent or prompt name."),
    old: str = typer.Argument(..., help="Version or alias (the 'from' side)."),
    new: str = typer.Argument(..., help="Version or alias (the 'to' side)."),
) -> None:
    """A unified diff between two versions' templates."""
    db, catalog = open_catalog()
    try:
        try:
            prompt = prompt_name_of(catalog, name)
            a = catalog.prompts.resolve(prompt, old)
            b = catalog.prompts.resolve(prompt, new)
        except KeelError as exc:
            fail(f"error: {exc.message}")
    finally:
        db.dispose()
    lines = difflib.unified_diff(
        a.template.splitlines(keepends=True),
        b.template.splitlines(keepends=True),
        fromfile=f"{prompt}@v{a.version}",
        tofile=f"{prompt}@v{b.version}",
    )
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    typer.echo(
        text.rstrip("\n") if text else f"v{a.version} and v{b.version} have the same template"
    )


@app.command("alias")
def set_alias(
    name: str = typer.Argument(..., help="Agent or prompt name."),
    alias: str = typer.Argument(..., help="The alias, e.g. staging (never production)."),
    version: int = typer.Argument(..., min=1, help="The version it points at."),
    reason: str = typer.Option("", help="Why (kept in the alias history)."),
    actor: str = ACTOR,
) -> None:
    """Point an alias at a version. `production` moves only by `keel prompt promote`."""
    from keel.evals.promotion import PromptPromotions

    db, catalog = open_catalog()
    try:
        prompt = prompt_name_of(catalog, name)
        change = PromptPromotions(db).set_alias(prompt, alias, version, actor=actor, reason=reason)
    except KeelError as exc:
        fail(f"error: {exc.message}")
    finally:
        db.dispose()
    typer.echo(f"{prompt}@{alias}: {_v(change.from_version)} → v{change.to_version}")


@app.command("promote")
def promote(
    agent: str = typer.Argument(..., help="Agent name."),
    version: int | None = typer.Option(
        None, "--version", "-v", min=1, help="Default: the newest version."
    ),
    alias: str = typer.Option("production", help="The alias to move."),
    force: bool = typer.Option(
        False, "--force", help="Promote without a PASS report (needs --reason; audited)."
    ),
    reason: str = typer.Option("", help="Why; required with --force, written to the audit ledger."),
    actor: str = ACTOR,
) -> None:
    """Move the alias to a version that passed the gate (`keel eval run`) against it."""
    from keel.evals.delivery import suite_of
    from keel.evals.promotion import Evidence, PromptPromotions

    db, catalog = open_catalog()
    try:
        loaded = catalog.get(agent)
        suite = suite_of(loaded)
        if suite is None:
            if not force:
                fail(
                    f"error: agent {agent} has no evals: section, so nothing can pass the gate; use --force --reason"
                )
            evidence = Evidence(agent, loaded.spec.prompt_name, "", "")
        else:
            evidence = Evidence.of(suite)
        change = PromptPromotions(db).promote(
            evidence, version, alias=alias, actor=actor, force=force, reason=reason
        )
    except KeelError as exc:
        fail(f"error: {exc.message}")
    finally:
        db.dispose()
    how = f"FORCED ({change.reason}); audited" if force else f"PASS report {change.report_id}"
    typer.echo(
        f"{change.prompt_name}@{alias}: v{change.from_version} → v{change.to_version} ({how})"
    )


@app.command("rollback")
def rollback(
    name: str = typer.Argument(..., help="Agent or prompt name."),
    alias: str = typer.Option("production", help="The alias to move back."),
    reason: str = typer.Option(..., help="Why (alias history and audit ledger)."),
    actor: str = ACTOR,
) -> None:
    """Move the alias back to the version it had before its last move."""
    from keel.evals.promotion import PromptPromotions

    db, catalog = open_catalog()
    try:
        prompt = prompt_name_of(catalog, name)
        change = PromptPromotions(db).rollback(prompt, alias=alias, actor=actor, reason=reason)
    except KeelError as exc:
        fail(f"error: {exc.message}")
    finally:
        db.dispose()
    typer.echo(
        f"{change.prompt_name}@{alias}: v{change.from_version} → v{change.to_version} (rolled back)"
    )


@app.command("history")
def history(
    name: str = typer.Argument(..., help="Agent or prompt name."),
    alias: str | None = typer.Option(None, help="Only this alias."),
) -> None:
    """Every alias move, oldest first: who, when, why."""
    db, catalog = open_catalog()
    try:
        try:
            prompt = prompt_name_of(catalog, name)
        except KeelError as exc:
            fail(f"error: {exc.message}")
        for move in catalog.prompts.history(prompt, alias):
            start = f"v{move.from_version}" if move.from_version is not None else "—"
            typer.echo(
                f"{move.at:%Y-%m-%d %H:%M:%S}  {move.alias:<20} {start} → v{move.to_version}  "
                f"{move.actor}: {move.reason}"
            )
    finally:
        db.dispose()


@app.command("canary")
def canary(
    agent: str = typer.Argument(..., help="Agent name."),
    version: int = typer.Option(..., "--version", "-v", min=1, help="The candidate version."),
    percent: float = typer.Option(
        0.0, min=0, max=99.999, help="Share of users (sticky) on the candidate."
    ),
    shadow: bool = typer.Option(
        False, "--shadow", help="Also run the candidate on every baseline run's input, unseen."
    ),
    alias: str = typer.Option("production", help="The alias whose traffic is split."),
    max_error_rate: float = typer.Option(
        0.05, min=0, max=1, help="Allowed error-rate increase (absolute)."
    ),
    max_latency_ratio: float = typer.Option(1.5, min=1, help="Allowed p95 latency ratio."),
    min_latency_increase_ms: float = typer.Option(
        250.0, min=0, help="p95 increases below this many ms never count as a regression."
    ),
    max_cost_ratio: float = typer.Option(1.5, min=1, help="Allowed cost-per-run ratio."),
    max_score_drop: float = typer.Option(0.1, min=0, max=1, help="Allowed mean score drop."),
    score_metric: str | None = typer.Option(
        None, help="Score to compare (default: run-time check scores)."
    ),
    min_runs: int = typer.Option(20, min=1, help="Runs per arm before any decision."),
    window_minutes: int = typer.Option(60, min=1, help="Compare runs of the last N minutes."),
    force: bool = typer.Option(
        False, "--force", help="Start without a PASS report (needs --reason; audited)."
    ),
    reason: str = typer.Option("", help="Why; required with --force."),
    actor: str = ACTOR,
) -> None:
    """Start a canary (and/or shadow) rollout of VERSION; rolled back automatically on regression."""
    from keel.evals.delivery import suite_of
    from keel.evals.promotion import Evidence, PromptPromotions
    from keel.evals.rollout import RolloutThresholds

    db, catalog = open_catalog()
    try:
        loaded = catalog.get(agent)
        suite = suite_of(loaded)
        evidence = (
            Evidence.of(suite)
            if suite is not None
            else Evidence(agent, loaded.spec.prompt_name, "", "")
        )
        limits = RolloutThresholds(
            max_error_rate=max_error_rate,
            max_latency_ratio=max_latency_ratio,
            min_latency_increase_ms=min_latency_increase_ms,
            max_cost_ratio=max_cost_ratio,
            max_score_drop=max_score_drop,
            score_metric=score_metric,
            min_runs=min_runs,
            window_minutes=window_minutes,
        )
        rollout = PromptPromotions(db).start_rollout(
            evidence, version, percent=percent, shadow=shadow, thresholds=limits, alias=alias,
            actor=actor, force=force, reason=reason,
        )  # fmt: skip
    except KeelError as exc:
        fail(f"error: {exc.message}")
    finally:
        db.dispose()
    mode = f"{rollout.percent:g}% of users" + (" + shadow runs" if rollout.shadow else "")
    typer.echo(
        f"rollout {rollout.id}: {rollout.prompt_name}@{alias} v{rollout.baseline_version} → "
        f"v{rollout.candidate_version} for {mode}"
    )
    typer.echo(f"watch with: keel prompt rollout status {agent}")


@rollout_app.command("status")
def rollout_status(agent: str = typer.Argument(..., help="Agent name.")) -> None:
    """The active rollout's arms (runs, errors, p95 latency, cost, score) and recent rollouts."""
    from keel.evals.canary import RolloutMonitor
    from keel.evals.promotion import PromptPromotions
    from keel.evals.rollout import RolloutStore
    from keel.evals.score_store import ScoreStore

    db, catalog = open_catalog()
    try:
        try:
            prompt = catalog.get(agent).spec.prompt_name
        except KeelError as exc:
            fail(f"error: {exc.message}")
        store = RolloutStore(db)
        monitor = RolloutMonitor(db, PromptPromotions(db), ScoreStore(db))
        active = store.active_for_prompt(prompt)
        if not active:
            typer.echo(f"no active rollout for {prompt}")
        for r in active:
            health = monitor.health(r)
            mode = f"{r.percent:g}%" + (" + shadow" if r.shadow else "")
            typer.echo(
                f"{r.id}  {r.prompt_name}@{r.alias} v{r.baseline_version} → v{r.candidate_version}  "
                f"{mode}  since {r.created_at:%Y-%m-%d %H:%M:%S}  {health.state}"
            )
            for arm, stats in health.arms.items():
                if stats.runs == 0 and arm != "baseline":
                    continue
                score = f"{stats.mean_score:.3f}" if stats.mean_score is not None else "—"
                typer.echo(
                    f"  {arm:<8} runs {stats.runs:>5}  errors {stats.error_rate:6.1%}  "
                    f"p95 {stats.p95_latency_ms:8.0f} ms  cost/run ${stats.mean_cost_usd:.6f}  score {score}"
                )
            for why in health.reasons:
                typer.echo(f"  ✗ {why}")
        ended = [r for r in store.history(agent) if not r.active][:5]
        for r in ended:
            typer.echo(
                f"{r.id}  v{r.baseline_version} → v{r.candidate_version}  {r.status}  "
                f"{r.ended_at:%Y-%m-%d %H:%M:%S}  {r.reason}"
            )
    finally:
        db.dispose()


@rollout_app.command("stop")
def rollout_stop(
    agent: str = typer.Argument(..., help="Agent name."),
    alias: str = typer.Option("production"),
    reason: str = typer.Option("", help="Why (audit ledger)."),
    actor: str = ACTOR,
) -> None:
    """End the active rollout: every user is back on the alias's version."""
    from keel.evals.promotion import PromptPromotions

    db, catalog = open_catalog()
    try:
        prompt = catalog.get(agent).spec.prompt_name
        rollout = PromptPromotions(db).stop_rollout(prompt, alias=alias, actor=actor, reason=reason)
    except KeelError as exc:
        fail(f"error: {exc.message}")
    finally:
        db.dispose()
    typer.echo(f"rollout {rollout.id} stopped; {prompt}@{alias} stays v{rollout.baseline_version}")

"""`keel policy …`: validate Cedar policies against the tools, and try a decision.

Tools come from a YAML file (`--tools tools.yaml`: a list of `{name, kind, attributes, tags,
arguments}`) and/or `--tool NAME` for bare tools. With neither (and no policy paths), the
commands work on the deployment itself: its tool registry (tools.yaml files and the agents'
tools), `KEEL_POLICY_DIRS`, each agents folder's `policies/` and each agent's own policies —
exactly what the running gate loads. The principal is given as the agent
(`--principal sales`, or `Keel::Agent::"sales"`) plus the user it acts for: `--tenant`,
`--user`, `--role` (repeatable) and `--tier`. The resource is always the tool named by
`--action` (`--resource` may repeat it, for symmetry with Cedar).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from keel.cli.console import fail
from keel.control.cedar_schema import PolicySchema, ToolDescriptor, load_tool_descriptors
from keel.control.policy import AuthorizationRequest, PolicyEngine, PolicyPrincipal
from keel.errors import InvalidInput, SpecError
from keel.settings import get_settings

app = typer.Typer(
    help="Cedar policies: validate, inspect the schema, try a decision.", no_args_is_help=True
)

_ENTITY = re.compile(r'^Keel::(?:Agent|Action|Tool)::"(.+)"$')
_CONTEXT_KEYS = {"now", "budget_remaining_pct", "has_human_approval", "throttled", "lane", "args"}

ToolsOption = typer.Option(None, "--tools", help="YAML file listing the tool descriptors.")
ToolOption = typer.Option(None, "--tool", help="A tool name with no attributes (repeatable).")


def _tools(tools_file: Path | None, names: list[str] | None) -> list[ToolDescriptor]:
    descriptors = load_tool_descriptors(tools_file) if tools_file else []
    descriptors += [
        ToolDescriptor(name) for name in names or [] if name not in {d.name for d in descriptors}
    ]
    if not descriptors:
        fail("no tools given: pass --tools FILE and/or --tool NAME", 2)
    return descriptors


def _paths(paths: list[Path] | None) -> list[Path]:
    chosen = list(paths or get_settings().policy_dirs)
    if not chosen:
        fail("no policy files given and KEEL_POLICY_DIRS is empty", 2)
    return chosen


def _deployment_engine() -> PolicyEngine:
    """The policies and tools the gate of this deployment loads (SpecError on any problem)."""
    from keel.agents.loader import agent_dirs, discover_agents
    from keel.control.plane import load_policies
    from keel.control.registry import ToolRegistry, deployment_tool_defs, load_deployment_tools

    settings = get_settings()
    tools = load_deployment_tools(agent_dirs(settings))
    agents = discover_agents(agent_dirs(settings), tool_registry=deployment_tool_defs(tools))
    registry = ToolRegistry.build(tools, agents.values())
    engine, _ = load_policies(settings, registry, list(agents.values()))
    return engine


def _engine(
    paths: list[Path] | None, tools_file: Path | None, tool: list[str] | None
) -> PolicyEngine:
    if not paths and tools_file is None and not tool:
        return _deployment_engine()
    return PolicyEngine.load(_paths(paths), _tools(tools_file, tool))


def _name(value: str) -> str:
    match = _ENTITY.match(value.strip())
    return match.group(1) if match else value.strip()


@app.command()
def validate(
    paths: list[Path] = typer.Argument(
        None, help="Cedar files or folders (default: KEEL_POLICY_DIRS)."
    ),
    tools_file: Path = ToolsOption,
    tool: list[str] = ToolOption,
) -> None:
    """Parse and validate every policy; print file:line: reason for each problem."""
    try:
        engine = _engine(paths, tools_file, tool)
    except SpecError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(1) from exc
    files = len({p.file for p in engine.policies})
    typer.echo(
        f"ok: {len(engine.policies)} policies in {files} files, {len(engine.schema.tools)} tools"
    )


@app.command()
def schema(tools_file: Path = ToolsOption, tool: list[str] = ToolOption) -> None:
    """Print the Cedar schema generated from the tools (human-readable Cedar syntax)."""
    try:
        typer.echo(PolicySchema(_tools(tools_file, tool)).cedar_text())
    except SpecError as exc:
        fail(str(exc), 1)


def _context(raw: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        fail(f"--context is not valid JSON: {exc}", 2)
    if not isinstance(data, dict):
        fail("--context must be a JSON object", 2)
    unknown = set(data) - _CONTEXT_KEYS
    if unknown:
        fail(
            f"--context: unknown key {sorted(unknown)[0]!r} (allowed: {', '.join(sorted(_CONTEXT_KEYS))})",
            2,
        )
    if "now" in data:
        try:
            data["now"] = datetime.fromisoformat(str(data["now"]).replace("Z", "+00:00"))
        except ValueError:
            fail("--context: now must be an ISO 8601 timestamp with a time zone", 2)
    return data


@app.command()
def check(
    principal: str = typer.Option(..., help='The agent: sales or Keel::Agent::"sales".'),
    action: str = typer.Option(
        ..., help='The tool: search_projects or Keel::Action::"search_projects".'
    ),
    resource: str | None = typer.Option(
        None, help="The tool again (optional; must match --action)."
    ),
    tenant: str = typer.Option(..., help="Tenant of the user the agent acts for."),
    user: str = typer.Option(..., help="User id the agent acts for."),
    role: list[str] = typer.Option(None, "--role", help="A role of the user (repeatable)."),
    tier: str = typer.Option("standard", help="The tenant's tier."),
    context: str = typer.Option(
        "{}",
        help='JSON: {"now", "budget_remaining_pct", "has_human_approval", "throttled", "lane", "args"}.',
    ),
    policies: list[Path] = typer.Option(
        None, "--policies", help="Cedar files or folders (default: KEEL_POLICY_DIRS)."
    ),
    tools_file: Path = ToolsOption,
    tool: list[str] = ToolOption,
    as_json: bool = typer.Option(False, "--json", help="Print the decision as JSON."),
) -> None:
    """Evaluate one tool call and print the decision and the policies that decided it."""
    tool_name = _name(action)
    if resource is not None and _name(resource) != tool_name:
        fail(f"--resource must be the tool named by --action ({tool_name})", 2)
    ctx = _context(context)
    try:
        engine = _engine(policies, tools_file, tool)
        decision = engine.decide(
            AuthorizationRequest(
                PolicyPrincipal(_name(principal), tenant, user, frozenset(role or ()), tier),
                tool_name,
                args=ctx.get("args") or {},
                now=ctx.get("now"),
                budget_remaining_pct=ctx.get("budget_remaining_pct", 100),
                has_human_approval=bool(ctx.get("has_human_approval", False)),
                throttled=bool(ctx.get("throttled", False)),
                lane=str(ctx.get("lane", "interactive")),
            )
        )
    except SpecError as exc:
        fail(str(exc), 1)
    except InvalidInput as exc:
        fail(f"invalid request: {exc.message}", 2)
    if as_json:
        typer.echo(json.dumps(decision.to_dict(), indent=2))
        return
    typer.echo(decision.decision.value)
    typer.echo(f"reason: {decision.reason}")
    typer.echo(f"policies: {', '.join(decision.policies) or '(none)'}")
    for error in decision.errors:
        typer.echo(f"error: {error}")

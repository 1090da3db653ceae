"""Assembling the control plane: policies (deployment, per agent, the development baseline),
guardrail and budget configuration checked at load, the policy-load audit entry."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from keel.control.plane import BASELINE_POLICY, ControlPlane
from keel.control.registry import deployment_tool_defs, load_deployment_tools
from keel.errors import SpecError
from keel.fabric.catalog import AgentCatalog
from keel.settings import Settings
from keel.store.database import Database
from tests.control.harness import DEPLOYMENT


def _deployment(tmp_path: Path) -> Path:
    root = tmp_path / "agents"
    shutil.copytree(DEPLOYMENT, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _build(tmp_path: Path, db: Database, root: Path, **overrides: object) -> ControlPlane:
    env = overrides.pop("env", "test")
    settings = Settings(  # type: ignore[call-arg]
        env="test", home=tmp_path / "home", database_url=db.url, agents_dirs=[root],
        _env_file=None, **overrides,
    )  # fmt: skip
    settings = settings.model_copy(update={"env": env})  # production, minus its URL check
    tools = load_deployment_tools([root])
    catalog = AgentCatalog.load(
        settings, db, tool_registry=deployment_tool_defs(tools), deploy=False
    )
    return ControlPlane.build(settings, db, catalog, deployment_tools=tools)


def test_the_deployment_and_agent_policies_load_and_the_load_is_audited(
    tmp_path: Path, sqlite_db: Database
) -> None:
    root = _deployment(tmp_path)
    (root / "clerk" / "policies").mkdir()
    (root / "clerk" / "policies" / "own.cedar").write_text(
        '@id("clerk-no-exports")\nforbid (principal, action == Keel::Action::"export_contacts", resource);\n'
    )
    plane = _build(tmp_path, sqlite_db, root)
    names = {p.name: p.agent for p in plane.policies.policies}
    assert names["deletes-need-admin"] is None and names["clerk-no-exports"] == "clerk"
    [entry] = plane.ledger.entries(kind="policy", global_only=True)
    assert entry.data["policies"] == len(names) and len(entry.data["files"]) == 2
    _build(tmp_path, sqlite_db, root)  # the same policies again: no new entry
    assert len(plane.ledger.entries(kind="policy", global_only=True)) == 1
    (root / "policies" / "extra.cedar").write_text(
        '@id("no-old-lookups")\nforbid (principal, action == Keel::Action::"old_lookup", resource);\n'
    )
    _build(tmp_path, sqlite_db, root)
    assert len(plane.ledger.entries(kind="policy", global_only=True)) == 2


def test_without_deployment_policies_development_gets_the_baseline_and_production_refuses(
    tmp_path: Path, sqlite_db: Database
) -> None:
    root = _deployment(tmp_path)
    shutil.rmtree(root / "policies")
    plane = _build(tmp_path, sqlite_db, root)
    assert [p.name for p in plane.policies.policies] == ["keel.baseline.permit-registered-tools"]
    assert "permit (principal, action, resource)" in BASELINE_POLICY
    with pytest.raises(SpecError, match="production needs deployment-wide Cedar policies"):
        _build(tmp_path, sqlite_db, root, env="production")


def test_a_misspelt_policy_never_loads(tmp_path: Path, sqlite_db: Database) -> None:
    root = _deployment(tmp_path)
    (root / "policies" / "bad.cedar").write_text(
        'forbid (principal, action == Keel::Action::"delete_record", resource);\n'
    )
    with pytest.raises(SpecError) as err:
        _build(tmp_path, sqlite_db, root)
    assert any(str(p).startswith(f"{root}/policies/bad.cedar:1:") for p in err.value.problems)


def test_guardrail_budget_and_policy_file_problems_name_the_agent_file(
    tmp_path: Path, sqlite_db: Database
) -> None:
    root = _deployment(tmp_path)
    spec = root / "clerk" / "agent.yaml"
    spec.write_text(
        spec.read_text()
        .replace("pii: {mode: redact, kinds: [email, phone]}", "pii: {mode: shout}")
        .replace("run_tokens: 100000", "run_tokens: -5\n  colour: red")
        + "policies: [../outside.cedar]\n"
    )
    with pytest.raises(SpecError) as err:
        _build(tmp_path, sqlite_db, root)
    problems = [str(p) for p in err.value.problems]
    assert (
        "clerk/agent.yaml:policies.0: no Cedar file '../outside.cedar' inside the agent folder"
        in problems
    )
    spec.write_text(spec.read_text().replace("policies: [../outside.cedar]\n", ""))
    with pytest.raises(SpecError) as err:
        _build(tmp_path, sqlite_db, root)
    problems = [str(p) for p in err.value.problems]
    assert any(p.startswith("clerk/agent.yaml:budget.run_tokens:") for p in problems)
    assert any(p.startswith("clerk/agent.yaml:budget.colour:") for p in problems)
    assert any(
        p.startswith("clerk/agent.yaml:guardrails.tool_output.pii:") and "shout" in p
        for p in problems
    )

"""The control-plane CLI commands, run through typer against a real SQLite database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from keel.cli.main import app
from keel.settings import get_settings
from keel.store.database import Database

runner = CliRunner()

TOOLS_YAML = """
- name: search_projects
  kind: read
  attributes: {sensitivity: low}
  arguments: {query: String}
- name: issue_refund
  kind: write
  attributes: {sensitivity: high}
  arguments: {amount: Long}
"""

POLICIES = """
@id("analysts-read")
permit (principal, action, resource)
when { resource.kind == "read" && principal.user.roles.contains("analyst") };

@id("refund-approval")
permit (principal, action == Keel::Action::"issue_refund", resource)
when { context.has_human_approval };
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("KEEL_HOME", str(tmp_path / ".keel"))
    monkeypatch.setenv("KEEL_ENV", "development")
    monkeypatch.delenv("KEEL_DATABASE_URL", raising=False)
    monkeypatch.delenv("KEEL_MASTER_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    (tmp_path / "tools.yaml").write_text(TOOLS_YAML)
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "base.cedar").write_text(POLICIES)
    yield tmp_path
    get_settings.cache_clear()


@pytest.fixture
def migrated(home: Path) -> Path:
    db = Database.from_settings(get_settings())
    db.upgrade()
    db.dispose()
    return home


def test_policy_validate_ok_and_problems_with_file_line(home: Path) -> None:
    ok = runner.invoke(app, ["policy", "validate", "policies", "--tools", "tools.yaml"])
    assert ok.exit_code == 0, ok.output
    assert "ok: 2 policies in 1 files, 2 tools" in ok.output
    (home / "policies" / "bad.cedar").write_text(
        'permit (principal, action == Keel::Action::"serch_projects", resource);\n'
    )
    bad = runner.invoke(app, ["policy", "validate", "policies", "--tools", "tools.yaml"])
    assert bad.exit_code == 1
    assert "policies/bad.cedar:1:" in bad.output and "serch_projects" in bad.output


def test_policy_check_prints_decision_and_policies(home: Path) -> None:
    base = [
        "policy", "check", "--principal", 'Keel::Agent::"sales"', "--tenant", "acme",
        "--user", "alice", "--role", "analyst", "--policies", "policies", "--tools", "tools.yaml",
    ]  # fmt: skip
    allowed = runner.invoke(
        app, [*base, "--action", "search_projects", "--context", '{"args": {"query": "x"}}']
    )
    assert allowed.exit_code == 0, allowed.output
    assert allowed.output.splitlines()[0] == "ALLOW"
    assert "policies: analysts-read" in allowed.output
    approval = runner.invoke(
        app,
        [*base, "--action", "issue_refund", "--context", '{"args": {"amount": 5}}', "--json"],
    )
    assert approval.exit_code == 0, approval.output
    assert json.loads(approval.output)["decision"] == "REQUIRE_APPROVAL"


def test_policy_check_bad_input_is_a_clear_error(home: Path) -> None:
    base = [
        "policy", "check", "--principal", "sales", "--tenant", "acme", "--user", "alice",
        "--policies", "policies", "--tools", "tools.yaml",
    ]  # fmt: skip
    cases = [
        (["--action", "nope"], "unknown tool 'nope'"),
        (["--action", "search_projects", "--context", "{bad json"], "not valid JSON"),
        (["--action", "search_projects", "--context", '{"colour": 1}'], "unknown key 'colour'"),
        (["--action", "issue_refund", "--context", '{"args": {"amount": "x"}}'], "args.amount"),
        (["--action", "search_projects", "--resource", "issue_refund"], "--resource must be"),
    ]
    for extra, message in cases:
        result = runner.invoke(app, [*base, *extra])
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.output, (extra, result.output)


def test_policy_schema_prints_cedar(home: Path) -> None:
    result = runner.invoke(app, ["policy", "schema", "--tools", "tools.yaml"])
    assert result.exit_code == 0
    assert "search_projects" in result.output and "namespace Keel" in result.output


def test_secrets_set_list_delete_never_print_values(migrated: Path) -> None:
    value = "sk-super-secret-value-123"
    stored = runner.invoke(app, ["secrets", "set", "acme", "crm/token"], input=value + "\n")
    assert stored.exit_code == 0, stored.output
    assert "stored acme/crm/token version 1" in stored.output
    assert "generated a development master key" in stored.output
    (migrated / "v.txt").write_text(value + "-2\n")
    again = runner.invoke(app, ["secrets", "set", "acme", "crm/token", "--value-file", "v.txt"])
    assert "version 2" in again.output
    warned = runner.invoke(app, ["secrets", "set", "acme", "other", "--value", "abcdef"])
    assert warned.exit_code == 0 and "shell history" in warned.output
    listed = runner.invoke(app, ["secrets", "list", "acme"])
    assert "crm/token  latest v2  versions 1,2" in listed.output
    for output in (stored.output, again.output, listed.output):
        assert value not in output
    deleted = runner.invoke(app, ["secrets", "delete", "acme", "crm/token"])
    assert deleted.exit_code == 0 and "versions 1, 2" in deleted.output
    missing = runner.invoke(app, ["secrets", "delete", "acme", "crm/token"])
    assert missing.exit_code == 1 and "not found" in missing.output
    bad = runner.invoke(app, ["secrets", "set", "acme", "bad name"], input="v\n")
    assert bad.exit_code == 2 and "name" in bad.output


def test_audit_verify_ok_then_names_the_tampered_entry(migrated: Path) -> None:
    for i in range(3):
        runner.invoke(app, ["secrets", "set", "acme", f"k{i}"], input="value-123\n")
    ok = runner.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("OK: 3 entries in 1 chains")
    listed = runner.invoke(
        app, ["audit", "list", "--tenant", "acme", "--kind", "credential", "--json"]
    )
    assert [json.loads(line)["seq"] for line in listed.output.splitlines()] == [3, 2, 1]
    db = Database.from_settings(get_settings())
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_entries SET actor = 'mallory' WHERE seq = 2"))
    db.dispose()
    bad = runner.invoke(app, ["audit", "verify"])
    assert bad.exit_code == 1
    assert "chain acme entry #2: edited" in bad.output


def test_commands_refuse_an_unmigrated_database(home: Path) -> None:
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 2 and "keel db upgrade" in result.output

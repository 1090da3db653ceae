"""`keel usage` and `keel budget`, and audit entries for API key changes, through the CLI
against a real SQLite database (the report itself on both backends)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keel.cli.main import app
from keel.control.ledger import Ledger
from keel.control.usage import usage_report
from keel.errors import InvalidInput
from keel.settings import get_settings
from keel.store.database import Database
from keel.store.tables import UsageRecord
from keel.store.types import utcnow

runner = CliRunner()


def _usage(db: Database, **row: object) -> None:
    defaults: dict[str, object] = {
        "run_id": "run_1", "tenant_id": "t1", "user_id": "u", "agent": "rune",
        "prompt_name": "rune", "prompt_version": 1, "model": "openai:gpt-4o", "kind": "model",
        "input_tokens": 100, "output_tokens": 50, "cost_usd": 0.01, "created_at": utcnow(),
    }  # fmt: skip
    defaults.update(row)
    defaults.setdefault("key", f"k{len(str(row))}{row.get('run_id', '')}{row.get('model', '')}")
    with db.transaction() as s:
        s.add(UsageRecord(**defaults))


def test_the_report_groups_and_filters_usage(db: Database) -> None:
    _usage(db, key="a")
    _usage(db, key="b", prompt_version=2, input_tokens=10, output_tokens=5, cost_usd=0.5)
    _usage(
        db,
        key="c",
        kind="tool",
        model="tool:crm_company",
        input_tokens=0,
        output_tokens=0,
        cost_usd=0.002,
    )
    _usage(db, key="d", tenant_id="t2", agent="sales-card", cost_usd=1.0)
    _usage(db, key="e", created_at=utcnow() - timedelta(days=40), cost_usd=9.0)
    recent = utcnow() - timedelta(days=1)
    by_prompt = usage_report(db, tenant_id="t1", by="prompt_version", since=recent)
    assert [(r.key, r.requests, r.tokens) for r in by_prompt] == [
        ("rune@2", 1, 15),
        ("rune@1", 2, 150),
    ]
    by_kind = {r.key: r.cost_usd for r in usage_report(db, tenant_id="t1", by="kind", since=recent)}
    assert by_kind == {"model": 0.51, "tool": 0.002}
    by_tenant = {r.key: r.cost_usd for r in usage_report(db, by="tenant")}
    assert by_tenant == {"t1": 9.512, "t2": 1.0}
    [day] = usage_report(db, tenant_id="t2", by="day")
    assert day.key == utcnow().strftime("%Y-%m-%d")
    with pytest.raises(InvalidInput, match="cannot group by 'colour'"):
        usage_report(db, by="colour")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    monkeypatch.setenv("KEEL_HOME", str(tmp_path / ".keel"))
    monkeypatch.setenv("KEEL_ENV", "development")
    monkeypatch.setenv("KEEL_AGENTS_DIRS", '["' + str(Path(__file__).parent / "deployment") + '"]')
    monkeypatch.delenv("KEEL_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    db = Database.from_settings(get_settings())
    db.upgrade()
    yield db
    db.dispose()
    get_settings.cache_clear()


def test_keel_usage_prints_a_table_with_totals(home: Database) -> None:
    _usage(home, key="a")
    _usage(home, key="b", model="anthropic:claude", cost_usd=0.02)
    result = runner.invoke(app, ["usage", "--tenant", "t1", "--by", "model"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].split() == ["MODEL", "REQUESTS", "INPUT", "OUTPUT", "COST", "USD"]
    assert lines[2].split()[0] == "anthropic:claude" and lines[-1].split()[:2] == ["TOTAL", "2"]
    result = runner.invoke(app, ["usage", "--by", "agent", "--since", "7d", "--json"])
    assert result.exit_code == 0 and '"agent": "rune"' in result.output
    bad = runner.invoke(app, ["usage", "--since", "last tuesday"])
    assert bad.exit_code == 2 and "--since" in bad.output


def test_keel_budget_sets_shows_and_clears_with_an_audit_trail(home: Database) -> None:
    _usage(home, key="a", input_tokens=700, output_tokens=100, agent="clerk")
    result = runner.invoke(app, ["budget", "set", "--tenant", "t1", "--monthly-tokens", "1000"])
    assert result.exit_code == 0, result.output
    shown = runner.invoke(app, ["budget", "show", "--tenant", "t1", "--agent", "clerk"])
    assert shown.exit_code == 0, shown.output
    assert "tenant t1 monthly token budget at 80.0% (800 of 1000)  [throttle]" in shown.output
    assert "run" not in shown.output  # a run budget needs a run
    assert "tier: throttle, 20% remaining" in shown.output
    listed = runner.invoke(app, ["budget", "list"])
    assert "t1  *" in listed.output
    bad = runner.invoke(app, ["budget", "set", "--tenant", "t1", "--monthly-usd", "-3"])
    assert bad.exit_code == 2 and "--monthly-usd: monthly USD must be positive" in bad.output
    assert runner.invoke(app, ["budget", "clear", "--tenant", "t1"]).exit_code == 0
    assert runner.invoke(app, ["budget", "clear", "--tenant", "t1"]).exit_code == 1
    actions = [e.data["action"] for e in Ledger(home).entries(tenant_id="t1", kind="budget")]
    assert actions == ["clear", "set"]


def test_api_key_changes_are_audited(home: Database) -> None:
    created = runner.invoke(app, ["keys", "create", "--tenant", "t1", "--user", "ann"])
    assert created.exit_code == 0, created.output
    key_id = created.output.split()[1]
    assert runner.invoke(app, ["keys", "revoke", key_id]).exit_code == 0
    entries = Ledger(home).entries(tenant_id="t1", kind="api_key")
    assert [e.data["action"] for e in entries] == ["revoked", "created"]
    assert {e.subject for e in entries} == {f"api_key:{key_id}"}
    assert entries[1].data["user"] == "ann" and entries[1].data["prefix"].startswith("keel_sk_")
    secret = created.output.strip().splitlines()[-1]
    assert secret.startswith("keel_sk_") and secret not in str([e.data for e in entries])


def test_keel_policy_validates_and_checks_the_deployment_itself(home: Database) -> None:
    ok = runner.invoke(app, ["policy", "validate"])
    assert ok.exit_code == 0, ok.output
    assert ok.output.strip() == "ok: 6 policies in 1 files, 11 tools"
    check = runner.invoke(
        app,
        ["policy", "check", "--principal", "clerk", "--action", "transfer_funds", "--tenant", "t1",
         "--user", "ann", "--context", '{"args": {"amount": 5000, "to_account": "x"}}'],
    )  # fmt: skip
    assert check.exit_code == 0 and check.output.startswith("REQUIRE_APPROVAL")

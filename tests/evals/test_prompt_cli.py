"""`keel prompt …` and `keel dataset …` as a user types them (in process, on SQLite)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from keel.cli.main import app
from keel.settings import get_settings
from tests.conftest import EXAMPLE_AGENTS

PROMPTS = EXAMPLE_AGENTS / "sales-card" / "evals" / "prompts"
Keel = Callable[..., Result]


@pytest.fixture
def keel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Keel]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KEEL_HOME", str(tmp_path / ".keel"))
    monkeypatch.delenv("KEEL_DATABASE_URL", raising=False)
    monkeypatch.delenv("KEEL_AGENTS_DIRS", raising=False)
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args))

    yield invoke
    get_settings.cache_clear()


def test_push_list_show_and_diff(keel: Keel) -> None:
    k = keel
    out = k("prompt", "push", "sales-card", str(PROMPTS / "better.md"))
    assert out.exit_code == 0, out.output
    assert out.output.strip() == "sales-card v2 (new)"
    again = k("prompt", "push", "sales-card", str(PROMPTS / "better.md"))
    assert again.output.strip() == "sales-card v2 (unchanged: already stored)"
    listing = k("prompt", "list", "sales-card").output
    assert listing.splitlines()[0].startswith("v1    latest, production")
    assert listing.splitlines()[1].startswith("v2 ")
    shown = k("prompt", "show", "sales-card", "2").output
    assert shown.startswith("sales-card v2\nmeta: ") and "End the snapshot itself" in shown
    diff = k("prompt", "diff", "sales-card", "production", "2").output
    assert diff.startswith("--- sales-card@v1\n+++ sales-card@v2\n")
    assert (
        "+and what to do. End the snapshot itself with that next step, so the card reads as a call to"
        in diff
    )
    staged = k("prompt", "push", "sales-card", str(PROMPTS / "better.md"), "--alias", "staging")
    assert staged.output.splitlines()[-1] == "sales-card@staging → v2"
    again = k("prompt", "push", "sales-card", str(PROMPTS / "better.md"), "--alias", "staging")
    assert again.output.splitlines()[-1] == "sales-card@staging → v2 (unchanged)"
    sneaky = k("prompt", "push", "sales-card", str(PROMPTS / "worse.md"), "--alias", "production")
    assert sneaky.exit_code == 1 and "production moves only by promotion" in sneaky.output
    everything = k("prompt", "list").output
    assert "sales-card" in everything and "production→v1" in everything


def test_a_template_with_an_unknown_variable_is_refused(keel: Keel, tmp_path: Path) -> None:
    bad = tmp_path / "bad.md"
    bad.write_text("Write for a {{reader}} in {{response_language}}.")
    out = keel("prompt", "push", "sales-card", str(bad))
    assert out.exit_code == 1
    assert "unknown prompt variable(s) reader; sales-card provides" in out.output


def test_production_moves_only_by_a_gated_or_forced_audited_promotion(keel: Keel) -> None:
    k = keel
    k("prompt", "push", "sales-card", str(PROMPTS / "better.md"))
    by_hand = k("prompt", "alias", "sales-card", "production", "2")
    assert by_hand.exit_code == 1 and "production moves only by promotion" in by_hand.output
    staging = k("prompt", "alias", "sales-card", "staging", "2", "--reason", "demo")
    assert staging.exit_code == 0 and staging.output.strip() == "sales-card@staging: — → v2"

    refused = k("prompt", "promote", "sales-card", "--version", "2")
    assert refused.exit_code == 1
    assert "error: no PASS report for sales-card v2 vs v1 on dataset " in refused.output
    assert "run `keel eval run sales-card --candidate 2`" in refused.output
    no_reason = k("prompt", "promote", "sales-card", "--version", "2", "--force")
    assert no_reason.exit_code == 1 and "needs a reason" in no_reason.output

    forced = k(
        "prompt", "promote", "sales-card", "--version", "2", "--force", "--reason", "demo day",
        "--actor", "alice",
    )  # fmt: skip
    assert forced.exit_code == 0, forced.output
    assert forced.output.strip() == "sales-card@production: v1 → v2 (FORCED (demo day); audited)"
    audit = k("audit", "list", "--kind", "prompt_promotion").output
    assert "prompt_promotion alice sales-card@production" in audit and '"forced": true' in audit

    back = k("prompt", "rollback", "sales-card", "--reason", "buyers complained")
    assert back.output.strip() == "sales-card@production: v2 → v1 (rolled back)"
    assert k("prompt", "show", "sales-card").output.startswith("sales-card v1")
    history = k("prompt", "history", "sales-card", "--alias", "production").output
    lines = history.splitlines()
    assert "— → v1  deploy: seeded from file" in lines[0]
    assert "v1 → v2  alice: force_promote: demo day" in lines[1]
    assert "v2 → v1  cli: rollback: buyers complained" in lines[2]


def test_canary_rollout_status_and_stop(keel: Keel) -> None:
    k = keel
    k("prompt", "push", "sales-card", str(PROMPTS / "better.md"))
    refused = k("prompt", "canary", "sales-card", "--version", "2", "--percent", "10")
    assert refused.exit_code == 1 and "no PASS report" in refused.output
    started = k(
        "prompt", "canary", "sales-card", "--version", "2", "--percent", "10", "--shadow",
        "--max-error-rate", "0.02", "--force", "--reason", "try it",
    )  # fmt: skip
    assert started.exit_code == 0, started.output
    assert "sales-card@production v1 → v2 for 10% of users + shadow runs" in started.output
    status = k("prompt", "rollout", "status", "sales-card").output
    assert "v1 → v2  10% + shadow" in status and "waiting" in status
    assert "baseline runs     0" in status
    stopped = k("prompt", "rollout", "stop", "sales-card", "--reason", "done")
    assert stopped.output.strip().endswith("stopped; sales-card@production stays v1")
    after = k("prompt", "rollout", "status", "sales-card").output
    assert "no active rollout for sales-card" in after and "stopped" in after


def test_dataset_info_describes_the_sales_card_dataset(keel: Keel) -> None:
    out = keel("dataset", "info", str(EXAMPLE_AGENTS / "sales-card" / "evals" / "cases.jsonl"))
    assert out.exit_code == 0, out.output
    assert ": 40 cases, version " in out.output
    assert "  locale: cs 5, da 5, de 5, fi 5, fr 5, no 5, sk 5, sv 5" in out.output
    assert "  with expected: 40" in out.output


def test_add_from_runs_writes_a_loadable_file(keel: Keel, tmp_path: Path) -> None:
    out = tmp_path / "new" / "cases.jsonl"
    result = keel("dataset", "add-from-runs", "sales-card", "--out", str(out), "--since", "7d")
    assert result.exit_code == 0, result.output
    assert "0 case(s) added from 0 run(s) of sales-card" in result.output
    assert not out.exists()  # nothing to add: no empty dataset file
    bad = keel("dataset", "add-from-runs", "sales-card", "--out", str(out), "--feedback", "meh")
    assert bad.exit_code == 1 and "--feedback must be up, down, any or none" in bad.output


def test_the_eval_plane_cli_surface_is_pinned() -> None:
    from keel.cli.dataset import app as dataset_app
    from keel.cli.evals import app as evals_app
    from keel.cli.prompt import app as prompt_app
    from keel.cli.prompt import rollout_app

    def names(group: object) -> set[str]:
        return {c.name for c in group.registered_commands}  # type: ignore[attr-defined]

    assert {g.name for g in app.registered_groups} >= {"prompt", "eval", "dataset"}
    assert names(prompt_app) == {
        "push", "list", "show", "diff", "alias", "promote", "rollback", "history", "canary",
    }  # fmt: skip
    assert names(rollout_app) == {"status", "stop"}
    assert names(evals_app) == {"run", "reports", "show", "scores"}
    assert names(dataset_app) == {"add-from-runs", "info"}

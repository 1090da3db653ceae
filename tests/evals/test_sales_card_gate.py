"""The acceptance story of eval-gated promotion, as a user runs it: real `keel` processes on
SQLite, the sales-card dataset (40 cases, 8 locales) and the offline models.

worse → FAIL naming the regressed metrics; gaming → FAIL on the gaming tripwire; better →
PASS, then promoted; promotion without a PASS is refused; --force is audited; rollback
restores the previous version and new runs use it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_AGENTS

KEEL = str(Path(sys.executable).parent / "keel")
PROMPTS = EXAMPLE_AGENTS / "sales-card" / "evals" / "prompts"

pytestmark = pytest.mark.slow


def keel(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KEEL_HOME": str(cwd / ".keel")}
    env.pop("KEEL_DATABASE_URL", None)
    env.pop("KEEL_AGENTS_DIRS", None)
    return subprocess.run(
        [KEEL, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def reasons(stdout: str) -> list[str]:
    """The verdict's reason lines (wrapped continuation lines joined)."""
    out: list[str] = []
    for line in stdout.splitlines():
        if line.startswith(("✗ ", "• ")):
            out.append(line[2:])
        elif line.startswith("  ") and out and not line.startswith("  /"):
            out[-1] += " " + line.strip()
        elif out and not line.strip():
            break
    return out


def prompt_used(run: subprocess.CompletedProcess[str]) -> str:
    """`sales-card@N` from `keel run`'s queued line."""
    line = next(x for x in run.stderr.splitlines() if "queued" in x)
    return line.split("prompt ")[1].rstrip(")")


def test_worse_fails_gaming_trips_the_tripwire_better_passes_and_is_promoted(
    tmp_path: Path,
) -> None:
    for name, version in (("better", 2), ("worse", 3), ("gaming", 4)):
        pushed = keel("prompt", "push", "sales-card", str(PROMPTS / f"{name}.md"), cwd=tmp_path)
        assert pushed.stdout.strip() == f"sales-card v{version} (new)", pushed.stderr

    worse = keel("eval", "run", "sales-card", "--candidate", "3", cwd=tmp_path)
    assert worse.returncode == 1, worse.stderr
    assert "GATE FAIL  sales-card · sales-card v3 vs v1" in worse.stdout
    found = reasons(worse.stdout)
    for metric in ("judge", "language", "next_step"):
        assert any(r.startswith(f"{metric} regressed significantly") for r in found), found
    refused = keel("prompt", "promote", "sales-card", "--version", "3", cwd=tmp_path)
    assert refused.returncode == 1
    assert "no PASS report for sales-card v3 vs v1" in refused.stderr

    gaming = keel("eval", "run", "sales-card", "--candidate", "4", cwd=tmp_path)
    assert gaming.returncode == 1, gaming.stderr
    found = reasons(gaming.stdout)
    assert found[0].startswith("tripwire gaming: judge score rose while oracle words fell")
    assert any(r.startswith("words regressed significantly") for r in found)
    assert "FIRED  gaming" in gaming.stdout

    out = tmp_path / "better-report"
    better = keel("eval", "run", "sales-card", "--candidate", "2", "--out", str(out), cwd=tmp_path)
    assert better.returncode == 0, better.stdout + better.stderr
    assert "GATE PASS  sales-card · sales-card v2 vs v1" in better.stdout
    assert reasons(better.stdout)[0].startswith("judge improved significantly")
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"] == "PASS" and report["dataset_size"] == 40
    assert report["runs"]["candidate"]["errors"] == 0
    html = (out / "report.html").read_text()
    assert html.startswith("<!doctype html>") and "PASS" in html and "<script" not in html

    promoted = keel("prompt", "promote", "sales-card", "--version", "2", cwd=tmp_path)
    assert promoted.returncode == 0, promoted.stderr
    assert promoted.stdout.startswith(
        f"sales-card@production: v1 → v2 (PASS report {report['id']})"
    )
    card = json.dumps({"project_id": "P-0003", "role": "site manager", "locale": "sv"})
    assert prompt_used(keel("run", "sales-card", "--input", card, cwd=tmp_path)) == "sales-card@2"

    back = keel("prompt", "rollback", "sales-card", "--reason", "sales asked", cwd=tmp_path)
    assert back.stdout.strip() == "sales-card@production: v2 → v1 (rolled back)"
    assert prompt_used(keel("run", "sales-card", "--input", card, cwd=tmp_path)) == "sales-card@1"

    forced = keel(
        "prompt", "promote", "sales-card", "--version", "4", "--force", "--reason", "CEO demo",
        cwd=tmp_path,
    )  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    audit = keel("audit", "list", "--kind", "prompt_promotion", "--json", cwd=tmp_path)
    entries = [json.loads(line) for line in audit.stdout.splitlines()]
    assert [e["data"]["action"] for e in entries] == ["force_promote", "rollback", "promote"]
    assert entries[0]["data"]["forced"] is True and entries[0]["data"]["reason"] == "CEO demo"
    assert entries[2]["data"]["report_id"] == report["id"]
    assert keel("audit", "verify", cwd=tmp_path).returncode == 0

    listed = keel("eval", "reports", "sales-card", cwd=tmp_path).stdout.splitlines()
    assert [line.split()[3] for line in listed] == ["PASS", "FAIL", "FAIL"]
    scores = keel("eval", "scores", "sales-card", cwd=tmp_path).stdout
    assert "v2\n  check   language" in scores and "v1  (latest)\n  check   language" in scores
    assert "words                     1.000  over 1 run(s)" in scores

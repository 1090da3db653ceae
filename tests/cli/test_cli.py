"""The `keel` command as a user runs it: real processes, real exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_AGENTS

KEEL = str(Path(sys.executable).parent / "keel")


def keel(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "KEEL_HOME": str(cwd / ".keel"), **(env or {})}
    full_env.pop("KEEL_DATABASE_URL", None)
    return subprocess.run(
        [KEEL, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120
    )


def test_keel_run_rune_answers_in_swedish(tmp_path: Path) -> None:
    out = keel(
        "run",
        "rune",
        "--input",
        json.dumps(
            {"question": "Which hospital projects in Stockholm start this year?", "locale": "sv"}
        ),
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Jag hittade 2 träffar")
    assert "tool search_projects: ok" in out.stderr


def test_keel_run_sales_card_prints_json_valid_against_the_schema(tmp_path: Path) -> None:
    out = keel(
        "run",
        "sales-card",
        "-q",
        "--input",
        '{"project_id": "P-0003", "role": "site manager"}',
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    sys.path.insert(0, str(EXAMPLE_AGENTS / "sales-card"))
    try:
        from schema import SalesCard  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    SalesCard.model_validate_json(out.stdout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "rune", "--input", "{not json"], "--input: not valid JSON"),
        (["run", "rune", "--input", "[1]"], "--input: must be a JSON object"),
        (["run", "nobody", "--input", "{}"], "agent 'nobody' not found"),
        (["run", "sales-card", "--input", '{"project_id": "P-1"}'], "input.role: Field required"),
    ],
)
def test_keel_run_refuses_bad_input_clearly(tmp_path: Path, args: list[str], message: str) -> None:
    out = keel(*args, cwd=tmp_path)
    assert out.returncode == 1
    assert message in out.stderr


def test_keel_agents_validate_reports_problems_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "agents" / "broken"
    bad.mkdir(parents=True)
    (bad / "agent.yaml").write_text(
        "name: broken\nmodel: {default: 'offline:chat'}\ntools: [ghost]\n"
    )
    out = keel("agents", "validate", str(tmp_path / "agents"), cwd=tmp_path)
    assert out.returncode == 1
    assert "broken/agent.yaml:tools.0: unknown tool 'ghost'" in out.stderr
    assert "broken/agent.yaml:prompt.file: prompt file 'prompt.md' not found" in out.stderr
    good = keel("agents", "validate", str(EXAMPLE_AGENTS), cwd=tmp_path)
    assert good.returncode == 0 and "2 agent(s) valid" in good.stdout


def test_keel_refuses_to_start_with_an_invalid_agent_folder(tmp_path: Path) -> None:
    bad = tmp_path / "agents" / "broken"
    bad.mkdir(parents=True)
    (bad / "agent.yaml").write_text("name: broken\n")
    out = keel("agents", "list", cwd=tmp_path)
    assert out.returncode == 1
    assert "broken/agent.yaml:model: Field required" in out.stderr


def test_keel_agents_list_and_runs_list(tmp_path: Path) -> None:
    listed = keel("agents", "list", cwd=tmp_path)
    assert listed.returncode == 0 and "rune" in listed.stdout and "production→v1" in listed.stdout
    keel(
        "run",
        "rune",
        "-q",
        "--input",
        '{"question": "Which school projects in Malmö start this year?"}',
        cwd=tmp_path,
    )
    runs = keel("runs", "list", cwd=tmp_path)
    assert runs.returncode == 0 and "succeeded" in runs.stdout and "rune" in runs.stdout


def test_keel_chat_keeps_one_conversation_across_lines(tmp_path: Path) -> None:
    env = {**os.environ, "KEEL_HOME": str(tmp_path / ".keel")}
    env.pop("KEEL_DATABASE_URL", None)
    out = subprocess.run(
        [KEEL, "chat", "rune", "--locale", "da"],
        cwd=tmp_path,
        env=env,
        input="Which hospital projects in Stockholm start this year?\nWhich school projects in Malmö start next year?\n\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    answers = [line for line in out.stdout.splitlines() if line.startswith("rune> ")]
    assert len(answers) == 2 and answers[0].startswith("rune> Jeg fandt")
    assert "conversation conv_" in out.stderr


def test_keel_up_serves_health_and_prints_a_development_key(tmp_path: Path) -> None:
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "KEEL_HOME": str(tmp_path / ".keel")}
    env.pop("KEEL_DATABASE_URL", None)
    proc = subprocess.Popen(
        [KEEL, "up", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and status is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    status = json.loads(r.read())
            except OSError:
                time.sleep(0.05)
        assert status is not None and status["status"] == "ok"
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    assert f"serving on http://127.0.0.1:{port}" in output
    key = (tmp_path / ".keel" / "dev-api-key").read_text().strip()
    assert key.startswith("keel_sk_") and key in output
    assert (tmp_path / ".keel" / "dev-api-key").stat().st_mode & 0o777 == 0o600

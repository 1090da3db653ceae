"""Benchmark: `keel eval run` on the sales-card dataset with the offline models, end to end.

What is timed:

- `keel eval run sales-card --candidate 2` as a user runs it: a fresh `keel` process on the
  embedded SQLite default — imports, migrations check, deploy, an in-process worker, 40 cases
  × 2 prompt versions = 80 durable fabric runs (batch lane, run-time checks), 6 scorers, a
  panel of 3 offline judges (240 judge calls), the paired bootstrap, Holm, kappa,
  tripwires, the report stored and written as JSON and HTML. Wall time and CPU time of the
  process; the experiment's own duration (from the report).
- the baseline: the same 80 cases through the same agent in this process without the
  fabric (a Pydantic AI `agent.run` per case), alone and as the full experiment (the same
  scorers, judges and statistics), so the ratio isolates what the durable fabric costs.
- `keel --help`: the fixed cost of starting the CLI (imports).

Target (issue 6): under 10 s. The machine has 2 cores; the work is CPU-bound.

    .venv/bin/python -m bench.bench_eval_run [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "agents"
KEEL = str(Path(sys.executable).parent / "keel")
TARGET_S = 10.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def keel(home: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float, float]:
    env = {**os.environ, "KEEL_HOME": str(home / ".keel")}
    env.pop("KEEL_DATABASE_URL", None)
    cpu0, t0 = _children_cpu(), time.perf_counter()
    done = subprocess.run([KEEL, *args], cwd=home, env=env, capture_output=True, text=True)
    return done, time.perf_counter() - t0, _children_cpu() - cpu0


def in_process(home: Path) -> tuple[float, float, str]:
    """(agent-only seconds, full experiment seconds, verdict) without the fabric."""
    sys.path.insert(0, str(EXAMPLES))
    from keel.agents.builder import (
        build_agent,
        prompt_variables,
        render_prompt,
        route_model,
        user_prompt,
        validate_input,
    )
    from keel.agents.deps import RunDeps
    from keel.agents.loader import load_agent
    from keel.evals.dataset import EvalCase
    from keel.evals.delivery import suite_of
    from keel.evals.experiment import run_experiment
    from keel.evals.runner import CaseOutput, PromptVersionRef
    from keel.settings import Settings

    loaded = load_agent(EXAMPLES / "sales-card")
    settings = Settings(env="test", home=home / "inproc", _env_file=None)  # type: ignore[call-arg]
    agent = build_agent(loaded, settings)
    suite = suite_of(loaded)
    assert suite is not None
    dataset = suite.dataset()
    templates = {
        1: loaded.prompt_template,
        2: (EXAMPLES / "sales-card" / "evals" / "prompts" / "better.md").read_text(),
    }

    async def runner(case: EvalCase, prompt: PromptVersionRef) -> CaseOutput:
        validated = validate_input(loaded, case.inputs)
        clean = validated.model_dump(mode="json")
        instructions = render_prompt(templates[prompt.version], prompt_variables(loaded, clean))
        deps = RunDeps(run_id=case.id, tenant_id="bench", user_id="bench", agent=loaded.name,
                       locale=clean["locale"], data_dir=settings.home)  # fmt: skip
        started = time.perf_counter()
        result = await agent.run(
            user_prompt(loaded, validated), instructions=instructions,
            model=route_model(loaded, clean, settings), deps=deps,
        )  # fmt: skip
        return CaseOutput(
            output=result.output.model_dump(), latency_ms=(time.perf_counter() - started) * 1000
        )

    async def agent_only() -> None:
        await asyncio.gather(
            *(runner(c, PromptVersionRef("sales-card", v)) for c in dataset.cases for v in (1, 2))
        )

    asyncio.run(agent_only())  # warm: the sample database, the agent
    t0 = time.perf_counter()
    asyncio.run(agent_only())
    alone = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = asyncio.run(
        run_experiment(
            "sales-card", dataset, PromptVersionRef("sales-card", 2),
            PromptVersionRef("sales-card", 1), runner, suite.scorers, suite.panels,
            suite.config.gate, concurrency=suite.config.concurrency,
        )
    )  # fmt: skip
    return alone, time.perf_counter() - t0, report.verdict


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="keel-bench-") as tmp:
        home = Path(tmp)
        pushed, _, _ = keel(home, "prompt", "push", "sales-card",
                            str(EXAMPLES / "sales-card" / "evals" / "prompts" / "better.md"))  # fmt: skip
        assert pushed.returncode == 0, pushed.stderr
        _, help_s, help_cpu = keel(home, "--help")
        walls, cpus, experiments = [], [], []
        verdict = ""
        for i in range(args.repeats):
            out = home / f"out{i}"
            done, wall, cpu = keel(home, "eval", "run", "sales-card", "--candidate", "2", "-q",
                                   "--out", str(out))  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr
            report: dict[str, Any] = json.loads((out / "report.json").read_text())
            verdict = report["verdict"]
            walls.append(wall)
            cpus.append(cpu)
            experiments.append(float(report["duration_s"]))
        alone, full, inproc_verdict = in_process(home)
    wall = statistics.median(walls)
    experiment = statistics.median(experiments)
    print(
        f"cases: 40 × 2 versions = 80 fabric runs, 240 judge calls; load avg {os.getloadavg()[0]:.2f}"
    )
    print(f"keel --help (CLI start)            : {help_s:6.2f} s wall, {help_cpu:5.2f} s CPU")
    print(f"keel eval run (end to end)         : {wall:6.2f} s wall (median of {args.repeats}: "
          f"{', '.join(f'{w:.2f}' for w in walls)}), {statistics.median(cpus):5.2f} s CPU, {verdict}")  # fmt: skip
    print(
        f"  of which the experiment          : {experiment:6.2f} s (runs through the fabric + scoring)"
    )
    print(f"baseline: agent in process, alone  : {alone:6.2f} s")
    print(f"baseline: full experiment in process: {full:5.2f} s, {inproc_verdict}")
    print(f"ratio keel eval run / in-process experiment : {wall / full:5.1f}×")
    print(f"ratio fabric experiment / in-process experiment: {experiment / full:5.1f}×")
    print(f"target < {TARGET_S:.0f} s → {'OK' if wall < TARGET_S else 'MISSED'} ({wall:.2f} s)")


if __name__ == "__main__":
    main()

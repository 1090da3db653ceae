"""Benchmark: a full eval experiment vs running the agent alone.

40 cases × 2 prompt versions through an in-process Pydantic AI agent (a FunctionModel
that writes an account snapshot), then the same runs plus 5 deterministic scorers and a
panel of 3 offline judges, the paired bootstrap (10,000 resamples per metric), Holm,
kappa, tripwires and the report. Target (seed 003): the experiment well under 10 s.

    .venv/bin/python -m bench.bench_evals
"""

from __future__ import annotations

import asyncio
import statistics
import time

from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart, UserPromptPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from keel.evals.dataset import EvalCase, EvalDataset
from keel.evals.experiment import run_experiment
from keel.evals.panel import JudgePanelSpec, build_panel
from keel.evals.render import render_html, render_text
from keel.evals.runner import CaseOutput, PromptVersionRef
from keel.evals.scorers import (
    LanguageScorer,
    LatencyScorer,
    RegexScorer,
    SchemaScorer,
    WordCountScorer,
    bind_scorers,
)

CASES = 40
REPEATS = 3
TARGET_S = 10.0
RUBRIC = """- Mentions the project value
- Ends with a concrete next step
- Is written in {language}
- Is confident and persuasive
"""
BODY = (
    "{company} is planning a new logistics centre outside Leeds, {value_clause}. The company has worked with us on two smaller sites before, and "
    "their procurement team was very happy with the delivery times. This time they are looking "
    "for a partner who can handle both the steel frame and the roof installation, which is where "
    "our offer is strongest. We should also point out that our crews have been certified for the "
    "new safety rules that come into force next spring. The decision is expected at the end of "
    "the month, so the timing matters for both sides this year."
)
NEXT = "I suggest that we book a meeting with their project manager on Tuesday."
CLOSING = "Their team will review all offers carefully before any final choice is made."
PROOF = "Our delivery record is excellent."


class Card(BaseModel):
    snapshot: str


def _writer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    prompt = str(
        next(
            p.content
            for m in messages
            for p in getattr(m, "parts", [])
            if isinstance(p, UserPromptPart)
        )
    )
    company, value, version, index = prompt.split("|")
    i = int(index)
    # Cases differ in quality (value known or not, a proof point or not, a next step or not),
    # so the judges' agreement is measured across quality levels; v2 always ends with a next step.
    clause = (
        f"and the project value is estimated at {value} euros"
        if i % 4 != 3
        else "and the budget has not been shared with us yet"
    )
    parts = [BODY.format(company=company, value_clause=clause)]
    if i % 2 == 0:
        parts.append(PROOF)
    parts.append(NEXT if version == "2" or i % 5 in (0, 2) else CLOSING)
    text = " ".join(parts)
    return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, {"snapshot": text})])


AGENT = Agent(FunctionModel(_writer, model_name="bench:writer"), output_type=Card)


async def runner(case: EvalCase, prompt: PromptVersionRef) -> CaseOutput:
    started = time.perf_counter()
    result = await AGENT.run(
        f"{case.inputs['company']}|{case.inputs['project_value']:,}|{prompt.version}|{case.id[1:]}"
    )
    return CaseOutput(
        output=result.output.model_dump(),
        latency_ms=(time.perf_counter() - started) * 1000,
        tokens=result.usage.total_tokens,
    )


def dataset() -> EvalDataset:
    return EvalDataset(
        name="bench",
        cases=tuple(
            EvalCase(
                id=f"c{i:03d}",
                inputs={"company": f"Nordvik {i}", "project_value": 1_000_000 + 50_000 * i},
                metadata={"locale": "en", "segment": "a" if i % 2 else "b"},
            )
            for i in range(CASES)
        ),
    )


async def runner_only(ds: EvalDataset) -> float:
    sem = asyncio.Semaphore(8)

    async def one(case: EvalCase, prompt: PromptVersionRef) -> CaseOutput:
        async with sem:
            return await runner(case, prompt)

    started = time.perf_counter()
    await asyncio.gather(*(one(c, PromptVersionRef("card", v)) for v in (1, 2) for c in ds.cases))
    return time.perf_counter() - started


async def full(ds: EvalDataset) -> tuple[float, str]:
    scorers = bind_scorers(
        [
            SchemaScorer(),
            WordCountScorer(field="snapshot", min=80, max=160),
            LanguageScorer(field="snapshot"),
            RegexScorer(field="snapshot", pattern="(?i)guarantee", must_match=False),
            LatencyScorer(max_ms=5000),
        ],
        output_model=Card,
    )
    panel = build_panel(JudgePanelSpec(rubric_text=RUBRIC, field="snapshot"))
    started = time.perf_counter()
    report = await run_experiment(
        "bench",
        ds,
        PromptVersionRef("card", 2),
        PromptVersionRef("card", 1),
        runner,
        scorers,
        [panel],
    )
    render_text(report)
    render_html(report)
    return time.perf_counter() - started, report.verdict


async def main() -> None:
    ds = dataset()
    await runner_only(ds)  # warm up imports and the agent
    base = [await runner_only(ds) for _ in range(REPEATS)]
    runs = [await full(ds) for _ in range(REPEATS)]
    b = statistics.median(base)
    f = statistics.median(t for t, _ in runs)
    judge_calls = CASES * 2 * 3
    print(f"cases: {CASES} × 2 versions, 5 scorers, 3 offline judges ({judge_calls} judge calls)")
    print(f"runner alone        : {b * 1000:8.1f} ms (median of {REPEATS})")
    print(f"full experiment     : {f * 1000:8.1f} ms (median of {REPEATS}), verdict {runs[0][1]}")
    print(f"ratio full / runner : {f / b:8.1f}×")
    print(f"target              : < {TARGET_S:.0f} s → {'OK' if f < TARGET_S else 'MISSED'}")


if __name__ == "__main__":
    asyncio.run(main())

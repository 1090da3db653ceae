"""Eval cases as fabric runs: every case is a real run, pinned to the version under test."""

from __future__ import annotations

import pytest

from keel.evals.experiment import run_experiment
from keel.evals.fabric_runner import EVAL_TENANT, EVAL_USER, FabricCaseRunner
from keel.evals.runner import PromptVersionRef
from keel.identity.principal import Principal

from .conftest import Delivered
from .test_delivery import CLOSING, PERSUASIVE


def runner(d: Delivered, experiment: str, *, listen: bool = True) -> FabricCaseRunner:
    return FabricCaseRunner(
        d.fabric,
        "pitch",
        Principal(tenant_id=EVAL_TENANT, user_id=EVAL_USER, scopes=("*",)),
        experiment=experiment,
        completions=d.delivery.completions if listen else None,
    )


@pytest.mark.parametrize("listen", [True, False], ids=["listener", "fabric-wait"])
async def test_an_experiment_runs_every_case_as_a_pinned_eval_run(
    delivered: Delivered, listen: bool
) -> None:
    d = delivered
    candidate = d.catalog.prompts.push("pitch", CLOSING, {})
    suite = d.delivery.suites.by_name("pitch")
    assert suite is not None
    dataset = suite.dataset()
    report = await run_experiment(
        "pitch",
        dataset,
        PromptVersionRef("pitch", candidate),
        PromptVersionRef("pitch", 1),
        runner(d, "evx_test", listen=listen),
        suite.scorers,
        suite.panels,
        suite.config.gate.model_copy(update={"slice_by": []}),
    )
    assert report.runs["candidate"].errors == 0 and report.runs["baseline"].errors == 0
    assert report.metric("judge").delta is not None and report.metric("judge").delta > 0
    runs = d.fabric.list_runs(EVAL_TENANT, limit=100)
    assert len(runs) == 2 * len(dataset)
    assert {(r.lane, r.user_id, r.status) for r in runs} == {("batch", EVAL_USER, "succeeded")}
    assert sorted({r.prompt_version for r in runs}) == [1, candidate]
    assert {r.idempotency_key for r in runs} == {
        f"eval:evx_test:{v}:{c.id}" for v in (1, candidate) for c in dataset.cases
    }


async def test_a_blocked_eval_run_is_a_failed_case_with_the_checks_reason(
    delivered: Delivered,
) -> None:
    d = delivered
    candidate = d.catalog.prompts.push("pitch", PERSUASIVE, {})
    suite = d.delivery.suites.by_name("pitch")
    assert suite is not None
    case = suite.dataset().cases[1]  # English: the praise is "outstanding"
    output = await runner(d, "evx_blocked")(case, PromptVersionRef("pitch", candidate))
    assert output.failed and output.run_id is not None
    assert output.error == "run blocked: no_superlatives: forbidden match 'outstanding'"
    good = await runner(d, "evx_blocked")(case, PromptVersionRef("pitch", 1))
    assert good.error is None and isinstance(good.output, dict) and good.latency_ms > 0

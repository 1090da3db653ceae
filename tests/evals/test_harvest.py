"""Eval cases from production: finished runs and the feedback on their turns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keel.api.services.feedback import put_feedback
from keel.errors import SpecError
from keel.evals.dataset import load_dataset
from keel.evals.fabric_runner import EVAL_TENANT, EVAL_USER
from keel.evals.harvest import harvest_cases, merge_cases
from keel.fabric.turns import create_conversation, submit_turn
from keel.identity.principal import Principal

from .conftest import Delivered

ANN = Principal(tenant_id="t1", user_id="ann", scopes=("*",))


async def rated_turns(d: Delivered) -> list[str]:
    """Three sales-card turns: rated up, rated down, not rated. Returns their run ids."""
    conversation = create_conversation(d.fabric, ANN, "sales-card")
    runs = []
    for i, rating in enumerate(["up", "down", None]):
        turn, view = submit_turn(
            d.fabric,
            ANN,
            conversation,
            {"project_id": f"P-{i + 1:04d}", "role": "estimator", "locale": "sv"},
        )
        await d.fabric.wait("t1", view.id, timeout=30)
        if rating is not None:
            put_feedback(d.db, ANN, turn.id, rating, f"rated {rating}")
        runs.append(view.id)
    return runs


async def test_thumbs_up_runs_become_cases_with_their_output_as_expected(
    delivered: Delivered,
) -> None:
    up, down, plain = await rated_turns(delivered)
    eval_run = delivered.fabric.submit(
        Principal(tenant_id=EVAL_TENANT, user_id=EVAL_USER), "sales-card",
        {"project_id": "P-1", "role": "estimator"},
    )  # fmt: skip
    await delivered.fabric.wait(EVAL_TENANT, eval_run.id, timeout=30)

    [case] = harvest_cases(delivered.db, "sales-card", feedback="up")
    assert case.id == up
    assert case.inputs["role"] == "estimator" and case.metadata["locale"] == "sv"
    assert case.expected == delivered.fabric.get("t1", up).output["data"]  # type: ignore[index]
    assert case.metadata["feedback"] == {"rating": "up", "text": "rated up"}
    assert case.metadata["prompt"] == "sales-card@1"

    rated = harvest_cases(delivered.db, "sales-card", feedback="any")
    assert [c.id for c in rated] == [down, up]
    assert rated[0].expected is None
    everything = harvest_cases(delivered.db, "sales-card")
    assert [c.id for c in everything] == [plain, down, up]  # newest first; no eval runs
    assert harvest_cases(delivered.db, "sales-card", limit=1)[0].id == plain
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert harvest_cases(delivered.db, "sales-card", since=later) == []


def test_merging_keeps_existing_cases_and_skips_known_ids(tmp_path: Path) -> None:
    existing = '{"id": "a", "inputs": {"q": 1}}\n'
    new = load_dataset(
        _write(tmp_path, '{"id": "a", "inputs": {"q": 9}}\n{"id": "b", "inputs": {}}\n')
    )
    merged, added = merge_cases(existing, new.cases, source="cases.jsonl")
    assert added == 1
    assert merged.splitlines()[0] == existing.strip()
    assert merged.splitlines()[1:] == ['{"expected":null,"id":"b","inputs":{},"metadata":{}}']
    again, none = merge_cases(merged, new.cases, source="cases.jsonl")
    assert (again, none) == (merged, 0)
    with pytest.raises(SpecError):
        merge_cases("{broken\n", new.cases, source="cases.jsonl")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "new.jsonl"
    path.write_text(text, encoding="utf-8")
    return path

"""Runs as durable work items: submit, events, idempotency, tenancy, lanes."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from keel.errors import IdempotencyMismatch, InvalidInput, NotFound
from keel.fabric.catalog import AgentCatalog
from keel.fabric.engine import Lane
from keel.fabric.events import EventType
from keel.fabric.service import Fabric
from keel.identity.keys import ensure_tenant
from keel.identity.principal import Principal
from keel.settings import Settings
from keel.store.database import Database

QUESTION = {"question": "Which hospital projects in Stockholm start this year?", "locale": "sv"}


async def test_a_run_executes_durably_and_tells_its_story_in_order(
    fabric: Fabric, alice: Principal
) -> None:
    view = fabric.submit(alice, "rune", QUESTION)
    assert view.status == "queued" and view.prompt_version == 1
    done = await fabric.wait("t1", view.id, timeout=30)
    assert done.status == "succeeded"
    assert done.output is not None and "Jag hittade 2 träffar" in done.output["text"]
    types = [e.type for e in fabric.events("t1", view.id)]
    assert types == [
        EventType.RUN_QUEUED, EventType.RUN_STARTED, EventType.MODEL_RESPONSE, EventType.TOOL_REQUESTED,
        EventType.TOOL_RESULT, EventType.MODEL_RESPONSE, EventType.OUTPUT, EventType.RUN_SUCCEEDED,
    ]  # fmt: skip
    seqs = [e.seq for e in fabric.events("t1", view.id)]
    assert seqs == list(range(1, len(seqs) + 1))
    assert done.usage["requests"] == 2 and done.usage["tool_calls"] == 1
    assert done.usage["input_tokens"] > 0


async def test_each_model_request_and_tool_call_is_a_checkpointed_step(
    fabric: Fabric, alice: Principal
) -> None:
    view = fabric.submit(alice, "rune", QUESTION)
    assert await asyncio.to_thread(fabric.engine.result, view.id) == "succeeded"
    names = [s["function_name"] for s in fabric.engine.steps(view.id)]
    assert names[0] == "keel.start"
    assert sum("model.request" in n for n in names) == 2
    assert "tool.search_projects" in names
    assert names[-1] == "keel.succeed"


async def test_the_tool_call_carries_a_stable_idempotency_key(
    fabric: Fabric, alice: Principal
) -> None:
    view = fabric.submit(alice, "rune", QUESTION)
    await fabric.wait("t1", view.id, timeout=30)
    requested = [e for e in fabric.events("t1", view.id) if e.type == EventType.TOOL_REQUESTED]
    assert requested[0].data["idempotency_key"] == f"{view.id}:{requested[0].data['tool_call_id']}"


def test_the_same_idempotency_key_returns_the_same_run(fabric: Fabric, alice: Principal) -> None:
    first = fabric.submit(alice, "rune", QUESTION, idempotency_key="k-1")
    again = fabric.submit(alice, "rune", QUESTION, idempotency_key="k-1")
    assert again.id == first.id
    with pytest.raises(IdempotencyMismatch):
        fabric.submit(alice, "rune", {**QUESTION, "locale": "de"}, idempotency_key="k-1")


def test_concurrent_submits_with_one_key_create_one_run(fabric: Fabric, alice: Principal) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = set(
            pool.map(
                lambda _: fabric.submit(alice, "rune", QUESTION, idempotency_key="same").id,
                range(16),
            )
        )
    assert len(ids) == 1
    assert len(fabric.list_runs("t1")) == 1


def test_idempotency_keys_are_per_tenant(
    fabric: Fabric, alice: Principal, mallory: Principal
) -> None:
    mine = fabric.submit(alice, "rune", QUESTION, idempotency_key="shared")
    theirs = fabric.submit(mallory, "rune", QUESTION, idempotency_key="shared")
    assert mine.id != theirs.id


def test_another_tenants_run_is_not_found(fabric: Fabric, alice: Principal) -> None:
    view = fabric.submit(alice, "rune", QUESTION)
    for op in (
        lambda: fabric.get("t2", view.id),
        lambda: fabric.events("t2", view.id),
        lambda: fabric.cancel("t2", view.id, "mallory"),
        lambda: fabric.redrive("t2", view.id, "mallory"),
    ):
        with pytest.raises(NotFound):
            op()
    assert fabric.list_runs("t2") == []


def test_bad_input_is_refused_before_anything_is_written(fabric: Fabric, alice: Principal) -> None:
    with pytest.raises(InvalidInput) as err:
        fabric.submit(alice, "sales-card", {"project_id": "P-1"})
    assert err.value.field == "input.role"
    with pytest.raises(InvalidInput):
        fabric.submit(alice, "rune", QUESTION, priority=0)
    with pytest.raises(InvalidInput):
        fabric.submit(
            alice, "rune", QUESTION, lane="batch"
        )  # rune declares only the interactive runner
    with pytest.raises(NotFound):
        fabric.submit(alice, "no-such-agent", QUESTION)
    assert fabric.list_runs("t1") == []


async def test_batch_lane_runs_the_same_definition(fabric: Fabric, alice: Principal) -> None:
    view = fabric.submit(
        alice, "sales-card", {"project_id": "P-0001", "role": "site manager"}, lane="batch"
    )
    done = await fabric.wait("t1", view.id, timeout=30)
    assert done.status == "succeeded" and done.lane == "batch"
    assert done.output is not None and set(done.output["data"]) >= {
        "headline",
        "snapshot",
        "key_facts",
    }


async def test_follow_streams_every_event_live_until_the_run_ends(
    fabric: Fabric, alice: Principal
) -> None:
    view = fabric.submit(alice, "rune", QUESTION)
    seen = [e async for e in fabric.follow("t1", view.id)]
    assert [e.seq for e in seen] == list(range(1, len(seen) + 1))
    assert seen[-1].type == EventType.RUN_SUCCEEDED
    resumed = [e async for e in fabric.follow("t1", view.id, after=3)]
    assert [e.seq for e in resumed] == [e.seq for e in seen[3:]]


async def test_many_runs_for_several_tenants_all_finish(
    fabric: Fabric, alice: Principal, mallory: Principal
) -> None:
    ids = [
        fabric.submit(
            p, "rune", {"question": f"Which school projects in Malmö start this year? #{i}"}
        ).id
        for i in range(12)
        for p in (alice, mallory)
    ]
    views = await asyncio.gather(
        *(fabric.wait(fabric.store.get_internal(i).tenant_id, i, timeout=60) for i in ids)
    )
    assert {v.status for v in views} == {"succeeded"}


async def test_a_worker_serving_one_lane_leaves_the_other_queued(
    fabric_settings: Settings, alice: Principal
) -> None:
    """`keel worker --lane batch`: batch runs execute, interactive ones wait for another worker."""
    db = Database.from_settings(fabric_settings)
    db.upgrade()
    ensure_tenant(db, "t1")
    fab = Fabric(fabric_settings, db, AgentCatalog.load(fabric_settings, db))
    await asyncio.to_thread(fab.start, execute=True, lanes=[Lane.BATCH])
    try:
        interactive = fab.submit(alice, "rune", QUESTION)
        card = {"project_id": "P-0001", "role": "site manager"}
        batch = fab.submit(alice, "sales-card", card, lane="batch")
        assert (await fab.wait("t1", batch.id, timeout=30)).status == "succeeded"
        await asyncio.sleep(3 * fabric_settings.interactive_poll_seconds)
        assert fab.get("t1", interactive.id).status == "queued"
    finally:
        await asyncio.to_thread(fab.stop)
        db.dispose()

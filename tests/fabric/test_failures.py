"""Retries, failure with the failed step, re-drive from it, cancel with partial output, timeouts."""

from __future__ import annotations

import asyncio

import pytest

from keel.agents import offline
from keel.errors import Conflict
from keel.fabric.events import EventType
from keel.fabric.service import Fabric
from keel.identity.principal import Principal
from tests.fabric.probe import effects

ASK = {"question": "What is the answer to question Q-42?"}


async def test_a_transient_tool_error_is_retried_with_backoff(
    fabric: Fabric, alice: Principal
) -> None:
    effects().set_switch(
        fabric.settings.home, "broken", "1"
    )  # the first attempt of each call fails
    view = fabric.submit(alice, "flaky", ASK)
    done = await fabric.wait("t1", view.id, timeout=30)
    assert done.status == "succeeded"
    assert effects().rows(fabric.settings.home, "SELECT count(*) FROM attempts") == [(2,)]


async def test_a_failed_run_names_its_failed_step_and_redrive_reuses_finished_steps(
    fabric: Fabric, alice: Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_calls: list[int] = []
    real = offline.respond

    def counting(messages, info):  # type: ignore[no-untyped-def]
        model_calls.append(len(messages))
        return real(messages, info)

    monkeypatch.setattr(offline, "respond", counting)
    effects().set_switch(fabric.settings.home, "broken", "always")
    view = fabric.submit(alice, "flaky", ASK)
    failed = await fabric.wait("t1", view.id, timeout=30)
    assert failed.status == "failed"
    assert failed.error is not None and failed.error["step"] == "tool.lookup"
    assert "unavailable" in failed.error["message"]
    assert model_calls == [1]  # the model planned the call once
    assert effects().rows(fabric.settings.home, "SELECT count(*) FROM attempts") == [
        (3,)
    ]  # 1 + 2 retries

    with pytest.raises(Conflict):
        fabric.cancel("t1", view.id, "alice")
    effects().set_switch(fabric.settings.home, "broken", None)
    redriven = fabric.redrive("t1", view.id, "alice")
    assert redriven.status == "queued" and redriven.redrives == 1
    done = await fabric.wait("t1", view.id, timeout=30)
    assert done.status == "succeeded", (
        done.error,
        [(e.type, e.data) for e in fabric.events("t1", view.id)][-4:],
    )
    assert model_calls == [1, 3]  # the first model call was not paid for again
    types = [e.type for e in fabric.events("t1", view.id)]
    assert types.count(EventType.RUN_FAILED) == 1 and EventType.RUN_REDRIVEN in types
    assert types[-1] == EventType.RUN_SUCCEEDED
    with pytest.raises(Conflict):
        fabric.redrive("t1", view.id, "alice")


async def test_cancel_stops_the_run_and_keeps_partial_output_and_usage(
    fabric: Fabric, alice: Principal
) -> None:
    view = fabric.submit(alice, "slow", ASK)
    async for event in fabric.follow("t1", view.id):
        if event.type == EventType.TOOL_REQUESTED:
            break
    cancelled = fabric.cancel("t1", view.id, "alice")
    assert cancelled.status == "cancelled"
    assert cancelled.usage["requests"] == 1  # the model call before the tool is kept
    assert fabric.cancel("t1", view.id, "alice").status == "cancelled"  # idempotent
    effects().set_switch(fabric.settings.home, "release", "1")
    await asyncio.sleep(0)  # let the interrupted workflow notice
    final = fabric.get("t1", view.id)
    assert final.status == "cancelled"
    assert [e.type for e in fabric.events("t1", view.id)].count(EventType.RUN_CANCELLED) == 1


async def test_a_run_past_its_timeout_ends_timed_out(fabric: Fabric, alice: Principal) -> None:
    view = fabric.submit(alice, "slow", ASK)  # slow declares timeout_seconds: 3
    done = await fabric.wait("t1", view.id, timeout=30)
    assert done.status == "timed_out"
    assert done.error is not None and done.error["type"] == "RunTimedOut"
    effects().set_switch(fabric.settings.home, "release", "1")
    redriven = fabric.redrive("t1", view.id, "alice")
    assert redriven.status == "queued"
    assert (await fabric.wait("t1", view.id, timeout=30)).status == "succeeded"

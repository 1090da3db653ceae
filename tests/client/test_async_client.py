"""`keel.client.AsyncClient` against a real server through the killing proxy, on SQLite and
PostgreSQL: the same operations as `Client`, awaited."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from keel.client import AsyncClient, InvalidRequestError, NotFoundError, RetryPolicy, RunEvent
from tests.client.conftest import KeelServer

FAST = RetryPolicy(attempts=4, backoff=0.05, max_backoff=0.2)
QUESTION = {"question": "Which school projects in Malmö start next year?"}


def client(keel: KeelServer, **kwargs: Any) -> AsyncClient:
    return AsyncClient(keel.url, api_key=keel.key(), retry=FAST, **kwargs)


async def test_an_async_conversation_streams_turns_through_killed_connections(
    keel: KeelServer,
) -> None:
    assert keel.fabric is not None
    async with client(keel) as k:
        conversation = await k.create_conversation("payments")
        received: list[RunEvent] = []
        async with await k.stream_turn(conversation.id, {"question": "pay invoice 3"}) as stream:
            async for event in stream:
                received.append(event)
                keel.proxy.cut()
                if event.type == "run.waiting_approval":
                    approvals = [
                        a async for a in k.list_approvals(status="pending", run_id=event.run_id)
                    ]
                    await k.approve(approvals[0].id)
        stored = keel.fabric.events("acme", received[0].run_id)
        assert [e.seq for e in received] == [e.seq for e in stored]
        assert received[-1].type == "run.succeeded" and stream.reconnects >= 1
        (turn,) = await k.list_turns(conversation.id)
        assert turn.id == stream.turn_id and turn.status == "succeeded"
        await k.give_feedback(turn.id, "down", "too slow")
        assert (await k.get_feedback(turn.id)).rating == "down"


async def test_async_runs_wait_and_follow(keel: KeelServer) -> None:
    async with client(keel) as k:
        run = await k.submit_run("rune", QUESTION)
        done = await k.wait_run(run.id, timeout=30)
        assert done.status == "succeeded" and done.text
        events = [e async for e in k.run_events(run.id, after=2)]
        assert events[0].seq == 3 and events[-1].terminal
        created = [(await k.create_conversation("rune")).id for _ in range(3)]
        listed = [c.id async for c in k.list_conversations(page_size=2)]
        assert listed == list(reversed(created))
        description = await k.get_agent("rune")
        assert description.input_schema["required"] == ["question"]


async def test_async_wait_run_times_out(keel: KeelServer) -> None:
    assert keel.fabric is not None
    from tests.fabric.probe import effects

    async with client(keel) as k:
        run = await k.submit_run("slow", {"question": "hold"})
        with pytest.raises(TimeoutError):
            await k.wait_run(run.id, timeout=0.3)
        effects().set_switch(keel.fabric.settings.home, "release", "1")
        assert (await k.wait_run(run.id, timeout=30)).terminal


async def test_async_errors_are_typed(keel: KeelServer) -> None:
    async with client(keel) as k:
        with pytest.raises(NotFoundError):
            await k.get_turn("turn_nope")
        with pytest.raises(InvalidRequestError) as invalid:
            await k.submit_run("sales-card", {"role": "electrician"})
        assert invalid.value.errors[0].field == "body.input.project_id"


async def test_concurrent_async_streams(keel: KeelServer) -> None:
    async with client(keel) as k:
        conversations = [(await k.create_conversation("rune")).id for _ in range(5)]

        async def last_event(conversation_id: str) -> str:
            stream = await k.stream_turn(conversation_id, QUESTION)
            return [e.type async for e in stream][-1]

        finals = await asyncio.gather(*(last_event(c) for c in conversations))
        assert finals == ["run.succeeded"] * 5

"""Event streams under a real uvicorn server, on SQLite and PostgreSQL: dropped and resumed
with `Last-Event-ID` (every event exactly once, in order), keep-alives while a run waits
for approval and the same stream continuing after the decision, replays of a streamed
submission, and the wire format."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from keel.api.sse import encode, wants_stream
from keel.fabric.events import Event, EventType
from tests.api.conftest import Frame, Live, assert_problem, field_names

QUESTION = {"question": "Which hospital projects in Stockholm start this year?"}
STREAM = {"Accept": "text/event-stream"}


async def frames(response: httpx.Response) -> AsyncIterator[Frame]:
    """Frames as they arrive (comments included) from a streaming response."""
    fields: dict[str, str] = {}
    comment = False
    async for line in response.aiter_lines():
        if line == "":
            if fields or comment:
                data = json.loads(fields["data"]) if "data" in fields else None
                yield Frame(fields.get("id"), fields.get("event"), data, comment and not fields)
            fields, comment = {}, False
        elif line.startswith(":"):
            comment = True
        else:
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value


async def open_turn(server: Live, agent: str, run_input: dict[str, Any]) -> str:
    conversation_id = await server.conversation(agent=agent)
    response = await server.client.post(
        f"/v1/conversations/{conversation_id}/turns",
        json={"input": run_input},
        headers=server.headers(),
    )
    assert response.status_code == 202
    turn_id: str = response.json()["id"]
    return turn_id


async def test_a_client_dropped_after_every_event_still_gets_each_exactly_once_in_order(
    server: Live,
) -> None:
    """Reconnect after each single event: the union is the run's events, no gaps, no dups."""
    assert server.fabric is not None
    turn_id = await open_turn(server, "rune", QUESTION)
    received: list[Frame] = []
    last: str | None = None
    connections = 0
    async with server.http(**server.headers()) as http:
        while not received or received[-1].event != EventType.RUN_SUCCEEDED:
            headers = {**STREAM, **({"Last-Event-ID": last} if last else {})}
            connections += 1
            async with http.stream("GET", f"/v1/turns/{turn_id}/events", headers=headers) as r:
                assert r.status_code == 200
                async for frame in frames(r):
                    if frame.comment:
                        continue
                    received.append(frame)
                    last = frame.id
                    break  # drop the connection mid-stream
    run_id = received[0].data["run_id"] if received[0].data else ""
    stored = server.fabric.events("acme", run_id)
    assert [int(f.id or 0) for f in received] == [e.seq for e in stored]
    assert [f.event for f in received] == [e.type for e in stored]
    assert connections == len(stored)


async def test_a_dropped_stream_resumes_after_an_approval_without_loss(server: Live) -> None:
    """Drop while the run waits for a human; approve; reconnect with Last-Event-ID."""
    assert server.fabric is not None
    turn_id = await open_turn(server, "payments", {"question": "pay invoice 42"})
    first: list[Frame] = []
    async with server.http(**server.headers()) as http:
        async with http.stream("GET", f"/v1/turns/{turn_id}/events", headers=STREAM) as r:
            async for frame in frames(r):
                if not frame.comment:
                    first.append(frame)
                if frame.event == EventType.RUN_WAITING:
                    break
        approval = next(f for f in first if f.event == EventType.APPROVAL_REQUESTED)
        assert approval.data is not None
        decided = await http.post(
            f"/v1/approvals/{approval.data['data']['approval_id']}/approve",
            json={"note": "ok"},
        )
        assert decided.status_code == 200
        rest: list[Frame] = []
        resume = {**STREAM, "Last-Event-ID": first[-1].id or ""}
        async with http.stream("GET", f"/v1/turns/{turn_id}/events", headers=resume) as r:
            rest = [f async for f in frames(r) if not f.comment]
    events = server.fabric.events("acme", first[0].data["run_id"] if first[0].data else "")
    assert [int(f.id or 0) for f in first + rest] == [e.seq for e in events]
    assert rest[-1].event == EventType.RUN_SUCCEEDED
    assert EventType.APPROVAL_RESOLVED in [f.event for f in rest]


async def test_a_stream_stays_open_with_keep_alives_while_waiting_and_continues_after_approval(
    server: Live,
) -> None:
    """The documented choice: waiting for approval does not end the stream."""
    seen: list[Frame] = []
    async with server.http(**server.headers()) as http:
        turn_id = await open_turn(server, "payments", {"question": "pay invoice 7"})
        async with http.stream("GET", f"/v1/turns/{turn_id}/events", headers=STREAM) as r:
            approved = False
            async for frame in frames(r):
                seen.append(frame)
                waiting = any(f.event == EventType.RUN_WAITING for f in seen)
                if waiting and frame.comment and not approved:
                    request = next(f for f in seen if f.event == EventType.APPROVAL_REQUESTED)
                    assert request.data is not None
                    approval_id = request.data["data"]["approval_id"]
                    response = await http.post(f"/v1/approvals/{approval_id}/approve")
                    assert response.status_code == 200
                    approved = True
    kinds = [f.event for f in seen if not f.comment]
    assert kinds.index(EventType.RUN_WAITING) < kinds.index(EventType.APPROVAL_RESOLVED)
    assert kinds[-1] == EventType.RUN_SUCCEEDED
    waiting_at = next(i for i, f in enumerate(seen) if f.event == EventType.RUN_WAITING)
    assert any(f.comment for f in seen[waiting_at:])


async def test_after_and_last_event_id_choose_where_a_stream_starts(server: Live) -> None:
    assert server.fabric is not None
    turn_id = await open_turn(server, "rune", QUESTION)
    async with server.http(**server.headers()) as http:
        full = [f async for f in _stream(http, f"/v1/turns/{turn_id}/events")]
        total = len(full)
        assert full[-1].event == EventType.RUN_SUCCEEDED
        tail = [f async for f in _stream(http, f"/v1/turns/{turn_id}/events?after=3")]
        assert [int(f.id or 0) for f in tail] == list(range(4, total + 1))
        header_wins = [
            f
            async for f in _stream(
                http, f"/v1/turns/{turn_id}/events?after=1", {"Last-Event-ID": str(total - 1)}
            )
        ]
        assert [int(f.id or 0) for f in header_wins] == [total]
        # resuming after the terminal event ends at once, with nothing to send
        done = [
            f
            async for f in _stream(
                http, f"/v1/turns/{turn_id}/events", {"Last-Event-ID": str(total)}
            )
        ]
        assert done == []


async def _stream(
    http: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None
) -> AsyncIterator[Frame]:
    async with http.stream("GET", url, headers={**STREAM, **(headers or {})}) as r:
        assert r.status_code == 200, await r.aread()
        async for frame in frames(r):
            if not frame.comment:
                yield frame


async def test_a_streamed_submission_replays_its_events_for_the_same_key(server: Live) -> None:
    conversation_id = await server.conversation()
    url = f"/v1/conversations/{conversation_id}/turns"
    headers = {**server.headers(), **STREAM, "Idempotency-Key": "stream-7"}
    async with server.http() as http:
        first = await http.post(url, json={"input": QUESTION}, headers=headers)
        again = await http.post(url, json={"input": QUESTION}, headers=headers)
        resumed = await http.post(
            url, json={"input": QUESTION}, headers={**headers, "Last-Event-ID": "2"}
        )
        as_json = await http.post(
            url, json={"input": QUESTION}, headers={**headers, "Accept": "application/json"}
        )
    assert first.status_code == again.status_code == 200
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    strip = [f for f in _parse(first.text)]
    assert [f for f in _parse(again.text)] == strip
    assert [f for f in _parse(resumed.text)] == strip[2:]
    assert as_json.status_code == 202 and as_json.json()["status"] == "succeeded"
    listed = await server.client.get(url, headers=server.headers())
    assert len(listed.json()["data"]) == 1


def _parse(text: str) -> list[Frame]:
    from tests.api.conftest import parse_frames

    return [f for f in parse_frames(text) if not f.comment]


async def test_another_tenants_stream_is_a_404_before_any_stream_starts(server: Live) -> None:
    turn_id = await open_turn(server, "rune", QUESTION)
    run_id = (await server.client.get(f"/v1/turns/{turn_id}", headers=server.headers())).json()[
        "run_id"
    ]
    intruder = server.headers("globex", "eve")
    async with server.http(**intruder) as http:
        for url in (f"/v1/turns/{turn_id}/events", f"/v1/runs/{run_id}/events"):
            response = await http.get(url, headers=STREAM)
            assert_problem(response, 404, "not_found")


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "9" * 20])
async def test_a_malformed_last_event_id_is_a_422_naming_the_header(
    server: Live, value: str
) -> None:
    turn_id = await open_turn(server, "rune", QUESTION)
    async with server.http(**server.headers()) as http:
        response = await http.get(
            f"/v1/turns/{turn_id}/events", headers={**STREAM, "Last-Event-ID": value}
        )
    assert_problem(response, 422)
    assert field_names(response) == ["header.Last-Event-ID"]


async def test_streams_do_not_block_other_requests(server: Live) -> None:
    """Twenty open streams (runs waiting for approval) and reads still answer promptly."""
    turn_ids = [await open_turn(server, "payments", {"question": f"pay {i}"}) for i in range(20)]
    async with server.http(**server.headers()) as http:

        async def hold(turn_id: str, opened: asyncio.Event) -> None:
            async with http.stream("GET", f"/v1/turns/{turn_id}/events", headers=STREAM) as r:
                async for frame in frames(r):
                    if frame.event == EventType.RUN_WAITING:
                        opened.set()
                        await asyncio.Event().wait()  # hold the connection open

        opened = [asyncio.Event() for _ in turn_ids]
        holders = [asyncio.create_task(hold(t, o)) for t, o in zip(turn_ids, opened, strict=True)]
        try:
            await asyncio.wait_for(asyncio.gather(*(o.wait() for o in opened)), 30)
            response = await asyncio.wait_for(http.get("/v1/conversations"), 5)
            assert response.status_code == 200
        finally:
            for task in holders:
                task.cancel()
            await asyncio.gather(*holders, return_exceptions=True)


def test_an_event_is_encoded_as_one_sse_frame_with_seq_as_id() -> None:
    event = Event(
        "run_1", 7, "output", {"text": "two\nlines: ok"}, datetime(2026, 1, 1, tzinfo=UTC)
    )
    frame = encode(event).decode()
    assert frame.endswith("\n\n") and frame.count("\n") == 4
    lines = frame.strip("\n").split("\n")
    assert lines[:2] == ["id: 7", "event: output"]
    assert json.loads(lines[2].removeprefix("data: ")) == {
        "run_id": "run_1",
        "seq": 7,
        "type": "output",
        "data": {"text": "two\nlines: ok"},
        "created_at": "2026-01-01T00:00:00+00:00",
    }


@pytest.mark.parametrize(
    ("accept", "streams"),
    [
        ("text/event-stream", True),
        ("application/json", False),
        ("*/*", False),
        ("", False),
        ("text/event-stream, application/json", True),
        ("application/json, text/event-stream;q=0.5", False),
        ("text/event-stream;q=0", False),
        ("text/event-stream;q=bogus", False),
    ],
)
def test_only_an_explicit_preference_for_event_streams_streams(accept: str, streams: bool) -> None:
    from starlette.requests import Request

    request = Request({"type": "http", "headers": [(b"accept", accept.encode())]})
    assert wants_stream(request) is streams

"""Server-sent events: a run's events as `text/event-stream`, resumable with `Last-Event-ID`.

Each event is sent as

    id: <seq>
    event: <type>
    data: {"run_id": …, "seq": …, "type": …, "data": {…}, "created_at": …}

`seq` is dense per run (1, 2, 3, …), so a client that reconnects with `Last-Event-ID: n` (or
`?after=n`; the header wins) receives n+1 onwards: nothing lost, nothing twice. A comment
line (`: keep-alive`) goes out every `api_sse_heartbeat_seconds` without an event, so proxies
keep an idle connection open.

The stream ends after the run's terminal event (succeeded, failed, cancelled, timed out,
blocked). A run waiting for approval does NOT end the stream: it stays open with heartbeats
and continues with the same run's events once someone decides (the next segment runs under
the same run id and seq). A client that does not want to hold a connection while a human
thinks may disconnect after `run.waiting_approval` and reconnect later with its
`Last-Event-ID`. A failed run that is re-driven while a client follows it continues in the
same stream; a client connecting after the terminal event receives the stored events and
the stream ends.

Callers check visibility *before* building the stream (another tenant's run is a 404, never
a stream that fails midway). Fabric reads are synchronous and run in worker threads; nothing
here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import Any

import anyio
from fastapi import Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from keel.api.idempotency import StoredResponse
from keel.errors import InvalidInput
from keel.fabric.events import Event
from keel.fabric.service import Fabric
from keel.fabric.turns import get_turn

MEDIA_TYPE = "text/event-stream"
HEARTBEAT = b": keep-alive\n\n"
LAST_EVENT_ID = "Last-Event-ID"
_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def encode(event: Event) -> bytes:
    """One event in the SSE wire format (JSON on one line: no newline can split it)."""
    payload = {
        "run_id": event.run_id,
        "seq": event.seq,
        "type": event.type,
        "data": event.data,
        "created_at": event.created_at.isoformat() if event.created_at else None,
    }
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)
    return f"id: {event.seq}\nevent: {event.type}\ndata: {data}\n\n".encode()


def resume_point(request: Request, after: int | None) -> int:
    """Where to resume: `Last-Event-ID` when sent (a reconnecting EventSource sends it while
    its URL still carries the original `?after=`), else `after`, else the beginning."""
    raw = request.headers.get(LAST_EVENT_ID)
    if raw is not None and raw.strip():
        value = raw.strip()
        if not value.isdigit() or len(value) > 12:
            raise InvalidInput(
                "Last-Event-ID must be the id of an event you received (a sequence number)",
                field=f"header.{LAST_EVENT_ID}",
            )
        return int(value)
    return after or 0


def wants_stream(request: Request) -> bool:
    """Whether the client prefers `text/event-stream` to JSON (explicitly, by Accept)."""
    weights: dict[str, float] = {}
    for part in request.headers.get("accept", "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        weights[media.lower()] = max(quality, weights.get(media.lower(), 0.0))
    stream = weights.get(MEDIA_TYPE, 0.0)
    return stream > 0 and stream >= weights.get("application/json", 0.0)


async def follow(fabric: Fabric, tenant_id: str, run_id: str, after: int) -> AsyncIterator[Event]:
    """Every event after AFTER, live, until the run has ended and nothing follows.

    `Fabric.follow` stops at the first terminal event; a re-driven run writes more after it,
    and a client resuming after the terminal event must not wait forever, so the run's state
    is checked each time it stops (a run that is terminal has written its terminal event in
    the same transaction, so "terminal and nothing after `last`" means done)."""
    last = after
    while True:
        view = await asyncio.to_thread(fabric.get, tenant_id, run_id)
        if view.terminal:
            pending = await asyncio.to_thread(fabric.events, tenant_id, run_id, last)
            if not pending:
                return
        async for event in fabric.follow(tenant_id, run_id, last):
            yield event
            last = event.seq


async def frames(events: AsyncIterator[Event], heartbeat: float) -> AsyncIterator[bytes]:
    """EVENTS encoded, with a heartbeat comment whenever none arrived for HEARTBEAT seconds.

    The next event is awaited in a task that a heartbeat does not cancel (cancelling a
    generator mid-read would end it)."""
    iterator = events.__aiter__()
    pending: asyncio.Future[Event] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=heartbeat)
            if not done:
                yield HEARTBEAT
                continue
            finished, pending = pending, None
            try:
                event = finished.result()
            except StopAsyncIteration:
                return
            yield encode(event)
    finally:
        with anyio.CancelScope(shield=True):
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
            closer = getattr(iterator, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()


def stream(
    fabric: Fabric,
    tenant_id: str,
    run_id: str,
    *,
    after: int,
    heartbeat: float,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> StreamingResponse:
    """The SSE response for RUN_ID's events after AFTER. Check visibility before calling."""
    return StreamingResponse(
        frames(follow(fabric, tenant_id, run_id, after), heartbeat),
        status_code=status_code,
        media_type=MEDIA_TYPE,
        headers={**_STREAM_HEADERS, **dict(headers or {}), "Keel-Run-Id": run_id},
    )


def replay_events(request: Request, stored: StoredResponse) -> Awaitable[Response]:
    """The `EventReplayer` for Idempotency-Key replays of a streamed turn submission: the
    run's stored events again (continuing live if it still runs; honouring `Last-Event-ID`,
    so re-POSTing with the key resumes a dropped stream). A replay asked for JSON gets the
    turn's current state as a 202 instead."""

    async def replay() -> Response:
        from keel.api.schemas import RunPublic, TurnPublic

        principal: Any = await request.app.state.resolve_principal(request)
        fabric: Fabric | None = request.app.state.fabric
        run_id = stored.resource_id
        if fabric is None or run_id is None:
            raise RuntimeError("an event replay needs the runtime and a run id")
        tenant = str(principal.tenant_id)
        headers = {k: v for k, v in stored.headers.items() if k.lower() != "content-type"}
        if wants_stream(request):
            after = resume_point(request, None)
            await asyncio.to_thread(fabric.get, tenant, run_id)
            settings = request.app.state.settings
            return stream(
                fabric, tenant, run_id, after=after,
                heartbeat=settings.api_sse_heartbeat_seconds,
                status_code=stored.status, headers=headers,
            )  # fmt: skip
        view = await asyncio.to_thread(fabric.get, tenant, run_id)
        body: dict[str, Any]
        if view.turn_id is not None:
            turn = await asyncio.to_thread(get_turn, fabric.db, principal, view.turn_id)
            body = TurnPublic.from_view(turn).model_dump(mode="json")
        else:
            body = RunPublic.from_view(view).model_dump(mode="json")
        return JSONResponse(body, status_code=202, headers=headers)

    return replay()

"""Turns: submit one to a conversation (202 or a live event stream), read it, follow its
events (SSE, resumable), cancel it.

A turn and its run are created in one transaction by `keel.fabric.turns`; this module only
translates. `POST …/turns` with `Accept: text/event-stream` streams the run's events in the
response; otherwise it answers 202 with the turn and `Location: /v1/turns/{id}`.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse

from keel.api import sse
from keel.api.deps import (
    ConversationsRead,
    DbDep,
    FabricDep,
    IdempotencyKeyHeader,
    LastEventIdHeader,
    SettingsDep,
    TurnsWrite,
)
from keel.api.idempotency import EventReplay, IdempotentRoute, effect_key
from keel.api.problems import in_body, problem_responses
from keel.api.schemas import TurnCreate, TurnPublic
from keel.errors import InvalidInput
from keel.fabric import turns

router = APIRouter(tags=["turns"], route_class=IdempotentRoute)

ConversationId = Annotated[str, Path(max_length=64, description="A `conv_…` id.")]
TurnId = Annotated[str, Path(max_length=64, description="A `turn_…` id.")]
After = Annotated[
    int | None,
    Query(ge=0, le=10**9, description="Send the events after this seq (`Last-Event-ID` wins)."),
]

EVENT_STREAM = {
    "description": "The run's events as server-sent events (`id: <seq>`, `event: <type>`, "
    "`data: <RunEventPublic JSON>`), `: keep-alive` comments while idle; ends after the "
    "terminal event.",
    "content": {
        sse.MEDIA_TYPE: {
            "schema": {"type": "string"},
            "x-event-data": {"$ref": "#/components/schemas/RunEventPublic"},
        }
    },
}


@router.post(
    "/v1/conversations/{conversation_id}/turns",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=None,
    summary="Submit a turn (202, or stream its events with Accept: text/event-stream)",
    responses={
        202: {
            "model": TurnPublic,
            "description": "The turn is queued; follow `Location`, or its events at "
            "`/v1/turns/{id}/events`.",
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
        200: EVENT_STREAM,
        **problem_responses(401, 403, 404, 409, 413, 422, 429, 503),
    },
)
async def submit_turn(
    conversation_id: ConversationId,
    body: TurnCreate,
    request: Request,
    principal: TurnsWrite,
    fabric: FabricDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    try:
        turn, run = await anyio.to_thread.run_sync(
            partial(
                turns.submit_turn,
                fabric,
                principal,
                conversation_id,
                body.input,
                idempotency_key=effect_key(request),
                double_texting=body.double_texting,
            )
        )
    except InvalidInput as exc:
        raise in_body(exc) from exc
    location = f"/v1/turns/{turn.id}"
    if sse.wants_stream(request):
        request.state.idempotency_replay = EventReplay(resource_id=run.id)
        return sse.stream(
            fabric,
            principal.tenant_id,
            run.id,
            after=0,
            heartbeat=settings.api_sse_heartbeat_seconds,
            headers={"Location": location, "Keel-Turn-Id": turn.id},
        )
    return JSONResponse(
        TurnPublic.from_view(turn).model_dump(mode="json"),
        status_code=status.HTTP_202_ACCEPTED,
        headers={"Location": location},
    )


@router.get(
    "/v1/turns/{turn_id}",
    summary="Get a turn with its run's status, output and usage",
    responses=problem_responses(401, 403, 404, 422, 429),
)
def get_turn(turn_id: TurnId, principal: ConversationsRead, db: DbDep) -> TurnPublic:
    return TurnPublic.from_view(turns.get_turn(db, principal, turn_id))


@router.get(
    "/v1/turns/{turn_id}/events",
    response_model=None,
    summary="Follow a turn's events (SSE; reconnect with Last-Event-ID)",
    responses={200: EVENT_STREAM, **problem_responses(401, 403, 404, 422, 429, 503)},
)
async def turn_events(
    turn_id: TurnId,
    request: Request,
    principal: ConversationsRead,
    fabric: FabricDep,
    settings: SettingsDep,
    after: After = None,
    last_event_id: LastEventIdHeader = None,
) -> Response:
    start = sse.resume_point(request, after)
    turn = await anyio.to_thread.run_sync(turns.get_turn, fabric.db, principal, turn_id)
    if turn.run_id is None:
        raise InvalidInput(f"turn {turn_id} has no run to follow", field="path.turn_id")
    return sse.stream(
        fabric,
        principal.tenant_id,
        turn.run_id,
        after=start,
        heartbeat=settings.api_sse_heartbeat_seconds,
        headers={"Keel-Turn-Id": turn.id},
    )


@router.post(
    "/v1/conversations/{conversation_id}/turns/{turn_id}/cancel",
    summary="Cancel a turn (its partial answer and usage are kept)",
    responses=problem_responses(401, 403, 404, 409, 413, 422, 429, 503),
)
def cancel_turn(
    conversation_id: ConversationId,
    turn_id: TurnId,
    principal: TurnsWrite,
    fabric: FabricDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> TurnPublic:
    return TurnPublic.from_view(turns.cancel_turn(fabric, principal, conversation_id, turn_id))

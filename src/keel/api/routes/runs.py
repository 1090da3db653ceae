"""Runs: one-shot typed calls of an agent (`POST /v1/agents/{name}/runs`, optionally waiting
for the result), reading a run, following its events (SSE), cancelling and re-driving it."""

from __future__ import annotations

from functools import partial
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse

from keel.api import sse
from keel.api.deps import (
    FabricDep,
    IdempotencyKeyHeader,
    LastEventIdHeader,
    RunsRead,
    RunsWrite,
    SettingsDep,
)
from keel.api.idempotency import IdempotentRoute, effect_key
from keel.api.problems import in_body, problem_responses
from keel.api.routes.turns import EVENT_STREAM, After
from keel.api.schemas import AGENT_NAME_PATTERN, RunCreate, RunPublic
from keel.api.services.runs import visible_run
from keel.errors import InvalidInput, NotFound
from keel.fabric.runs import RunView

router = APIRouter(tags=["runs"], route_class=IdempotentRoute)

AgentName = Annotated[
    str, Path(max_length=100, pattern=AGENT_NAME_PATTERN, description="An agent's name.")
]
RunId = Annotated[str, Path(max_length=64, description="A `run_…` id.")]
MAX_WAIT_SECONDS = 120.0


@router.post(
    "/v1/agents/{name}/runs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=None,
    summary="Run an agent once (202, or 200 with its typed output when ?wait=true finishes)",
    responses={
        200: {"model": RunPublic, "description": "Finished within `timeout` (any end state)."},
        202: {
            "model": RunPublic,
            "description": "Queued, running or waiting for approval; follow `Location`.",
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
        **problem_responses(401, 403, 404, 409, 413, 422, 429, 503),
    },
)
async def submit_run(
    name: AgentName,
    body: RunCreate,
    request: Request,
    principal: RunsWrite,
    fabric: FabricDep,
    wait: Annotated[
        bool, Query(description="Wait (up to `timeout`) for the run to end or need approval.")
    ] = False,
    timeout: Annotated[
        float, Query(gt=0, le=MAX_WAIT_SECONDS, description="Seconds to wait with `wait=true`.")
    ] = 30.0,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    submit = partial(
        fabric.submit,
        principal,
        name,
        body.input,
        idempotency_key=effect_key(request),
        priority=body.priority,
        lane=body.lane,
        deadline=body.deadline,
        prompt=body.prompt,
    )
    try:
        view: RunView = await anyio.to_thread.run_sync(submit)
    except InvalidInput as exc:
        raise in_body(exc) from exc
    except NotFound as exc:
        if exc.kind == "prompt alias":
            raise InvalidInput(exc.message, field="body.prompt") from exc
        raise
    if wait:
        try:
            view = await fabric.wait(principal.tenant_id, view.id, timeout=timeout)
        except TimeoutError:
            view = await anyio.to_thread.run_sync(fabric.get, principal.tenant_id, view.id)
    ended = view.terminal
    return JSONResponse(
        RunPublic.from_view(view).model_dump(mode="json"),
        status_code=status.HTTP_200_OK if ended else status.HTTP_202_ACCEPTED,
        headers={"Location": f"/v1/runs/{view.id}"},
    )


@router.get(
    "/v1/runs/{run_id}",
    summary="Get a run with its status, output, usage and cost",
    responses=problem_responses(401, 403, 404, 422, 429, 503),
)
def get_run(run_id: RunId, principal: RunsRead, fabric: FabricDep) -> RunPublic:
    return RunPublic.from_view(visible_run(fabric, principal, run_id))


@router.get(
    "/v1/runs/{run_id}/events",
    response_model=None,
    summary="Follow a run's events (SSE; reconnect with Last-Event-ID)",
    responses={200: EVENT_STREAM, **problem_responses(401, 403, 404, 422, 429, 503)},
)
async def run_events(
    run_id: RunId,
    request: Request,
    principal: RunsRead,
    fabric: FabricDep,
    settings: SettingsDep,
    after: After = None,
    last_event_id: LastEventIdHeader = None,
) -> Response:
    start = sse.resume_point(request, after)
    await anyio.to_thread.run_sync(visible_run, fabric, principal, run_id)
    return sse.stream(
        fabric,
        principal.tenant_id,
        run_id,
        after=start,
        heartbeat=settings.api_sse_heartbeat_seconds,
    )


@router.post(
    "/v1/runs/{run_id}/cancel",
    summary="Cancel a run (its partial output and usage are kept)",
    responses=problem_responses(401, 403, 404, 409, 413, 422, 429, 503),
)
def cancel_run(
    run_id: RunId,
    principal: RunsWrite,
    fabric: FabricDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> RunPublic:
    visible_run(fabric, principal, run_id)
    return RunPublic.from_view(fabric.cancel(principal.tenant_id, run_id, actor=principal.user_id))


@router.post(
    "/v1/runs/{run_id}/redrive",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Re-run a failed or timed-out run from the step that failed",
    responses=problem_responses(401, 403, 404, 409, 413, 422, 429, 503),
)
def redrive_run(
    run_id: RunId,
    principal: RunsWrite,
    fabric: FabricDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> RunPublic:
    visible_run(fabric, principal, run_id)
    view = fabric.redrive(principal.tenant_id, run_id, actor=principal.user_id)
    return RunPublic.from_view(view)

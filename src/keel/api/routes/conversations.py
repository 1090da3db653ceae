"""`/v1/conversations`: open, list (cursor-paginated), read, replay turns, delete.

Submitting and cancelling turns: `keel.api.routes.turns`.

Handlers are plain `def`: FastAPI runs them in its threadpool, so the blocking database
calls in `keel.api.services` never stall the event loop.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from keel.api import pagination
from keel.api.deps import (
    AgentsDep,
    ConversationsRead,
    ConversationsWrite,
    DbDep,
    IdempotencyKeyHeader,
    OptionalFabricDep,
    SettingsDep,
)
from keel.api.idempotency import IdempotentRoute
from keel.api.problems import problem_responses
from keel.api.schemas import (
    ConversationCreate,
    ConversationPage,
    ConversationPublic,
    TurnList,
    TurnPublic,
)
from keel.api.services import conversations as service
from keel.errors import InvalidInput
from keel.fabric import turns

router = APIRouter(prefix="/v1/conversations", tags=["conversations"], route_class=IdempotentRoute)

ConversationId = Annotated[str, Path(max_length=64, description="A `conv_…` id.")]
CURSOR_KIND = "conversations"


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Open a conversation",
    responses=problem_responses(401, 403, 409, 413, 422, 429),
)
def create_conversation(
    body: ConversationCreate,
    principal: ConversationsWrite,
    db: DbDep,
    settings: SettingsDep,
    agents: AgentsDep,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> ConversationPublic:
    if not agents.exists(body.agent):
        raise InvalidInput(f"unknown agent {body.agent!r}", field="body.agent")
    row = service.create_conversation(
        db,
        principal,
        body.agent,
        body.metadata,
        metadata_max_bytes=settings.api_metadata_max_bytes,
    )
    response.headers["Location"] = f"/v1/conversations/{row.id}"
    return ConversationPublic.from_row(row)


@router.get(
    "",
    summary="List conversations, newest first",
    responses=problem_responses(401, 403, 422, 429),
)
def list_conversations(
    principal: ConversationsRead,
    db: DbDep,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=pagination.MAX_LIMIT)] = pagination.DEFAULT_LIMIT,
) -> ConversationPage:
    after = pagination.decode_cursor(CURSOR_KIND, cursor) if cursor else None
    rows, has_more = service.list_conversations(db, principal, limit=limit, after=after)
    next_cursor = None
    if has_more and rows:
        last = rows[-1]
        next_cursor = pagination.encode_cursor(
            CURSOR_KIND, pagination.Position(last.created_at, last.id)
        )
    return ConversationPage(
        data=[ConversationPublic.from_row(r) for r in rows],
        next_cursor=next_cursor,
        has_more=has_more,
    )


@router.get(
    "/{conversation_id}",
    summary="Get a conversation",
    responses=problem_responses(401, 403, 404, 422, 429),
)
def get_conversation(
    conversation_id: ConversationId, principal: ConversationsRead, db: DbDep
) -> ConversationPublic:
    return ConversationPublic.from_row(service.get_conversation(db, principal, conversation_id))


@router.get(
    "/{conversation_id}/turns",
    summary="Replay every turn of a conversation, oldest first",
    responses=problem_responses(401, 403, 404, 422, 429),
)
def list_turns(
    conversation_id: ConversationId, principal: ConversationsRead, db: DbDep
) -> TurnList:
    listed = turns.list_turns(db, principal, conversation_id)
    return TurnList(data=[TurnPublic.from_view(t) for t in listed])


@router.delete(
    "/{conversation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a conversation (afterwards 404 everywhere); its unfinished turns are "
    "cancelled, their partial answers kept",
    responses=problem_responses(401, 403, 404, 422, 429),
)
def delete_conversation(
    conversation_id: ConversationId,
    principal: ConversationsWrite,
    db: DbDep,
    fabric: OptionalFabricDep,
) -> None:
    turns.delete_conversation(db, principal, conversation_id, fabric)

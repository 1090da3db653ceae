"""`/v1/turns/{turn_id}/feedback`: thumbs up/down plus text, one per user per turn."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from keel.api.deps import ConversationsRead, ConversationsWrite, DbDep, IdempotencyKeyHeader
from keel.api.idempotency import IdempotentRoute
from keel.api.problems import problem_responses
from keel.api.schemas import FeedbackCreate, FeedbackPublic
from keel.api.services import feedback as service

router = APIRouter(prefix="/v1/turns", tags=["feedback"], route_class=IdempotentRoute)

TurnId = Annotated[str, Path(max_length=64, description="A `turn_…` id.")]


@router.post(
    "/{turn_id}/feedback",
    status_code=status.HTTP_201_CREATED,
    summary="Give feedback on a turn (a second POST updates it)",
    responses={
        200: {"model": FeedbackPublic, "description": "Your earlier feedback, updated."},
        201: {"description": "Feedback recorded."},
        **problem_responses(401, 403, 404, 409, 413, 422, 429),
    },
)
def put_feedback(
    turn_id: TurnId,
    body: FeedbackCreate,
    principal: ConversationsWrite,
    db: DbDep,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> FeedbackPublic:
    row, created = service.put_feedback(db, principal, turn_id, body.rating, body.text)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return FeedbackPublic.from_row(row)


@router.get(
    "/{turn_id}/feedback",
    summary="Your feedback on a turn",
    responses=problem_responses(401, 403, 404, 422, 429),
)
def get_feedback(turn_id: TurnId, principal: ConversationsRead, db: DbDep) -> FeedbackPublic:
    return FeedbackPublic.from_row(service.get_feedback(db, principal, turn_id))

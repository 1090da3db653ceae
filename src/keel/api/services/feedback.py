"""Feedback on a turn: one per user per turn; a second submission updates the first.

A turn is reachable only through a conversation the principal may see, so feedback on
another tenant's or user's turn is `NotFound`.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from keel.api.services.conversations import visible_to
from keel.errors import NotFound
from keel.identity.principal import Principal
from keel.ids import new_id
from keel.store.database import Database
from keel.store.tables import Conversation, Feedback, Turn
from keel.store.types import utcnow


def _require_turn(db: Database, principal: Principal, turn_id: str) -> None:
    with db.transaction() as s:
        found = s.scalars(
            select(Turn.id)
            .join(Conversation, Conversation.id == Turn.conversation_id)
            .where(Turn.id == turn_id, Turn.tenant_id == principal.tenant_id, visible_to(principal))
        ).first()
    if found is None:
        raise NotFound("turn", turn_id)


def put_feedback(
    db: Database, principal: Principal, turn_id: str, rating: str, text: str
) -> tuple[Feedback, bool]:
    """Create or update the caller's feedback; returns (feedback, created)."""
    _require_turn(db, principal, turn_id)
    for _ in range(3):
        updated = _update(db, principal, turn_id, rating, text)
        if updated is not None:
            return updated, False
        now = utcnow()
        row = Feedback(
            id=new_id("fb"),
            turn_id=turn_id,
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            rating=rating,
            text=text,
            created_at=now,
            updated_at=now,
        )
        try:
            with db.transaction() as s:
                s.add(row)
            return row, True
        except IntegrityError:
            continue  # a concurrent first submission won; update it instead
    raise NotFound("turn", turn_id)


def _update(
    db: Database, principal: Principal, turn_id: str, rating: str, text: str
) -> Feedback | None:
    with db.transaction() as s:
        row = s.scalars(
            select(Feedback).where(
                Feedback.turn_id == turn_id,
                Feedback.user_id == principal.user_id,
                Feedback.tenant_id == principal.tenant_id,
            )
        ).first()
        if row is None:
            return None
        row.rating = rating
        row.text = text
        row.updated_at = utcnow()
        return row


def get_feedback(db: Database, principal: Principal, turn_id: str) -> Feedback:
    """The caller's own feedback on a turn."""
    _require_turn(db, principal, turn_id)
    with db.transaction() as s:
        row = s.scalars(
            select(Feedback).where(
                Feedback.turn_id == turn_id,
                Feedback.user_id == principal.user_id,
                Feedback.tenant_id == principal.tenant_id,
            )
        ).first()
    if row is None:
        raise NotFound("feedback on turn", turn_id)
    return row

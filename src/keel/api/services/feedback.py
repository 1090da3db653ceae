"""Feedback on a turn: one per user per turn; a second submission updates the first.

A turn is reachable only through a conversation the principal may see, so feedback on
another tenant's or user's turn is `NotFound`.
"""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from keel.errors import Conflict, NotFound
from keel.fabric.turns import visible_to
from keel.identity.principal import Principal
from keel.ids import new_id
from keel.store.database import Database
from keel.store.tables import Conversation, Feedback, Turn
from keel.store.types import utcnow


def _turn_is_visible(s: Session, principal: Principal, turn_id: str) -> bool:
    found = s.scalars(
        select(Turn.id)
        .join(Conversation, Conversation.id == Turn.conversation_id)
        .where(Turn.id == turn_id, Turn.tenant_id == principal.tenant_id, visible_to(principal))
    ).first()
    return found is not None


def _own(principal: Principal, turn_id: str) -> Select[Feedback]:
    return select(Feedback).where(
        Feedback.turn_id == turn_id,
        Feedback.user_id == principal.user_id,
        Feedback.tenant_id == principal.tenant_id,
    )


def put_feedback(
    db: Database, principal: Principal, turn_id: str, rating: str, text: str
) -> tuple[Feedback, bool]:
    """Create or update the caller's feedback in one transaction; returns (feedback, created).

    Two first submissions racing both try the insert; the loser's unique violation rolls
    its transaction back and its retry updates the winner's row.
    """
    for _ in range(3):
        try:
            with db.transaction() as s:
                if not _turn_is_visible(s, principal, turn_id):
                    raise NotFound("turn", turn_id)
                now = utcnow()
                row = s.scalars(_own(principal, turn_id)).first()
                if row is not None:
                    row.rating, row.text, row.updated_at = rating, text, now
                    return row, False
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
                s.add(row)
                s.flush()
                return row, True
        except IntegrityError:
            continue
    raise Conflict("feedback changed concurrently; retry")


def get_feedback(db: Database, principal: Principal, turn_id: str) -> Feedback:
    """The caller's own feedback on a turn."""
    with db.transaction() as s:
        if not _turn_is_visible(s, principal, turn_id):
            raise NotFound("turn", turn_id)
        row = s.scalars(_own(principal, turn_id)).first()
    if row is None:
        raise NotFound("feedback on turn", turn_id)
    return row

"""Conversations as the API lists, reads and opens them, always scoped to the caller.
Deleting is `keel.fabric.turns.delete_conversation` (it also cancels unfinished runs).

Turns are not written here: `keel.fabric.turns` is the one place a turn and its run are
created (in one transaction) and read back. Visibility is `keel.fabric.turns.visible_to`:
own conversations, or every conversation of the tenant with the `admin` scope; anything
else is `NotFound`.

Functions are blocking (SQLAlchemy sessions): routes call them from FastAPI's threadpool.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import and_, or_, select

from keel.api.pagination import Position
from keel.errors import InvalidInput, NotFound
from keel.fabric.turns import open_conversation, visible_to
from keel.identity.principal import Principal
from keel.store.database import Database
from keel.store.tables import Conversation


def create_conversation(
    db: Database,
    principal: Principal,
    agent: str,
    metadata: dict[str, Any],
    *,
    metadata_max_bytes: int,
) -> Conversation:
    """Open a conversation; the route has checked that AGENT exists."""
    size = len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())
    if size > metadata_max_bytes:
        raise InvalidInput(
            f"metadata is {size} bytes serialised; the limit is {metadata_max_bytes}",
            field="body.metadata",
        )
    return open_conversation(db, principal, agent, metadata)


def list_conversations(
    db: Database, principal: Principal, *, limit: int, after: Position | None = None
) -> tuple[list[Conversation], bool]:
    """Up to `limit` conversations newest first (created_at, id), starting after `after`."""
    query = select(Conversation).where(visible_to(principal))
    if after is not None:
        query = query.where(
            or_(
                Conversation.created_at < after.created_at,
                and_(Conversation.created_at == after.created_at, Conversation.id < after.id),
            )
        )
    query = query.order_by(Conversation.created_at.desc(), Conversation.id.desc()).limit(limit + 1)
    with db.transaction() as s:
        rows = list(s.scalars(query))
    return rows[:limit], len(rows) > limit


def get_conversation(db: Database, principal: Principal, conversation_id: str) -> Conversation:
    with db.transaction() as s:
        row = s.scalars(
            select(Conversation).where(Conversation.id == conversation_id, visible_to(principal))
        ).first()
    if row is None:
        raise NotFound("conversation", conversation_id)
    return row

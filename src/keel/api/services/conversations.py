"""Conversations and their turns, always scoped to the calling `Principal`.

Visibility: a principal sees its own conversations in its own tenant; one holding the
`admin` scope sees every conversation of its tenant. Anything else — another tenant's,
another user's, a deleted one — is `NotFound`, never Forbidden, so ids leak nothing.

Functions are blocking (SQLAlchemy sessions): routes call them from FastAPI's threadpool.
`append_turn` and `complete_turn` are the building blocks turn submission reuses.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update

from keel.api.pagination import Position
from keel.errors import InvalidInput, NotFound
from keel.identity import scopes
from keel.identity.principal import Principal
from keel.ids import new_id
from keel.store.database import Database
from keel.store.tables import Conversation, Turn
from keel.store.types import utcnow

TITLE_MAX = 80
PREVIEW_MAX = 200


def visible_to(principal: Principal) -> ColumnElement[bool]:
    """The filter every conversation query carries: tenant, not deleted, own unless admin."""
    conditions = [
        Conversation.tenant_id == principal.tenant_id,
        Conversation.deleted_at.is_(None),
    ]
    if not principal.has_scope(scopes.ADMIN):
        conditions.append(Conversation.user_id == principal.user_id)
    return and_(*conditions)


def shorten(text: str, limit: int) -> str:
    """Whitespace collapsed, cut at a word boundary with an ellipsis when too long."""
    flat = re.sub(r"\s+", " ", text).strip()
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip() + "…"


def text_of(payload: dict[str, Any] | None) -> str:
    """The human text of a turn input/output (`text`, `message` or `content`), or ''."""
    if not payload:
        return ""
    for name in ("text", "message", "content"):
        value = payload.get(name)
        if isinstance(value, str):
            return value
    return ""


def create_conversation(
    db: Database,
    principal: Principal,
    agent: str,
    metadata: dict[str, Any],
    *,
    metadata_max_bytes: int,
) -> Conversation:
    size = len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())
    if size > metadata_max_bytes:
        raise InvalidInput(
            f"metadata is {size} bytes serialised; the limit is {metadata_max_bytes}",
            field="body.metadata",
        )
    now = utcnow()
    row = Conversation(
        id=new_id("conv"),
        tenant_id=principal.tenant_id,
        user_id=principal.user_id,
        agent=agent,
        meta=metadata,
        turn_count=0,
        created_at=now,
        updated_at=now,
    )
    with db.transaction() as s:
        s.add(row)
    return row


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


def list_turns(db: Database, principal: Principal, conversation_id: str) -> list[Turn]:
    """Every turn, oldest first; NotFound when the conversation is not visible."""
    with db.transaction() as s:
        visible = s.scalars(
            select(Conversation.id).where(Conversation.id == conversation_id, visible_to(principal))
        ).first()
        if visible is None:
            raise NotFound("conversation", conversation_id)
        return list(
            s.scalars(
                select(Turn).where(Turn.conversation_id == conversation_id).order_by(Turn.index)
            )
        )


def delete_conversation(db: Database, principal: Principal, conversation_id: str) -> None:
    """Soft delete: afterwards the conversation and its turns are NotFound everywhere."""
    with db.transaction() as s:
        result = s.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id, visible_to(principal))
            .values(deleted_at=utcnow())
        )
        if getattr(result, "rowcount", 0) != 1:
            raise NotFound("conversation", conversation_id)


def append_turn(
    db: Database,
    principal: Principal,
    conversation_id: str,
    turn_input: dict[str, Any],
    *,
    run_id: str | None = None,
) -> Turn:
    """Add the next turn (index = previous count) in one transaction.

    The counter is bumped with an UPDATE … RETURNING first, which takes the row's write
    lock on both SQLite and PostgreSQL, so concurrent appends get distinct indexes. The
    first turn names the conversation (`title`); every turn refreshes `preview`.
    """
    now = utcnow()
    text = text_of(turn_input)
    with db.transaction() as s:
        bumped = s.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id, visible_to(principal))
            .values(turn_count=Conversation.turn_count + 1, updated_at=now)
            .returning(Conversation.turn_count, Conversation.title)
        ).first()
        if bumped is None:
            raise NotFound("conversation", conversation_id)
        count, title = bumped
        values: dict[str, Any] = {"preview": shorten(text, PREVIEW_MAX) or None}
        if title is None and text:
            values["title"] = shorten(text, TITLE_MAX)
        s.execute(update(Conversation).where(Conversation.id == conversation_id).values(**values))
        turn = Turn(
            id=new_id("turn"),
            conversation_id=conversation_id,
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            index=count - 1,
            input=turn_input,
            status="queued",
            run_id=run_id,
            created_at=now,
        )
        s.add(turn)
    return turn


def complete_turn(
    db: Database, tenant_id: str, turn_id: str, output: dict[str, Any], status: str = "completed"
) -> Turn:
    """Record a turn's output; the conversation preview becomes the answer's text."""
    now = utcnow()
    with db.transaction() as s:
        turn = s.scalars(
            select(Turn).where(Turn.id == turn_id, Turn.tenant_id == tenant_id)
        ).first()
        if turn is None:
            raise NotFound("turn", turn_id)
        turn.output = output
        turn.status = status
        turn.completed_at = now
        text = text_of(output)
        values: dict[str, Any] = {"updated_at": now}
        if text:
            values["preview"] = shorten(text, PREVIEW_MAX)
        s.execute(
            update(Conversation).where(Conversation.id == turn.conversation_id).values(**values)
        )
    return turn

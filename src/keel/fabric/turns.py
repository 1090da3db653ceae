"""Conversations and their turns: the one place a conversation is opened and a turn is written.

A turn is a run of the conversation's agent over the conversation's history. The `Turn` row,
its `Run` and the run's durable workflow are created in ONE transaction (`submit_turn`), so
there is never a turn without a run, nor a run without its turn.

Visibility (`visible_to`): a principal sees its own conversations in its own tenant; one
holding the `admin` scope sees every conversation of its tenant. Anything else — another
tenant's, another user's, a deleted one — is `NotFound`, never Forbidden, so ids leak
nothing. Only the owner may add a turn (a turn speaks as its user over that user's history);
reading and cancelling follow `visible_to`.

Double texting (a new turn while earlier ones have not ended), per agent (`double_texting` in
agent.yaml) or per request: `reject` answers Conflict, `enqueue` (the default) queues the new
turn behind the newest unfinished one (its run waits on `after_run_id`), `interrupt` cancels
every unfinished turn first. The check and the insert happen under the conversation's lock,
so two concurrent submissions cannot both believe the conversation idle.

Deleting a conversation is a soft delete that also cancels its unfinished runs (their partial
answers and usage kept), so nothing goes on spending for a conversation nobody can see.

Reads take a `Database` (no runtime needed); writes take the `Fabric`.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from keel.errors import Conflict, NotFound
from keel.fabric.catalog import PreparedRun
from keel.fabric.runs import RunView
from keel.fabric.service import Fabric, request_hash
from keel.fabric.states import TERMINAL, RunStatus
from keel.identity import scopes
from keel.identity.principal import Principal
from keel.ids import new_id
from keel.store.database import Database
from keel.store.tables import Conversation, Run, Turn
from keel.store.types import utcnow

DoubleTexting = Literal["reject", "enqueue", "interrupt"]
DOUBLE_TEXTING_POLICIES: tuple[DoubleTexting, ...] = ("reject", "enqueue", "interrupt")
TITLE_MAX = 80
PREVIEW_MAX = 200
UNFINISHED = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING_APPROVAL)
_ATTEMPTS = 5


@dataclass(frozen=True)
class TurnView:
    """A turn as callers see it. `status`, `output`, `usage`, `cost_usd` and `error` are its
    run's (live while it runs; a cancelled turn keeps its partial output and usage)."""

    id: str
    conversation_id: str
    user_id: str
    index: int
    input: dict[str, Any]
    output: dict[str, Any] | None
    status: str
    run_id: str | None
    usage: dict[str, Any]
    cost_usd: float
    error: dict[str, Any] | None
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def of(cls, t: Turn, run: Run | None = None) -> TurnView:
        output = run.output if run is not None else t.output
        return cls(
            id=t.id,
            conversation_id=t.conversation_id,
            user_id=t.user_id,
            index=t.index,
            input=dict(t.input),
            output=dict(output) if output is not None else None,
            status=run.status if run is not None else t.status,
            run_id=t.run_id,
            usage=dict(run.usage or {}) if run is not None else {},
            cost_usd=float(run.cost_usd or 0.0) if run is not None else 0.0,
            error=dict(run.error) if run is not None and run.error is not None else None,
            created_at=t.created_at,
            completed_at=(run.finished_at if run is not None else None) or t.completed_at,
        )


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


def input_text(run_input: dict[str, Any] | None) -> str:
    """The human text of a turn's input: `question`, `text`, `message` or `content`, else the
    first string value, else ''."""
    if not run_input:
        return ""
    for name in ("question", "text", "message", "content"):
        value = run_input.get(name)
        if isinstance(value, str):
            return value
    return next((v for v in run_input.values() if isinstance(v, str)), "")


# --- conversations --------------------------------------------------------------------------


def open_conversation(
    db: Database, principal: Principal, agent: str, meta: dict[str, Any] | None = None
) -> Conversation:
    """Insert a conversation owned by PRINCIPAL. The caller has checked that AGENT exists."""
    now = utcnow()
    row = Conversation(
        id=new_id("conv"),
        tenant_id=principal.tenant_id,
        user_id=principal.user_id,
        agent=agent,
        meta=meta or {},
        turn_count=0,
        created_at=now,
        updated_at=now,
    )
    with db.transaction() as s:
        s.add(row)
    return row


def create_conversation(
    fabric: Fabric, principal: Principal, agent: str, meta: dict[str, Any] | None = None
) -> str:
    """Open a conversation with a deployed AGENT (NotFound otherwise); returns its id."""
    fabric.catalog.get(agent)
    return open_conversation(fabric.db, principal, agent, meta).id


def _owned(s: Session, principal: Principal, conversation_id: str, *, lock: bool) -> Conversation:
    query = select(Conversation).where(
        Conversation.id == conversation_id,
        Conversation.tenant_id == principal.tenant_id,
        Conversation.user_id == principal.user_id,
        Conversation.deleted_at.is_(None),
    )
    row = s.scalars(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound("conversation", conversation_id)
    return row


# --- submitting -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Interrupt:
    """The conversation has unfinished runs the `interrupt` policy must cancel first."""

    run_ids: tuple[str, ...]


def submit_turn(
    fabric: Fabric,
    principal: Principal,
    conversation_id: str,
    run_input: dict[str, Any],
    *,
    idempotency_key: str | None = None,
    double_texting: DoubleTexting | None = None,
) -> tuple[TurnView, RunView]:
    """Record a turn and queue its run, atomically. The same IDEMPOTENCY_KEY (per tenant)
    returns the first turn and run; with another request it is `IdempotencyMismatch`.
    Raises InvalidInput naming `input.<field>` when RUN_INPUT does not fit the agent."""
    with fabric.db.transaction() as s:
        agent = _owned(s, principal, conversation_id, lock=False).agent
    digest = request_hash(agent, dict(run_input), None, conversation_id)
    if idempotency_key is not None:
        found = _by_key(fabric, principal, idempotency_key, digest)
        if found is not None:
            return found
    policy = double_texting or fabric.catalog.get(agent).spec.double_texting
    prepared = fabric.catalog.prepare(
        agent, run_input, user_id=principal.user_id, router=fabric.extensions.prompt_router
    )
    for attempt in range(_ATTEMPTS):
        try:
            outcome = _insert_turn(
                fabric, principal, conversation_id, prepared, idempotency_key, digest, policy
            )
        except IntegrityError:
            # a concurrent submission with the same key won the insert
            if idempotency_key is not None:
                found = _by_key(fabric, principal, idempotency_key, digest)
                if found is not None:
                    return found
            if attempt == _ATTEMPTS - 1:
                raise
            continue
        if isinstance(outcome, _Interrupt):
            for run_id in outcome.run_ids:
                with contextlib.suppress(Conflict):  # it ended meanwhile
                    fabric.cancel(
                        principal.tenant_id, run_id, actor=f"interrupted by {principal.user_id}"
                    )
            continue
        turn, run_id = outcome
        fabric.notifier.published(run_id)
        return turn, fabric.get(principal.tenant_id, run_id)
    raise Conflict(f"conversation {conversation_id} kept receiving turns; retry")


def _by_key(
    fabric: Fabric, principal: Principal, key: str, digest: str
) -> tuple[TurnView, RunView] | None:
    existing = fabric._by_key(principal.tenant_id, key, digest)
    if existing is None or existing.turn_id is None:
        return None
    return get_turn(fabric.db, principal, existing.turn_id), existing


def _insert_turn(
    fabric: Fabric,
    principal: Principal,
    conversation_id: str,
    prepared: PreparedRun,
    idempotency_key: str | None,
    digest: str,
    policy: DoubleTexting,
) -> tuple[TurnView, str] | _Interrupt:
    now = utcnow()
    with fabric.db.transaction(lock=True) as s:
        conv = _owned(s, principal, conversation_id, lock=True)
        unfinished = list(
            s.scalars(
                select(Run.id)
                .where(Run.conversation_id == conversation_id, Run.status.in_(UNFINISHED))
                .order_by(Run.created_at, Run.id)
            )
        )
        after: str | None = None
        if unfinished:
            if policy == "reject":
                raise Conflict(
                    f"conversation {conversation_id} has a turn in progress (run "
                    f"{unfinished[-1]}); wait for it, cancel it, or use double_texting "
                    "'enqueue' or 'interrupt'"
                )
            if policy == "interrupt":
                return _Interrupt(tuple(unfinished))
            after = unfinished[-1]
        index = int(
            s.scalar(select(func.count(Turn.id)).where(Turn.conversation_id == conversation_id))
            or 0
        )
        turn = Turn(
            id=new_id("turn"),
            conversation_id=conversation_id,
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            index=index,
            input=prepared.input,
            status=RunStatus.QUEUED,
            created_at=now,
        )
        s.add(turn)
        s.flush()
        run = fabric.insert_run(
            s, principal, prepared, idempotency_key=idempotency_key, digest=digest, priority=5,
            lane="interactive", deadline=None, parent_run_id=None, conversation_id=conversation_id,
            turn_id=turn.id, after_run_id=after,
        )  # fmt: skip
        turn.run_id = run.id
        text = input_text(prepared.input)
        if not conv.title and text:
            conv.title = shorten(text, TITLE_MAX)
        if text:
            conv.preview = shorten(text, PREVIEW_MAX)
        conv.turn_count = index + 1
        conv.updated_at = now
        s.flush()
        return TurnView.of(turn, run), run.id


# --- reading and cancelling -----------------------------------------------------------------


def _visible_turn(s: Session, principal: Principal, turn_id: str) -> tuple[Turn, Run | None]:
    row = s.execute(
        select(Turn, Run)
        .join(Conversation, Conversation.id == Turn.conversation_id)
        .outerjoin(Run, Run.id == Turn.run_id)
        .where(Turn.id == turn_id, Turn.tenant_id == principal.tenant_id, visible_to(principal))
    ).first()
    if row is None:
        raise NotFound("turn", turn_id)
    return row[0], row[1]


def get_turn(db: Database, principal: Principal, turn_id: str) -> TurnView:
    """A turn of a conversation PRINCIPAL may see (NotFound otherwise)."""
    with db.transaction() as s:
        turn, run = _visible_turn(s, principal, turn_id)
        return TurnView.of(turn, run)


def list_turns(db: Database, principal: Principal, conversation_id: str) -> list[TurnView]:
    """Every turn of the conversation, oldest first (NotFound when it is not visible)."""
    with db.transaction() as s:
        visible = s.scalar(
            select(Conversation.id).where(Conversation.id == conversation_id, visible_to(principal))
        )
        if visible is None:
            raise NotFound("conversation", conversation_id)
        rows = s.execute(
            select(Turn, Run)
            .outerjoin(Run, Run.id == Turn.run_id)
            .where(Turn.conversation_id == conversation_id)
            .order_by(Turn.index)
        ).all()
        return [TurnView.of(turn, run) for turn, run in rows]


def cancel_turn(
    fabric: Fabric, principal: Principal, conversation_id: str, turn_id: str
) -> TurnView:
    """Cancel the turn's run: the partial answer and the usage so far stay on the turn.
    Cancelling a cancelled turn is a no-op; cancelling a finished one is a Conflict."""
    turn = get_turn(fabric.db, principal, turn_id)
    if turn.conversation_id != conversation_id or turn.run_id is None:
        raise NotFound("turn", turn_id)
    fabric.cancel(principal.tenant_id, turn.run_id, actor=principal.user_id)
    return get_turn(fabric.db, principal, turn_id)


def delete_conversation(
    db: Database, principal: Principal, conversation_id: str, fabric: Fabric | None = None
) -> int:
    """Soft-delete the conversation (afterwards NotFound everywhere), then cancel its unfinished
    runs through FABRIC (a process without a runtime only deletes). Returns how many runs were
    cancelled. A turn submitted concurrently either committed first (its run is found and
    cancelled here) or finds the conversation gone."""
    with db.transaction() as s:
        result = s.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id, visible_to(principal))
            .values(deleted_at=utcnow())
        )
        if getattr(result, "rowcount", 0) != 1:
            raise NotFound("conversation", conversation_id)
        unfinished = s.scalars(
            select(Run.id)
            .join(Turn, Turn.run_id == Run.id)
            .where(
                Turn.conversation_id == conversation_id,
                Run.tenant_id == principal.tenant_id,
                Run.status.not_in([str(t) for t in TERMINAL]),
            )
            .order_by(Turn.index.desc())
        ).all()
    if fabric is None:
        return 0
    cancelled = 0
    for run_id in unfinished:  # newest first: a queued follower never starts after its leader
        try:
            fabric.cancel(principal.tenant_id, run_id, actor=principal.user_id)
            cancelled += 1
        except (Conflict, NotFound):  # ended meanwhile
            continue
    return cancelled

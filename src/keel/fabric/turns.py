"""Conversation turns: a turn is a run of the conversation's agent with the conversation's
history, created together with its run in one transaction.

Double texting (a new turn while one is still running), per agent (`double_texting` in
agent.yaml) or per request: `reject` answers Conflict, `enqueue` (default) queues the new
turn behind the running one (its run waits on `after_run_id`), `interrupt` cancels the
running turn first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from keel.errors import Conflict, NotFound
from keel.fabric.catalog import PreparedRun
from keel.fabric.runs import RunView
from keel.fabric.service import Fabric, request_hash
from keel.fabric.states import RunStatus, is_terminal
from keel.identity.principal import Principal
from keel.ids import new_id
from keel.store.tables import Conversation, Run, Turn
from keel.store.types import utcnow

DoubleTexting = Literal["reject", "enqueue", "interrupt"]
TITLE_CHARS = 80


@dataclass(frozen=True)
class TurnView:
    id: str
    conversation_id: str
    index: int
    input: dict[str, Any]
    output: dict[str, Any] | None
    status: str
    run_id: str | None
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def of(cls, t: Turn) -> TurnView:
        return cls(t.id, t.conversation_id, t.index, dict(t.input),
                   dict(t.output) if t.output else None, t.status, t.run_id,
                   t.created_at, t.completed_at)  # fmt: skip


def title_from(run_input: dict[str, Any]) -> str:
    text = str(run_input.get("question") or next(iter(run_input.values()), "") or "")
    text = " ".join(text.split())
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1].rstrip() + "…"


def create_conversation(
    fabric: Fabric, principal: Principal, agent: str, meta: dict[str, Any] | None = None
) -> str:
    fabric.catalog.get(agent)
    conversation_id = new_id("conv")
    now = utcnow()
    with fabric.db.transaction() as s:
        s.add(
            Conversation(
                id=conversation_id,
                tenant_id=principal.tenant_id,
                user_id=principal.user_id,
                agent=agent,
                meta=meta or {},
                created_at=now,
                updated_at=now,
            )
        )
    return conversation_id


def _active_run(fabric: Fabric, conversation_id: str) -> RunView | None:
    with fabric.db.transaction() as s:
        run = s.scalars(
            select(Run)
            .where(Run.conversation_id == conversation_id)
            .order_by(Run.created_at.desc(), Run.id.desc())
            .limit(1)
        ).first()
        return RunView.of(run) if run is not None and not is_terminal(run.status) else None


def submit_turn(
    fabric: Fabric,
    principal: Principal,
    conversation_id: str,
    run_input: dict[str, Any],
    *,
    idempotency_key: str | None = None,
    double_texting: DoubleTexting | None = None,
) -> tuple[TurnView, RunView]:
    """Record a turn and queue its run. The same IDEMPOTENCY_KEY returns the first turn."""
    with fabric.db.transaction() as s:
        conv = s.get(Conversation, conversation_id)
        if (
            conv is None
            or conv.deleted_at is not None
            or conv.tenant_id != principal.tenant_id
            or conv.user_id != principal.user_id
        ):
            raise NotFound("conversation", conversation_id)
        agent = conv.agent
    digest = request_hash(agent, dict(run_input), None, conversation_id)
    if idempotency_key is not None:
        existing = fabric._by_key(principal.tenant_id, idempotency_key, digest)
        if existing is not None and existing.turn_id is not None:
            return get_turn(fabric, principal, existing.turn_id), existing
    policy = double_texting or fabric.catalog.get(agent).spec.double_texting
    active = _active_run(fabric, conversation_id)
    after: str | None = None
    if active is not None:
        if policy == "reject":
            raise Conflict(
                f"conversation {conversation_id} has a turn in progress (run {active.id})"
            )
        if policy == "interrupt":
            fabric.cancel(
                principal.tenant_id, active.id, actor=f"interrupted by {principal.user_id}"
            )
        else:
            after = active.id
    prepared = fabric.catalog.prepare(
        agent, run_input, user_id=principal.user_id, router=fabric.extensions.prompt_router
    )
    for attempt in range(3):
        try:
            turn_view, run_id = _insert_turn(
                fabric, principal, conversation_id, prepared, idempotency_key, digest, after
            )
            break
        except IntegrityError:
            if idempotency_key is not None:
                existing = fabric._by_key(principal.tenant_id, idempotency_key, digest)
                if existing is not None and existing.turn_id is not None:
                    return get_turn(fabric, principal, existing.turn_id), existing
            if attempt == 2:
                raise
    fabric.notifier.published(run_id)
    return turn_view, fabric.get(principal.tenant_id, run_id)


def _insert_turn(
    fabric: Fabric,
    principal: Principal,
    conversation_id: str,
    prepared: PreparedRun,
    idempotency_key: str | None,
    digest: str,
    after: str | None,
) -> tuple[TurnView, str]:
    now = utcnow()
    with fabric.db.transaction(lock=True) as s:
        conv = s.get(Conversation, conversation_id)
        assert conv is not None
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
        if not conv.title:
            conv.title = title_from(prepared.input)
        conv.turn_count = index + 1
        conv.updated_at = now
        return TurnView.of(turn), run.id


def get_turn(fabric: Fabric, principal: Principal, turn_id: str) -> TurnView:
    with fabric.db.transaction() as s:
        turn = s.get(Turn, turn_id)
        if (
            turn is None
            or turn.tenant_id != principal.tenant_id
            or turn.user_id != principal.user_id
        ):
            raise NotFound("turn", turn_id)
        conv = s.get(Conversation, turn.conversation_id)
        if conv is None or conv.deleted_at is not None:
            raise NotFound("turn", turn_id)
        return TurnView.of(turn)


def list_turns(fabric: Fabric, principal: Principal, conversation_id: str) -> list[TurnView]:
    with fabric.db.transaction() as s:
        conv = s.get(Conversation, conversation_id)
        if (
            conv is None
            or conv.deleted_at is not None
            or conv.tenant_id != principal.tenant_id
            or conv.user_id != principal.user_id
        ):
            raise NotFound("conversation", conversation_id)
        rows = s.scalars(
            select(Turn).where(Turn.conversation_id == conversation_id).order_by(Turn.index)
        )
        return [TurnView.of(t) for t in rows]

"""Conversation turns: history carried across turns, double texting policies."""

from __future__ import annotations

import pytest
from pydantic_ai.messages import ModelMessagesTypeAdapter

from keel.errors import Conflict, NotFound
from keel.fabric.service import Fabric
from keel.fabric.turns import create_conversation, list_turns, submit_turn
from keel.identity.principal import Principal
from keel.store.tables import Conversation
from tests.fabric.probe import effects

Q1 = {"question": "Which hospital projects in Stockholm start this year?", "locale": "sv"}
Q2 = {"question": "Which school projects in Malmö start next year?", "locale": "sv"}


async def test_turns_share_the_conversation_history(fabric: Fabric, alice: Principal) -> None:
    conv = create_conversation(fabric, alice, "rune", {"source": "test"})
    _, first = submit_turn(fabric, alice, conv, Q1)
    assert (await fabric.wait("t1", first.id, timeout=30)).status == "succeeded"
    _, second = submit_turn(fabric, alice, conv, Q2)
    assert (await fabric.wait("t1", second.id, timeout=30)).status == "succeeded"
    turns = list_turns(fabric.db, alice, conv)
    assert [t.index for t in turns] == [0, 1] and {t.status for t in turns} == {"succeeded"}
    with fabric.db.transaction() as s:
        row = s.get(Conversation, conv)
        assert row is not None and row.title == Q1["question"] and row.turn_count == 2
        messages = ModelMessagesTypeAdapter.validate_python(row.history["messages"])  # type: ignore[index]
    prompts = [p.content for m in messages for p in m.parts if p.part_kind == "user-prompt"]
    assert prompts == [Q1["question"], Q2["question"]]


async def test_a_second_turn_while_one_runs_is_enqueued_behind_it(
    fabric: Fabric, alice: Principal
) -> None:
    conv = create_conversation(fabric, alice, "slow")
    _, first = submit_turn(fabric, alice, conv, {"question": "wait for the first release"})
    _, second = submit_turn(fabric, alice, conv, {"question": "and then this"})
    assert second.after_run_id == first.id and fabric.get("t1", second.id).status == "queued"
    effects().set_switch(fabric.settings.home, "release", "1")
    assert (await fabric.wait("t1", first.id, timeout=30)).status == "succeeded"
    assert (await fabric.wait("t1", second.id, timeout=30)).status == "succeeded"
    first_done = fabric.get("t1", first.id).finished_at
    second_started = fabric.get("t1", second.id).started_at
    assert first_done is not None and second_started is not None and second_started >= first_done


async def test_reject_and_interrupt_policies(fabric: Fabric, alice: Principal) -> None:
    conv = create_conversation(fabric, alice, "slow")
    _, first = submit_turn(fabric, alice, conv, {"question": "hold on"})
    with pytest.raises(Conflict):
        submit_turn(fabric, alice, conv, {"question": "again"}, double_texting="reject")
    _, newer = submit_turn(fabric, alice, conv, {"question": "instead"}, double_texting="interrupt")
    assert fabric.get("t1", first.id).status == "cancelled"
    assert newer.after_run_id is None
    effects().set_switch(fabric.settings.home, "release", "1")
    assert (await fabric.wait("t1", newer.id, timeout=30)).status == "succeeded"


def test_turns_are_private_to_their_user(
    fabric: Fabric, alice: Principal, mallory: Principal
) -> None:
    conv = create_conversation(fabric, alice, "rune")
    with pytest.raises(NotFound):
        submit_turn(fabric, mallory, conv, Q1)
    colleague = Principal(tenant_id="t1", user_id="carol")
    with pytest.raises(NotFound):
        list_turns(fabric.db, colleague, conv)


def test_a_repeated_idempotency_key_returns_the_first_turn(
    fabric: Fabric, alice: Principal
) -> None:
    conv = create_conversation(fabric, alice, "rune")
    turn, run = submit_turn(fabric, alice, conv, Q1, idempotency_key="t-1")
    again, run_again = submit_turn(fabric, alice, conv, Q1, idempotency_key="t-1")
    assert (again.id, run_again.id) == (turn.id, run.id)
    assert len(list_turns(fabric.db, alice, conv)) == 1

"""Turns over an executing fabric, on SQLite and PostgreSQL: submit (202 or a stream),
validation naming `body.input.<field>`, replay, double texting, cancel, auth and scoping."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic_ai.messages import ModelResponse, TextPart

from keel.agents import offline
from keel.fabric.events import EventType
from keel.fabric.service import Fabric
from tests.api.conftest import Api, assert_problem, field_names, parse_frames
from tests.fabric.probe import effects

QUESTION = {"question": "Which hospital projects in Stockholm start this year?", "locale": "sv"}


def turns_url(conversation_id: str) -> str:
    return f"/v1/conversations/{conversation_id}/turns"


async def until(fabric: Fabric, run_id: str, event_type: str, tenant: str = "acme") -> None:
    """Follow the run until EVENT_TYPE was written (or the run ended)."""
    async for event in fabric.follow(tenant, run_id):
        if event.type == event_type:
            return


async def test_a_turn_is_accepted_with_its_run_and_location_then_answers(live: Api) -> None:
    assert live.fabric is not None
    conversation_id = await live.conversation()
    response = await live.client.post(
        turns_url(conversation_id), json={"input": QUESTION}, headers=live.headers()
    )
    assert response.status_code == 202, response.text
    turn = response.json()
    assert response.headers["location"] == f"/v1/turns/{turn['id']}"
    assert turn["id"].startswith("turn_") and turn["run_id"].startswith("run_")
    assert turn["status"] == "queued" and turn["index"] == 0 and turn["input"] == QUESTION
    done = await live.fabric.wait("acme", turn["run_id"], timeout=30)
    assert done.status == "succeeded"
    got = await live.client.get(response.headers["location"], headers=live.headers())
    assert got.status_code == 200
    body = got.json()
    assert body["status"] == "succeeded" and body["completed_at"] is not None
    assert body["output"]["type"] == "text" and "Stockholm" in body["output"]["text"]
    assert body["usage"]["requests"] >= 1 and body["usage"]["output_tokens"] > 0
    conversation = await live.client.get(
        f"/v1/conversations/{conversation_id}", headers=live.headers()
    )
    assert conversation.json()["title"] == QUESTION["question"]
    assert conversation.json()["turn_count"] == 1


async def test_a_streamed_turn_sends_every_event_of_its_run_in_order(live: Api) -> None:
    assert live.fabric is not None
    conversation_id = await live.conversation()
    response = await live.client.post(
        turns_url(conversation_id),
        json={"input": QUESTION},
        headers={**live.headers(), "Accept": "text/event-stream"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    turn_id = response.headers["keel-turn-id"]
    assert response.headers["location"] == f"/v1/turns/{turn_id}"
    frames = [f for f in parse_frames(response.text) if not f.comment]
    run_id = response.headers["keel-run-id"]
    stored = live.fabric.events("acme", run_id)
    assert (
        [int(f.id or 0) for f in frames]
        == [e.seq for e in stored]
        == list(range(1, len(stored) + 1))
    )
    assert [f.event for f in frames] == [e.type for e in stored]
    assert all(f.data is not None and f.data["type"] == f.event for f in frames)
    assert frames[-1].event == EventType.RUN_SUCCEEDED
    output = next(f for f in frames if f.event == EventType.OUTPUT)
    assert output.data is not None and "Stockholm" in output.data["data"]["text"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"input": {}}, "body.input.question"),
        ({"input": {"question": ["not", "text"]}}, "body.input.question"),
        ({}, "body.input"),
        ({"input": "hello"}, "body.input"),
        ({"input": QUESTION, "double_texting": "shout"}, "body.double_texting"),
        ({"input": QUESTION, "tenant_id": "t2"}, "body.tenant_id"),
        ({"input": {"question": ""}}, "body.input.question"),
        ({"input": {"question": "q" * 32_001}}, "body.input.question"),
        ({"input": {"question": "q", "locle": "sv"}}, "body.input.locle"),
    ],
)
async def test_invalid_turn_input_is_a_422_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    conversation_id = await api.conversation()
    response = await api.client.post(turns_url(conversation_id), json=body, headers=api.headers())
    assert_problem(response, 422, "invalid_input")
    assert field in field_names(response)
    listed = await api.client.get(turns_url(conversation_id), headers=api.headers())
    assert listed.json()["data"] == []  # nothing half-written


async def test_typed_agent_turn_input_errors_name_the_nested_field(api: Api) -> None:
    conversation_id = await api.conversation(agent="sales-card")
    response = await api.client.post(
        turns_url(conversation_id),
        json={"input": {"project_id": "P-1001", "role": "x"}},
        headers=api.headers(),
    )
    assert_problem(response, 422)
    assert field_names(response) == ["body.input.role"]


async def test_every_invalid_input_field_is_reported_at_once(api: Api) -> None:
    conversation_id = await api.conversation(agent="sales-card")
    response = await api.client.post(
        turns_url(conversation_id), json={"input": {"role": "x"}}, headers=api.headers()
    )
    assert_problem(response, 422, "invalid_input")
    assert field_names(response) == ["body.input.project_id", "body.input.role"]


async def test_the_conversation_replays_every_turn_with_status_and_output(live: Api) -> None:
    assert live.fabric is not None
    conversation_id = await live.conversation()
    ids = []
    for question in ("Which hospital projects in Stockholm start this year?", "And in Malmö?"):
        response = await live.client.post(
            turns_url(conversation_id),
            json={"input": {"question": question}},
            headers={**live.headers(), "Accept": "text/event-stream"},
        )
        ids.append(response.headers["keel-turn-id"])
    response = await live.client.get(turns_url(conversation_id), headers=live.headers())
    replay = response.json()["data"]
    assert [t["id"] for t in replay] == ids
    assert [t["index"] for t in replay] == [0, 1]
    assert [t["status"] for t in replay] == ["succeeded", "succeeded"]
    assert all(t["output"]["text"] and t["usage"]["requests"] >= 1 for t in replay)
    assert "Malmö" in replay[1]["output"]["text"]


async def test_double_texting_enqueues_by_default_rejects_or_interrupts_on_request(
    live: Api,
) -> None:
    assert live.fabric is not None
    conversation_id = await live.conversation(agent="slow")
    url = turns_url(conversation_id)
    first = (
        await live.client.post(url, json={"input": {"question": "a"}}, headers=live.headers())
    ).json()
    second = await live.client.post(url, json={"input": {"question": "b"}}, headers=live.headers())
    assert second.status_code == 202
    second_run = live.fabric.get("acme", second.json()["run_id"])
    assert second_run.after_run_id == first["run_id"] and second_run.status == "queued"

    rejected = await live.client.post(
        url, json={"input": {"question": "c"}, "double_texting": "reject"}, headers=live.headers()
    )
    assert "turn in progress" in assert_problem(rejected, 409, "conflict")["detail"]

    interrupting = await live.client.post(
        url,
        json={"input": {"question": "d"}, "double_texting": "interrupt"},
        headers=live.headers(),
    )
    assert interrupting.status_code == 202
    statuses = {t["input"]["question"]: t["status"] for t in (
        await live.client.get(url, headers=live.headers())
    ).json()["data"]}  # fmt: skip
    assert statuses["a"] == statuses["b"] == "cancelled"
    assert "c" not in statuses  # the rejected turn left nothing behind
    effects().set_switch(live.fabric.settings.home, "release", "1")
    done = await live.fabric.wait("acme", interrupting.json()["run_id"], timeout=30)
    assert done.status == "succeeded" and done.after_run_id is None


async def test_cancelling_a_turn_keeps_its_partial_answer_and_usage(
    live: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model says something before calling the (blocking) tool; cancelled there, the
    turn keeps that text as a partial answer and the usage of that model call."""
    assert live.fabric is not None
    real = offline.respond

    def thinking_aloud(messages: Any, info: Any) -> ModelResponse:
        response = real(messages, info)
        if any(p.part_kind == "tool-call" for p in response.parts):
            return ModelResponse(parts=[TextPart("Let me check the register."), *response.parts])
        return response

    monkeypatch.setattr(offline, "respond", thinking_aloud)
    conversation_id = await live.conversation(agent="slow")
    submitted = await live.client.post(
        turns_url(conversation_id), json={"input": {"question": "wait"}}, headers=live.headers()
    )
    turn = submitted.json()
    await until(live.fabric, turn["run_id"], EventType.TOOL_REQUESTED)
    cancel_url = f"{turns_url(conversation_id)}/{turn['id']}/cancel"
    response = await live.client.post(cancel_url, headers=live.headers())
    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["output"] == {
        "type": "text",
        "text": "Let me check the register.",
        "partial": True,
    }
    assert cancelled["usage"]["requests"] == 1 and cancelled["usage"]["output_tokens"] > 0
    again = await live.client.post(cancel_url, headers=live.headers())
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    effects().set_switch(live.fabric.settings.home, "release", "1")
    replay = (await live.client.get(turns_url(conversation_id), headers=live.headers())).json()
    assert replay["data"][0]["output"]["partial"] is True


async def test_cancelling_a_finished_turn_is_409_and_a_turn_of_another_conversation_404(
    live: Api,
) -> None:
    assert live.fabric is not None
    conversation_id = await live.conversation()
    other = await live.conversation()
    turn = (
        await live.client.post(
            turns_url(conversation_id), json={"input": QUESTION}, headers=live.headers()
        )
    ).json()
    await live.fabric.wait("acme", turn["run_id"], timeout=30)
    finished = await live.client.post(
        f"{turns_url(conversation_id)}/{turn['id']}/cancel", headers=live.headers()
    )
    assert_problem(finished, 409, "conflict")
    mismatched = await live.client.post(
        f"{turns_url(other)}/{turn['id']}/cancel", headers=live.headers()
    )
    assert_problem(mismatched, 404, "not_found")


async def test_a_repeated_key_replays_the_accepted_turn_and_a_changed_body_is_422(
    api: Api,
) -> None:
    conversation_id = await api.conversation()
    headers = {**api.headers(), "Idempotency-Key": "turn-1"}
    url = turns_url(conversation_id)
    first = await api.client.post(url, json={"input": QUESTION}, headers=headers)
    again = await api.client.post(url, json={"input": QUESTION}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    changed = await api.client.post(url, json={"input": {"question": "other"}}, headers=headers)
    assert_problem(changed, 422, "idempotency_mismatch")
    assert len((await api.client.get(url, headers=api.headers())).json()["data"]) == 1


async def test_turn_endpoints_need_credentials_and_the_right_scope(api: Api) -> None:
    conversation_id = await api.conversation()
    turn = api.turn(conversation_id, "hello")
    reader = api.headers(scopes=("conversations:read",))
    writer = api.headers(scopes=("conversations:write",))
    runs_only = api.headers(scopes=("runs:read", "runs:write"))
    posts = [
        (turns_url(conversation_id), {"input": QUESTION}),
        (f"{turns_url(conversation_id)}/{turn.id}/cancel", None),
    ]
    gets = [f"/v1/turns/{turn.id}", f"/v1/turns/{turn.id}/events", turns_url(conversation_id)]
    for url, body in posts:
        assert_problem(await api.client.post(url, json=body), 401, "unauthorized")
        for headers in (reader, runs_only):
            response = await api.client.post(url, json=body, headers=headers)
            assert "conversations:write" in assert_problem(response, 403, "forbidden")["detail"]
    for url in gets:
        assert_problem(await api.client.get(url), 401, "unauthorized")
        for headers in (writer, runs_only):
            response = await api.client.get(url, headers=headers)
            assert "conversations:read" in assert_problem(response, 403, "forbidden")["detail"]


async def test_turns_of_another_user_are_404_unless_admin_and_only_the_owner_adds_turns(
    api: Api,
) -> None:
    conversation_id = await api.conversation("acme", "anna")
    turn = api.turn(conversation_id, "hello")
    bob = api.headers("acme", "bob", ("conversations:read", "conversations:write"))
    admin = api.headers("acme", "root", ("admin", "conversations:read", "conversations:write"))
    assert_problem(await api.client.get(f"/v1/turns/{turn.id}", headers=bob), 404)
    assert (await api.client.get(f"/v1/turns/{turn.id}", headers=admin)).status_code == 200
    for headers in (bob, admin):
        response = await api.client.post(
            turns_url(conversation_id), json={"input": QUESTION}, headers=headers
        )
        assert_problem(response, 404, "not_found")


async def test_a_deleted_conversation_takes_no_turns_and_its_turns_are_gone(api: Api) -> None:
    conversation_id = await api.conversation()
    turn = api.turn(conversation_id, "hello")
    await api.client.delete(f"/v1/conversations/{conversation_id}", headers=api.headers())
    submit = await api.client.post(
        turns_url(conversation_id), json={"input": QUESTION}, headers=api.headers()
    )
    assert_problem(submit, 404)
    for url in (f"/v1/turns/{turn.id}", f"/v1/turns/{turn.id}/events"):
        assert_problem(await api.client.get(url, headers=api.headers()), 404)


async def test_deleting_a_conversation_cancels_its_unfinished_turns(live: Api) -> None:
    """A running turn and the one queued behind it stop when their conversation is deleted:
    nothing goes on spending for a conversation nobody can see any more."""
    assert live.fabric is not None
    conversation_id = await live.conversation(agent="slow")
    url = turns_url(conversation_id)
    first = (
        await live.client.post(url, json={"input": {"question": "a"}}, headers=live.headers())
    ).json()
    second = (
        await live.client.post(url, json={"input": {"question": "b"}}, headers=live.headers())
    ).json()
    await until(live.fabric, first["run_id"], EventType.TOOL_REQUESTED)
    deleted = await live.client.delete(
        f"/v1/conversations/{conversation_id}", headers=live.headers()
    )
    assert deleted.status_code == 204
    for run_id in (first["run_id"], second["run_id"]):
        run = live.fabric.get("acme", run_id)
        assert run.status == "cancelled", run
    effects().set_switch(live.fabric.settings.home, "release", "1")
    assert live.fabric.get("acme", second["run_id"]).started_at is None
    assert_problem(
        await live.client.delete(f"/v1/conversations/{conversation_id}", headers=live.headers()),
        404,
    )


async def test_an_app_without_a_runtime_answers_503_for_turn_submission(
    db: Any, tmp_path: Any
) -> None:
    from tests.api.conftest import build_app, client_for, make_settings

    app = build_app(db, make_settings(tmp_path))
    async with client_for(app) as client:
        api = Api(app, client, db)
        conversation_id = await api.conversation()
        response = await client.post(
            turns_url(conversation_id), json={"input": QUESTION}, headers=api.headers()
        )
        assert "no runtime" in assert_problem(response, 503, "unavailable")["detail"]

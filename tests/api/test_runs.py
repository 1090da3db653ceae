"""Runs over an executing fabric, on SQLite and PostgreSQL: one-shot typed output (waiting
or 202), reading, events, cancel, re-drive, validation, auth and scoping."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from keel.fabric.events import EventType
from tests.api.conftest import Api, assert_problem, field_names, parse_frames
from tests.fabric.probe import effects

CARD = {"project_id": "P-1001", "role": "electrician", "locale": "sv"}


async def test_a_waited_run_returns_its_typed_output_valid_against_the_agent_schema(
    live: Api,
) -> None:
    response = await live.client.post(
        "/v1/agents/sales-card/runs?wait=true", json={"input": CARD}, headers=live.headers()
    )
    assert response.status_code == 200, response.text
    run = response.json()
    assert response.headers["location"] == f"/v1/runs/{run['id']}"
    assert run["status"] == "succeeded" and run["agent"] == "sales-card"
    assert run["input"] == CARD and run["output"]["type"] == "object"
    agent = (await live.client.get("/v1/agents/sales-card", headers=live.headers())).json()
    jsonschema.validate(run["output"]["data"], agent["output_schema"])
    assert run["output"]["data"]["language"] == "sv"
    assert run["prompt_name"] == "sales-card" and run["prompt_version"] == 1
    assert run["usage"]["requests"] >= 1 and run["finished_at"] is not None


async def test_an_unwaited_run_is_202_and_can_be_read_and_followed(live: Api) -> None:
    assert live.fabric is not None
    response = await live.client.post(
        "/v1/agents/rune/runs",
        json={"input": {"question": "Which school projects in Malmö start next year?"}},
        headers=live.headers(),
    )
    assert response.status_code == 202
    run_id = response.json()["id"]
    assert response.json()["status"] == "queued"
    events = await live.client.get(
        f"/v1/runs/{run_id}/events", headers={**live.headers(), "Accept": "text/event-stream"}
    )
    frames = [f for f in parse_frames(events.text) if not f.comment]
    assert frames[0].event == EventType.RUN_QUEUED and frames[-1].event == EventType.RUN_SUCCEEDED
    assert [int(f.id or 0) for f in frames] == list(range(1, len(frames) + 1))
    got = await live.client.get(f"/v1/runs/{run_id}", headers=live.headers())
    assert got.status_code == 200 and got.json()["status"] == "succeeded"
    assert got.json()["output"]["type"] == "text"


async def test_a_run_waiting_for_approval_is_202_and_approving_finishes_it(live: Api) -> None:
    assert live.fabric is not None
    response = await live.client.post(
        "/v1/agents/payments/runs?wait=true&timeout=30",
        json={"input": {"question": "pay invoice 42"}},
        headers=live.headers(),
    )
    assert response.status_code == 202
    run = response.json()
    assert run["status"] == "waiting_approval"
    pending = await live.client.get(
        f"/v1/approvals?status=pending&run_id={run['id']}", headers=live.headers()
    )
    (approval,) = pending.json()["data"]
    decided = await live.client.post(
        f"/v1/approvals/{approval['id']}/approve", headers=live.headers()
    )
    assert decided.json()["status"] == "approved"
    done = await live.fabric.wait("acme", run["id"], timeout=30)
    assert done.status == "succeeded" and done.segment == 1


async def test_wait_is_bounded_by_timeout_and_answers_202_while_still_running(
    live: Api,
) -> None:
    assert live.fabric is not None
    response = await live.client.post(
        "/v1/agents/slow/runs?wait=true&timeout=0.3",
        json={"input": {"question": "hold"}},
        headers=live.headers(),
    )
    assert response.status_code == 202
    assert response.json()["status"] in ("queued", "running")
    effects().set_switch(live.fabric.settings.home, "release", "1")
    assert (await live.fabric.wait("acme", response.json()["id"], timeout=30)).terminal


async def test_cancelling_a_run_keeps_its_usage_and_a_second_cancel_is_a_no_op(
    live: Api,
) -> None:
    assert live.fabric is not None
    submitted = await live.client.post(
        "/v1/agents/slow/runs", json={"input": {"question": "hold"}}, headers=live.headers()
    )
    run_id = submitted.json()["id"]
    async for event in live.fabric.follow("acme", run_id):
        if event.type == EventType.TOOL_REQUESTED:
            break
    response = await live.client.post(f"/v1/runs/{run_id}/cancel", headers=live.headers())
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["usage"]["requests"] == 1
    again = await live.client.post(f"/v1/runs/{run_id}/cancel", headers=live.headers())
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    effects().set_switch(live.fabric.settings.home, "release", "1")


async def test_a_finished_run_cannot_be_cancelled_and_a_failed_one_is_redriven(
    live: Api,
) -> None:
    assert live.fabric is not None
    home = live.fabric.settings.home
    effects().set_switch(home, "broken", "always")
    failed = await live.client.post(
        "/v1/agents/flaky/runs?wait=true",
        json={"input": {"question": "look it up"}},
        headers=live.headers(),
    )
    assert failed.status_code == 200 and failed.json()["status"] == "failed"
    run_id = failed.json()["id"]
    assert failed.json()["error"]["step"] == "tool.lookup"
    assert_problem(await live.client.post(f"/v1/runs/{run_id}/cancel", headers=live.headers()), 409)
    effects().set_switch(home, "broken", None)
    redriven = await live.client.post(f"/v1/runs/{run_id}/redrive", headers=live.headers())
    assert redriven.status_code == 202 and redriven.json()["redrives"] == 1
    done = await live.fabric.wait("acme", run_id, timeout=30)
    assert done.status == "succeeded"
    again = await live.client.post(f"/v1/runs/{run_id}/redrive", headers=live.headers())
    assert "only failed or timed-out" in assert_problem(again, 409)["detail"]


@pytest.mark.parametrize(
    ("agent", "body", "query", "field"),
    [
        ("sales-card", {"input": {"role": "electrician"}}, "", "body.input.project_id"),
        ("sales-card", {"input": {**CARD, "role": ""}}, "", "body.input.role"),
        ("sales-card", {"input": CARD, "prompt": "no-such-alias"}, "", "body.prompt"),
        ("sales-card", {"input": CARD, "priority": 0}, "", "body.priority"),
        ("sales-card", {"input": CARD, "lane": "express"}, "", "body.lane"),
        ("rune", {"input": {"question": "q"}, "lane": "batch"}, "", "body.lane"),
        ("sales-card", {"input": CARD, "deadline": "2001-01-01T00:00:00Z"}, "", "body.deadline"),
        ("sales-card", {"input": CARD, "user_id": "x"}, "", "body.user_id"),
        ("sales-card", {"input": CARD}, "?wait=true&timeout=121", "query.timeout"),
        ("sales-card", {"input": CARD}, "?wait=maybe", "query.wait"),
        ("bad name!", {"input": CARD}, "", "path.name"),
    ],
)
async def test_invalid_run_requests_are_422_naming_the_field(
    api: Api, agent: str, body: dict[str, Any], query: str, field: str
) -> None:
    response = await api.client.post(
        f"/v1/agents/{agent}/runs{query}", json=body, headers=api.headers()
    )
    assert_problem(response, 422, "invalid_input")
    assert field in field_names(response)


async def test_an_unknown_agent_or_run_is_404(api: Api) -> None:
    response = await api.client.post(
        "/v1/agents/nobody/runs", json={"input": {}}, headers=api.headers()
    )
    assert_problem(response, 404, "not_found")
    for method, url in (
        ("GET", "/v1/runs/run_nope"),
        ("GET", "/v1/runs/run_nope/events"),
        ("POST", "/v1/runs/run_nope/cancel"),
        ("POST", "/v1/runs/run_nope/redrive"),
    ):
        assert_problem(await api.client.request(method, url, headers=api.headers()), 404)


async def test_run_endpoints_need_credentials_and_the_runs_scopes(api: Api) -> None:
    assert api.fabric is not None
    from keel.identity.principal import Principal

    reader = api.headers(scopes=("runs:read",))
    run = api.fabric.submit(
        Principal(tenant_id="acme", user_id="anna"), "rune", {"question": "hello"}
    )
    writer = api.headers(scopes=("runs:write",))
    conversations = api.headers(scopes=("conversations:read", "conversations:write"))
    writes = [
        ("/v1/agents/rune/runs", {"input": {"question": "q"}}),
        (f"/v1/runs/{run.id}/cancel", None),
        (f"/v1/runs/{run.id}/redrive", None),
    ]
    for url, body in writes:
        assert_problem(await api.client.post(url, json=body), 401)
        for headers in (reader, conversations):
            response = await api.client.post(url, json=body, headers=headers)
            assert "runs:write" in assert_problem(response, 403)["detail"]
    for url in (f"/v1/runs/{run.id}", f"/v1/runs/{run.id}/events"):
        assert_problem(await api.client.get(url), 401)
        for headers in (writer, conversations):
            response = await api.client.get(url, headers=headers)
            assert "runs:read" in assert_problem(response, 403)["detail"]
    assert (await api.client.get(f"/v1/runs/{run.id}", headers=reader)).status_code == 200


async def test_another_users_run_is_404_unless_admin(api: Api) -> None:
    submitted = await api.client.post(
        "/v1/agents/rune/runs", json={"input": {"question": "hi"}}, headers=api.headers()
    )
    run_id = submitted.json()["id"]
    bob = api.headers("acme", "bob", ("runs:read", "runs:write"))
    admin = api.headers("acme", "root", ("admin", "runs:read"))
    for method, url in (
        ("GET", f"/v1/runs/{run_id}"),
        ("GET", f"/v1/runs/{run_id}/events"),
        ("POST", f"/v1/runs/{run_id}/cancel"),
    ):
        assert_problem(await api.client.request(method, url, headers=bob), 404)
    assert (await api.client.get(f"/v1/runs/{run_id}", headers=admin)).status_code == 200


async def test_a_repeated_key_runs_once_and_replays_the_response(api: Api) -> None:
    headers = {**api.headers(), "Idempotency-Key": "card-1"}
    first = await api.client.post(
        "/v1/agents/sales-card/runs", json={"input": CARD}, headers=headers
    )
    again = await api.client.post(
        "/v1/agents/sales-card/runs", json={"input": CARD}, headers=headers
    )
    assert first.status_code == again.status_code == 202
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    other = await api.client.post(
        "/v1/agents/sales-card/runs", json={"input": {**CARD, "role": "plumber"}}, headers=headers
    )
    assert_problem(other, 422, "idempotency_mismatch")

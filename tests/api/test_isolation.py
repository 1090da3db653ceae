"""Tenant isolation, on SQLite and PostgreSQL: every endpoint that takes an id, called by
another tenant (holding every scope, admin included) with the victim's ids, is a 404 that
changes nothing; lists and streams show the intruder nothing of the victim's.

The endpoints are read from the app's OpenAPI document, so a new route with an id is covered
(or this test fails until it is given a request body below)."""

from __future__ import annotations

import re
from typing import Any

from keel.fabric.events import EventType
from tests.api.conftest import Api, assert_problem, parse_frames

VICTIM = ("acme", "anna")
INTRUDER = ("globex", "mallory")
SHARED = {"/v1/agents/{name}", "/v1/agents/{name}/runs"}  # the catalog is deployment-wide
BODIES: dict[tuple[str, str], dict[str, Any] | None] = {
    ("POST", "/v1/conversations/{conversation_id}/turns"): {"input": {"question": "hi"}},
    ("POST", "/v1/turns/{turn_id}/feedback"): {"rating": "down", "text": "leak?"},
    ("POST", "/v1/approvals/{approval_id}/approve"): {"note": "mine now"},
    ("POST", "/v1/approvals/{approval_id}/reject"): {"note": "mine now"},
}
STREAM = {"Accept": "text/event-stream"}


def id_routes(api: Api) -> list[tuple[str, str]]:
    """Every documented operation whose path holds an id."""
    paths: dict[str, dict[str, Any]] = api.app.openapi()["paths"]
    return [
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith("/v1/") and "{" in path and path not in SHARED
        for method in operations
    ]


async def seed_victim(live: Api) -> dict[str, str]:
    """A conversation with a finished turn and feedback, and a run waiting for approval."""
    assert live.fabric is not None
    headers = live.headers(*VICTIM)
    conversation_id = await live.conversation(*VICTIM)
    turn = (
        await live.client.post(
            f"/v1/conversations/{conversation_id}/turns",
            json={"input": {"question": "Which hospital projects in Stockholm start this year?"}},
            headers={**headers, **STREAM},
        )
    ).headers["keel-turn-id"]
    await live.client.post(f"/v1/turns/{turn}/feedback", json={"rating": "up"}, headers=headers)
    run = (
        await live.client.post(
            "/v1/agents/payments/runs?wait=true",
            json={"input": {"question": "pay invoice 1"}},
            headers=headers,
        )
    ).json()["id"]
    (approval,) = live.fabric.approvals("acme", run_id=run)
    return {
        "conversation_id": conversation_id,
        "turn_id": turn,
        "run_id": run,
        "approval_id": approval.id,
    }


async def victim_state(live: Api, ids: dict[str, str]) -> list[Any]:
    headers = live.headers(*VICTIM)
    urls = [
        f"/v1/conversations/{ids['conversation_id']}",
        f"/v1/conversations/{ids['conversation_id']}/turns",
        f"/v1/turns/{ids['turn_id']}/feedback",
        f"/v1/runs/{ids['run_id']}",
        f"/v1/approvals/{ids['approval_id']}",
    ]
    return [(await live.client.get(url, headers=headers)).json() for url in urls]


async def test_every_endpoint_with_another_tenants_ids_is_404_and_changes_nothing(
    live: Api,
) -> None:
    ids = await seed_victim(live)
    before = await victim_state(live, ids)
    intruder = {**live.headers(*INTRUDER), **STREAM}
    routes = id_routes(live)
    assert len(routes) == 16, routes  # grows with the API: give new ones a body above
    leaked: list[str] = []
    for method, path in routes:
        url = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)
        response = await live.client.request(
            method, url, json=BODIES.get((method, path)), headers=intruder
        )
        assert_problem(response, 404, "not_found")
        leaked += [v for v in ids.values() if v in response.text and v not in url]
    assert leaked == []
    assert await victim_state(live, ids) == before


async def test_another_user_of_the_same_tenant_sees_no_conversation_turn_or_run(
    live: Api,
) -> None:
    """Conversations, turns and runs are the user's (admins excepted); approvals are the
    tenant's, for whoever holds the approvals scopes."""
    ids = await seed_victim(live)
    before = await victim_state(live, ids)
    colleague = {**live.headers("acme", "bob", ("conversations:read", "conversations:write",
                                                "runs:read", "runs:write")), **STREAM}  # fmt: skip
    for method, path in id_routes(live):
        if path.startswith("/v1/approvals"):
            continue
        url = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)
        response = await live.client.request(
            method, url, json=BODIES.get((method, path)), headers=colleague
        )
        assert_problem(response, 404, "not_found")
    assert await victim_state(live, ids) == before


async def test_lists_and_streams_show_an_intruder_nothing_of_the_victims(live: Api) -> None:
    assert live.fabric is not None
    ids = await seed_victim(live)
    headers = live.headers(*INTRUDER)
    own_conversation = await live.conversation(*INTRUDER)
    streamed = await live.client.post(
        f"/v1/conversations/{own_conversation}/turns",
        json={"input": {"question": "Which hospital projects in Stockholm start this year?"}},
        headers={**headers, **STREAM},
    )
    own_run = streamed.headers["keel-run-id"]
    own_waiting = (
        await live.client.post(
            "/v1/agents/payments/runs?wait=true",
            json={"input": {"question": "pay invoice 1"}},
            headers=headers,
        )
    ).json()["id"]
    bodies = [streamed.text]
    for url in (
        "/v1/conversations",
        "/v1/approvals",
        "/v1/approvals?status=pending",
        f"/v1/approvals?run_id={ids['run_id']}",
        f"/v1/conversations/{own_conversation}/turns",
        "/v1/agents",
    ):
        response = await live.client.get(url, headers=headers)
        assert response.status_code == 200
        bodies.append(response.text)
    approvals = (await live.client.get("/v1/approvals", headers=headers)).json()["data"]
    assert [a["run_id"] for a in approvals] == [own_waiting]
    assert (await live.client.get(f"/v1/approvals?run_id={ids['run_id']}", headers=headers)).json()[
        "data"
    ] == []
    frames = [f for f in parse_frames(streamed.text) if not f.comment]
    assert {f.data["run_id"] for f in frames if f.data} == {own_run}
    assert frames[-1].event == EventType.RUN_SUCCEEDED
    for body in bodies:
        for victim_id in ids.values():
            assert victim_id not in body

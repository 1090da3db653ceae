"""`/v1/turns/{id}/feedback`: one per user per turn, updatable; scoped like conversations."""

from __future__ import annotations

import asyncio

import pytest

from tests.api.conftest import Api, assert_problem, field_names


async def _turn(api: Api, tenant: str = "acme", user: str = "anna") -> str:
    conversation_id = await api.conversation(tenant, user)
    return api.turn(conversation_id, "hello", tenant, user).id


async def test_first_post_creates_201_second_updates_200(api: Api) -> None:
    turn_id = await _turn(api)
    url = f"/v1/turns/{turn_id}/feedback"
    first = await api.client.post(
        url, json={"rating": "up", "text": "spot on"}, headers=api.headers()
    )
    assert first.status_code == 201
    assert first.json()["id"].startswith("fb_")
    assert first.json()["rating"] == "up" and first.json()["text"] == "spot on"
    second = await api.client.post(url, json={"rating": "down"}, headers=api.headers())
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["rating"] == "down" and second.json()["text"] == ""
    assert second.json()["updated_at"] >= first.json()["updated_at"]
    got = await api.client.get(url, headers=api.headers())
    assert got.status_code == 200 and got.json() == second.json()


async def test_each_user_has_their_own_feedback_on_a_turn(api: Api) -> None:
    turn_id = await _turn(api)
    url = f"/v1/turns/{turn_id}/feedback"
    admin = api.headers("acme", "root", ("admin", "conversations:read", "conversations:write"))
    assert (
        await api.client.post(url, json={"rating": "up"}, headers=api.headers())
    ).status_code == 201
    assert (await api.client.post(url, json={"rating": "down"}, headers=admin)).status_code == 201
    assert (await api.client.get(url, headers=api.headers())).json()["rating"] == "up"
    assert (await api.client.get(url, headers=admin)).json()["rating"] == "down"


async def test_concurrent_first_posts_leave_one_feedback(api: Api) -> None:
    turn_id = await _turn(api)
    url = f"/v1/turns/{turn_id}/feedback"
    responses = await asyncio.gather(
        *[api.client.post(url, json={"rating": "up"}, headers=api.headers()) for _ in range(8)]
    )
    assert sorted(r.status_code for r in responses) == [200] * 7 + [201]
    assert len({r.json()["id"] for r in responses}) == 1


async def test_no_feedback_yet_is_404(api: Api) -> None:
    turn_id = await _turn(api)
    response = await api.client.get(f"/v1/turns/{turn_id}/feedback", headers=api.headers())
    assert_problem(response, 404, "not_found")


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_another_tenants_or_users_turn_is_404(api: Api, method: str) -> None:
    turn_id = await _turn(api, "acme", "anna")
    url = f"/v1/turns/{turn_id}/feedback"
    await api.client.post(url, json={"rating": "up"}, headers=api.headers())
    body = {"rating": "down"} if method == "POST" else None
    for headers in (
        api.headers("globex", "anna"),
        api.headers("acme", "bob", ("conversations:read", "conversations:write")),
    ):
        response = await api.client.request(method, url, json=body, headers=headers)
        assert_problem(response, 404, "not_found")
    unknown = await api.client.request(
        method, "/v1/turns/turn_nope/feedback", json=body, headers=api.headers()
    )
    assert_problem(unknown, 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body.rating"),
        ({"rating": "meh"}, "body.rating"),
        ({"rating": "up", "text": "x" * 4001}, "body.text"),
        ({"rating": "up", "stars": 5}, "body.stars"),
    ],
)
async def test_invalid_feedback_is_422_naming_the_field(
    api: Api, body: dict[str, object], field: str
) -> None:
    turn_id = await _turn(api)
    response = await api.client.post(
        f"/v1/turns/{turn_id}/feedback", json=body, headers=api.headers()
    )
    assert_problem(response, 422, "invalid_input")
    assert field in field_names(response)


async def test_feedback_needs_credentials_and_scopes(api: Api) -> None:
    turn_id = await _turn(api)
    url = f"/v1/turns/{turn_id}/feedback"
    assert_problem(await api.client.post(url, json={"rating": "up"}), 401)
    assert_problem(await api.client.get(url, headers={"X-API-Key": "keel_sk_bogus"}), 401)
    reader = api.headers(scopes=("conversations:read",))
    writer = api.headers(scopes=("conversations:write",))
    assert_problem(await api.client.post(url, json={"rating": "up"}, headers=reader), 403)
    assert_problem(await api.client.get(url, headers=writer), 403)

"""`/v1/conversations` on SQLite and PostgreSQL: happy paths, scoping, auth, validation."""

from __future__ import annotations

import asyncio
import base64

import pytest

from keel.identity.keys import create_key, revoke_key
from tests.api.conftest import Api, assert_problem, field_names


async def test_opening_a_conversation_returns_it_with_a_prefixed_id_and_location(api: Api) -> None:
    response = await api.client.post(
        "/v1/conversations",
        json={"agent": "rune", "metadata": {"project_id": "p-9182"}},
        headers=api.headers(),
    )
    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("conv_")
    assert response.headers["location"] == f"/v1/conversations/{body['id']}"
    assert body["agent"] == "rune"
    assert body["metadata"] == {"project_id": "p-9182"}
    assert body["title"] is None and body["preview"] is None and body["turn_count"] == 0


async def test_tenant_and_user_come_from_the_key_never_from_the_body(api: Api) -> None:
    response = await api.client.post(
        "/v1/conversations",
        json={"agent": "rune", "tenant_id": "evil", "user_id": "mallory"},
        headers=api.headers("acme", "anna"),
    )
    assert_problem(response, 422)
    assert "body.tenant_id" in field_names(response)
    conversation_id = await api.conversation("acme", "anna", metadata={"tenant_id": "evil"})
    got = await api.client.get(f"/v1/conversations/{conversation_id}", headers=api.headers())
    assert got.status_code == 200
    other = await api.client.get(
        f"/v1/conversations/{conversation_id}", headers=api.headers("evil", "anna")
    )
    assert_problem(other, 404, "not_found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body.agent"),
        ({"agent": "nobody"}, "body.agent"),
        ({"agent": "bad name!"}, "body.agent"),
        ({"agent": "rune", "metadata": "x"}, "body.metadata"),
        ({"agent": "rune", "metadata": {str(i): i for i in range(51)}}, "body.metadata"),
        ({"agent": "rune", "metadata": {"k" * 65: 1}}, "body.metadata"),
        ({"agent": "rune", "metadata": {"big": "x" * 17_000}}, "body.metadata"),
    ],
)
async def test_invalid_input_is_a_422_naming_the_field(
    api: Api, body: dict[str, object], field: str
) -> None:
    response = await api.client.post("/v1/conversations", json=body, headers=api.headers())
    problem = assert_problem(response, 422, "invalid_input")
    assert field in field_names(response), problem


async def test_get_shows_title_from_the_first_turn_preview_and_count(api: Api) -> None:
    conversation_id = await api.conversation()
    api.turn(conversation_id, "Find   projects similar to\nthe Malmö hospital build")
    api.turn(conversation_id, "Only the ones in Skåne")
    response = await api.client.get(f"/v1/conversations/{conversation_id}", headers=api.headers())
    assert response.status_code == 200
    body = response.json()
    assert body["title"] == "Find projects similar to the Malmö hospital build"
    assert body["preview"] == "Only the ones in Skåne"
    assert body["turn_count"] == 2
    assert body["updated_at"] >= body["created_at"]


async def test_turns_replay_in_order_with_their_run_and_status(api: Api) -> None:
    conversation_id = await api.conversation()
    first = api.turn(conversation_id, "one")
    api.turn(conversation_id, "two")
    response = await api.client.get(
        f"/v1/conversations/{conversation_id}/turns", headers=api.headers()
    )
    assert response.status_code == 200
    turns = response.json()["data"]
    assert [t["index"] for t in turns] == [0, 1]
    assert [t["input"]["question"] for t in turns] == ["one", "two"]
    assert turns[0]["id"] == first.id and turns[0]["run_id"].startswith("run_")
    # this app's fabric only submits: both runs are queued, the second behind the first
    assert [t["status"] for t in turns] == ["queued", "queued"]
    assert turns[0]["output"] is None and turns[0]["usage"] == {}


async def test_listing_pages_newest_first_without_gaps_or_repeats(api: Api) -> None:
    created = [await api.conversation() for _ in range(5)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = await api.client.get("/v1/conversations", params=params, headers=api.headers())
        assert response.status_code == 200
        page = response.json()
        seen += [c["id"] for c in page["data"]]
        pages += 1
        assert page["has_more"] == (page["next_cursor"] is not None)
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert seen == list(reversed(created))
    assert pages == 3


async def test_default_page_is_twenty_and_limit_is_bounded(api: Api) -> None:
    for _ in range(21):
        await api.conversation()
    page = (await api.client.get("/v1/conversations", headers=api.headers())).json()
    assert len(page["data"]) == 20 and page["has_more"] is True
    for bad in (0, 101, "x"):
        response = await api.client.get(
            "/v1/conversations", params={"limit": bad}, headers=api.headers()
        )
        assert_problem(response, 422)
        assert field_names(response) == ["query.limit"]


@pytest.mark.parametrize("mutate", ["flip", "truncate", "garbage", "other-kind"])
async def test_a_tampered_cursor_is_a_422_naming_cursor(api: Api, mutate: str) -> None:
    for _ in range(3):
        await api.conversation()
    page = (await api.client.get("/v1/conversations?limit=1", headers=api.headers())).json()
    cursor: str = page["next_cursor"]
    if mutate == "flip":
        raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        raw[10] ^= 0x01
        cursor = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    elif mutate == "truncate":
        cursor = cursor[:-6]
    elif mutate == "garbage":
        cursor = "not a cursor!"
    else:
        from keel.api.pagination import Position, decode_cursor, encode_cursor

        cursor = encode_cursor("runs", decode_cursor("conversations", cursor))
        assert isinstance(Position, type)
    response = await api.client.get(
        "/v1/conversations", params={"cursor": cursor}, headers=api.headers()
    )
    assert_problem(response, 422, "invalid_input")
    assert field_names(response) == ["query.cursor"]


async def test_listing_shows_only_the_callers_own_conversations_unless_admin(api: Api) -> None:
    mine = await api.conversation("acme", "anna")
    theirs = await api.conversation("acme", "bob")
    await api.conversation("globex", "anna")

    async def ids(headers: dict[str, str]) -> set[str]:
        response = await api.client.get("/v1/conversations", headers=headers)
        assert response.status_code == 200
        return {c["id"] for c in response.json()["data"]}

    assert await ids(api.headers("acme", "anna", ("conversations:read",))) == {mine}
    assert await ids(api.headers("acme", "bob", ("conversations:read",))) == {theirs}
    assert await ids(api.headers("acme", "root", ("admin", "conversations:read"))) == {mine, theirs}


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("GET", "/turns"), ("DELETE", "")],
)
async def test_another_tenants_or_users_conversation_is_404_not_403(
    api: Api, method: str, suffix: str
) -> None:
    conversation_id = await api.conversation("acme", "anna")
    url = f"/v1/conversations/{conversation_id}{suffix}"
    for headers in (
        api.headers("globex", "anna"),
        api.headers("acme", "bob", ("conversations:read", "conversations:write")),
    ):
        response = await api.client.request(method, url, headers=headers)
        assert_problem(response, 404, "not_found")
    admin_elsewhere = api.headers("globex", "root", ("*",))
    assert_problem(await api.client.request(method, url, headers=admin_elsewhere), 404)
    assert (await api.client.get(url, headers=api.headers())).status_code == 200


async def test_an_unknown_id_is_404(api: Api) -> None:
    for url in ("/v1/conversations/conv_nope", "/v1/conversations/conv_nope/turns"):
        assert_problem(await api.client.get(url, headers=api.headers()), 404, "not_found")


async def test_a_deleted_conversation_is_404_everywhere(api: Api) -> None:
    conversation_id = await api.conversation()
    turn = api.turn(conversation_id, "hello")
    url = f"/v1/conversations/{conversation_id}"
    response = await api.client.delete(url, headers=api.headers())
    assert response.status_code == 204 and response.content == b""
    assert_problem(await api.client.get(url, headers=api.headers()), 404)
    assert_problem(await api.client.get(url + "/turns", headers=api.headers()), 404)
    assert_problem(await api.client.delete(url, headers=api.headers()), 404)
    listing = (await api.client.get("/v1/conversations", headers=api.headers())).json()
    assert conversation_id not in {c["id"] for c in listing["data"]}
    feedback = await api.client.post(
        f"/v1/turns/{turn.id}/feedback", json={"rating": "up"}, headers=api.headers()
    )
    assert_problem(feedback, 404)


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/v1/conversations"),
        ("POST", "/v1/conversations"),
        ("GET", "/v1/conversations/conv_x"),
        ("GET", "/v1/conversations/conv_x/turns"),
        ("DELETE", "/v1/conversations/conv_x"),
        ("GET", "/v1/agents"),
    ],
)
async def test_missing_or_bad_credentials_are_401_with_a_challenge(
    api: Api, method: str, url: str
) -> None:
    body = {"agent": "rune"} if method == "POST" else None
    response = await api.client.request(method, url, json=body)
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == 'Bearer realm="keel"'
    for headers in (
        {"Authorization": "Bearer keel_sk_not-a-real-key"},
        {"X-API-Key": "keel_sk_not-a-real-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer a.b.c"},  # a JWT, but OIDC is not configured here
    ):
        response = await api.client.request(method, url, json=body, headers=headers)
        assert_problem(response, 401, "unauthorized")
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_a_revoked_key_is_401_and_x_api_key_works_like_bearer(api: Api) -> None:
    key = create_key(api.db, "acme", "anna", ("*",))
    ok = await api.client.get("/v1/conversations", headers={"X-API-Key": key.secret})
    assert ok.status_code == 200
    revoke_key(api.db, key.id)
    for headers in ({"X-API-Key": key.secret}, {"Authorization": f"Bearer {key.secret}"}):
        assert_problem(await api.client.get("/v1/conversations", headers=headers), 401)


async def test_both_credential_headers_at_once_are_refused(api: Api) -> None:
    headers = {**api.headers(), "X-API-Key": "keel_sk_other"}
    assert_problem(await api.client.get("/v1/conversations", headers=headers), 401)


async def test_missing_scope_is_403_naming_it(api: Api) -> None:
    conversation_id = await api.conversation()
    reader = api.headers(scopes=("conversations:read",))
    writer = api.headers(scopes=("conversations:write",))
    create = await api.client.post("/v1/conversations", json={"agent": "rune"}, headers=reader)
    assert "conversations:write" in assert_problem(create, 403, "forbidden")["detail"]
    delete = await api.client.delete(f"/v1/conversations/{conversation_id}", headers=reader)
    assert_problem(delete, 403)
    for url in (
        "/v1/conversations",
        f"/v1/conversations/{conversation_id}",
        f"/v1/conversations/{conversation_id}/turns",
    ):
        response = await api.client.get(url, headers=writer)
        assert "conversations:read" in assert_problem(response, 403)["detail"]
    assert (await api.client.get("/v1/conversations", headers=reader)).status_code == 200


async def test_agents_lists_the_catalog(api: Api) -> None:
    response = await api.client.get("/v1/agents", headers=api.headers(scopes=("runs:read",)))
    assert response.status_code == 200
    listed = response.json()["data"]
    assert [a["name"] for a in listed] == ["rune", "sales-card"]
    assert all(a["description"] for a in listed)


async def test_concurrent_turns_get_distinct_consecutive_indexes(api: Api) -> None:
    """Concurrent submissions serialise on the conversation: no two turns share an index,
    and each queued run waits for the one before it (double texting: enqueue)."""
    import anyio.to_thread

    conversation_id = await api.conversation()
    turns = await asyncio.gather(
        *[anyio.to_thread.run_sync(api.turn, conversation_id, f"q{i}") for i in range(10)]
    )
    assert sorted(t.index for t in turns) == list(range(10))
    got = await api.client.get(f"/v1/conversations/{conversation_id}", headers=api.headers())
    assert got.json()["turn_count"] == 10
    assert got.json()["title"] == next(t for t in turns if t.index == 0).input["question"]
    assert api.fabric is not None
    runs = {t.index: api.fabric.get("acme", t.run_id or "") for t in turns}
    assert runs[0].after_run_id is None
    assert all(runs[i].after_run_id == runs[i - 1].id for i in range(1, 10))

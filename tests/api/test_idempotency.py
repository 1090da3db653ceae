"""Idempotency-Key: replay, mismatch, scoping, concurrency (one effect), waiting, expiry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import func, select

from keel.api.deps import PrincipalDep
from keel.api.idempotency import (
    Claim,
    EventReplay,
    IdempotencyScope,
    IdempotencyStore,
    IdempotentRoute,
    InFlight,
    StoredResponse,
    fingerprint,
)
from keel.errors import IdempotencyMismatch
from keel.store.database import Database
from keel.store.tables import Conversation, IdempotencyRecord
from tests.api.conftest import (
    Api,
    assert_problem,
    build_app,
    client_for,
    field_names,
    make_settings,
)


def conversation_count(db: Database, tenant: str = "acme") -> int:
    with db.transaction() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(Conversation)
                .where(Conversation.tenant_id == tenant)
            )
            or 0
        )


async def test_same_key_same_body_replays_the_first_response(api: Api) -> None:
    headers = {**api.headers(), "Idempotency-Key": "open-1"}
    first = await api.client.post(
        "/v1/conversations", json={"agent": "rune", "metadata": {"a": 1, "b": 2}}, headers=headers
    )
    again = await api.client.post(
        "/v1/conversations", json={"metadata": {"b": 2, "a": 1}, "agent": "rune"}, headers=headers
    )
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert conversation_count(api.db) == 1


async def test_same_key_different_body_is_422(api: Api) -> None:
    headers = {**api.headers(), "Idempotency-Key": "open-2"}
    await api.client.post("/v1/conversations", json={"agent": "rune"}, headers=headers)
    response = await api.client.post(
        "/v1/conversations", json={"agent": "sales-card"}, headers=headers
    )
    assert_problem(response, 422, "idempotency_mismatch")
    other_path = await api.client.post(
        "/v1/turns/turn_x/feedback", json={"agent": "rune"}, headers=headers
    )
    assert_problem(other_path, 422, "idempotency_mismatch")
    assert conversation_count(api.db) == 1


async def test_keys_are_scoped_per_tenant_and_user(api: Api) -> None:
    ids = set()
    for tenant, user in (("acme", "anna"), ("acme", "bob"), ("globex", "anna")):
        headers = {**api.headers(tenant, user), "Idempotency-Key": "shared-key"}
        response = await api.client.post(
            "/v1/conversations", json={"agent": "rune"}, headers=headers
        )
        assert response.status_code == 201
        assert "idempotent-replayed" not in response.headers
        ids.add(response.json()["id"])
    assert len(ids) == 3


async def test_a_rejected_request_does_not_consume_the_key(api: Api) -> None:
    headers = {**api.headers(), "Idempotency-Key": "retry-after-fix"}
    bad = await api.client.post("/v1/conversations", json={"agent": "nobody"}, headers=headers)
    assert_problem(bad, 422)
    # a different body is fine now: nothing was stored for the failed attempt
    good = await api.client.post("/v1/conversations", json={"agent": "rune"}, headers=headers)
    assert good.status_code == 201 and "idempotent-replayed" not in good.headers


async def test_an_invalid_key_is_422_naming_the_header(api: Api) -> None:
    headers = {**api.headers(), "Idempotency-Key": "x" * 256}
    response = await api.client.post("/v1/conversations", json={"agent": "rune"}, headers=headers)
    assert_problem(response, 422)
    assert field_names(response) == ["header.Idempotency-Key"]


async def test_feedback_replay_keeps_the_original_201(api: Api) -> None:
    conversation_id = await api.conversation()
    turn = api.turn(conversation_id, "hi")
    headers = {**api.headers(), "Idempotency-Key": "fb-1"}
    url = f"/v1/turns/{turn.id}/feedback"
    first = await api.client.post(url, json={"rating": "up"}, headers=headers)
    again = await api.client.post(url, json={"rating": "up"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content


async def test_twenty_concurrent_posts_with_one_key_make_one_conversation(api: Api) -> None:
    headers = {**api.headers(), "Idempotency-Key": "burst"}
    responses = await asyncio.gather(
        *[
            api.client.post("/v1/conversations", json={"agent": "rune"}, headers=headers)
            for _ in range(20)
        ]
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.content for r in responses}) == 1
    assert sum("idempotent-replayed" in r.headers for r in responses) == 19
    assert conversation_count(api.db) == 1


async def test_concurrent_duplicates_across_two_api_processes_make_one_conversation(
    database_url: str, tmp_path: Any
) -> None:
    """Two apps with separate engines share only the database, as two processes would."""
    dbs = [Database(database_url), Database(database_url)]
    dbs[0].upgrade()
    settings = make_settings(tmp_path)
    apps = [build_app(d, settings) for d in dbs]
    from keel.identity.keys import create_key

    secret = create_key(dbs[0], "acme", "anna").secret
    headers = {"Authorization": f"Bearer {secret}", "Idempotency-Key": "cross-process"}
    try:
        async with client_for(apps[0]) as c0, client_for(apps[1]) as c1:
            responses = await asyncio.gather(
                *[
                    (c0 if i % 2 else c1).post(
                        "/v1/conversations", json={"agent": "rune"}, headers=headers
                    )
                    for i in range(20)
                ]
            )
        assert {r.status_code for r in responses} == {201}
        assert len({r.content for r in responses}) == 1
        assert conversation_count(dbs[0]) == 1
    finally:
        for d in dbs:
            d.dispose()


class ObservedStore(IdempotencyStore):
    """The real store, announcing when a claim finds the key in flight."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.saw_in_flight = asyncio.Event()
        self.loop = asyncio.get_running_loop()

    def claim(self, scope: IdempotencyScope, fp: str) -> Claim | StoredResponse | InFlight:
        outcome = super().claim(scope, fp)
        if isinstance(outcome, InFlight):
            self.loop.call_soon_threadsafe(self.saw_in_flight.set)
        return outcome


class SlowApp:
    """An app with an extra idempotent route that blocks until released."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.calls = 0
        self.fail_next = False
        router = APIRouter(route_class=IdempotentRoute)

        @router.post("/test/slow")
        async def slow(body: dict[str, Any], principal: PrincipalDep) -> dict[str, Any]:
            self.calls += 1
            self.entered.set()
            await self.release.wait()
            if self.fail_next:
                self.fail_next = False
                raise RuntimeError("boom")
            return {"calls": self.calls, "echo": body}

        app.include_router(router)


@pytest.fixture
async def slow(db: Database, tmp_path: Any) -> AsyncIterator[tuple[SlowApp, Api, ObservedStore]]:
    app = build_app(db, make_settings(tmp_path, idempotency_wait_seconds=5.0))
    store = ObservedStore(db)
    app.state.idempotency.store = store
    async with client_for(app) as client:
        yield SlowApp(app), Api(app, client, db), store


async def test_a_duplicate_waits_for_the_in_flight_first_request_then_replays(
    slow: tuple[SlowApp, Api, ObservedStore],
) -> None:
    harness, api, store = slow
    headers = {**api.headers(), "Idempotency-Key": "wait-1"}
    first = asyncio.create_task(api.client.post("/test/slow", json={"n": 1}, headers=headers))
    await asyncio.wait_for(harness.entered.wait(), 5)
    second = asyncio.create_task(api.client.post("/test/slow", json={"n": 1}, headers=headers))
    await asyncio.wait_for(store.saw_in_flight.wait(), 5)
    assert not second.done()
    harness.release.set()
    a, b = await asyncio.wait_for(asyncio.gather(first, second), 10)
    assert a.status_code == b.status_code == 200
    assert a.content == b.content and b.headers["idempotent-replayed"] == "true"
    assert harness.calls == 1


async def test_a_duplicate_gets_409_when_the_first_outlasts_the_wait(
    db: Database, tmp_path: Any
) -> None:
    app = build_app(db, make_settings(tmp_path, idempotency_wait_seconds=0.2))
    harness = SlowApp(app)
    async with client_for(app) as client:
        api = Api(app, client, db)
        headers = {**api.headers(), "Idempotency-Key": "wait-2"}
        first = asyncio.create_task(client.post("/test/slow", json={}, headers=headers))
        await asyncio.wait_for(harness.entered.wait(), 5)
        response = await client.post("/test/slow", json={}, headers=headers)
        assert_problem(response, 409, "conflict")
        harness.release.set()
        assert (await first).status_code == 200


async def test_a_failed_first_request_releases_the_key_for_the_waiter(
    slow: tuple[SlowApp, Api, ObservedStore],
) -> None:
    harness, api, store = slow
    harness.fail_next = True
    headers = {**api.headers(), "Idempotency-Key": "fails-once"}
    first = asyncio.create_task(api.client.post("/test/slow", json={}, headers=headers))
    await asyncio.wait_for(harness.entered.wait(), 5)
    second = asyncio.create_task(api.client.post("/test/slow", json={}, headers=headers))
    await asyncio.wait_for(store.saw_in_flight.wait(), 5)
    harness.release.set()
    a, b = await asyncio.wait_for(asyncio.gather(first, second), 10)
    assert_problem(a, 500, "internal_error")
    assert "boom" not in a.text
    assert b.status_code == 200 and "idempotent-replayed" not in b.headers
    assert harness.calls == 2


async def test_a_streaming_endpoint_stores_a_marker_and_replays_its_events(
    api: Api,
) -> None:
    events = {"run_1": [b"data: a\n\n", b"data: b\n\n"]}
    calls = []
    router = APIRouter(route_class=IdempotentRoute)

    @router.post("/test/stream")
    async def stream(request: Request, principal: PrincipalDep) -> Response:
        calls.append(1)
        request.state.idempotency_replay = EventReplay(resource_id="run_1")

        async def body() -> AsyncIterator[bytes]:
            for chunk in events["run_1"]:
                yield chunk

        return StreamingResponse(body(), media_type="text/event-stream", status_code=201)

    async def replayer(request: Request, stored: StoredResponse) -> Response:
        assert stored.kind == "events" and stored.resource_id is not None

        async def body() -> AsyncIterator[bytes]:
            for chunk in events[stored.resource_id or ""]:
                yield chunk

        return StreamingResponse(body(), media_type="text/event-stream", status_code=stored.status)

    api.app.include_router(router)
    api.app.state.event_replayer = replayer
    headers = {**api.headers(), "Idempotency-Key": "stream-1"}
    first = await api.client.post("/test/stream", headers=headers)
    again = await api.client.post("/test/stream", headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.content == again.content == b"data: a\n\ndata: b\n\n"
    assert again.headers["idempotent-replayed"] == "true"
    assert len(calls) == 1


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


SCOPE = IdempotencyScope("acme", "anna", "k")


def test_a_key_expires_after_its_ttl_and_can_be_reused(db: Database, clock: Clock) -> None:
    store = IdempotencyStore(db, ttl_seconds=60, now=clock)
    claim = store.claim(SCOPE, "fp1")
    assert isinstance(claim, Claim)
    assert store.complete(claim, StoredResponse(201, {"content-type": "application/json"}, b"{}"))
    assert isinstance(store.claim(SCOPE, "fp1"), StoredResponse)
    with pytest.raises(IdempotencyMismatch):
        store.claim(SCOPE, "fp2")
    clock.now += timedelta(seconds=61)
    assert isinstance(store.claim(SCOPE, "fp2"), Claim)


def test_a_crashed_in_flight_claim_is_taken_over_after_its_lease(
    db: Database, clock: Clock
) -> None:
    store = IdempotencyStore(db, lease_seconds=30, now=clock)
    stale = store.claim(SCOPE, "fp")
    assert isinstance(stale, Claim)
    assert isinstance(store.claim(SCOPE, "fp"), InFlight)
    clock.now += timedelta(seconds=31)
    fresh = store.claim(SCOPE, "fp")
    assert isinstance(fresh, Claim) and fresh.record_id == stale.record_id
    # the presumed-dead owner can no longer complete or release it
    assert not store.complete(stale, StoredResponse(200, {}, b"late"))
    store.release(stale)
    assert isinstance(store.claim(SCOPE, "fp"), InFlight)
    assert store.complete(fresh, StoredResponse(200, {}, b"\xff\x00binary"))
    replay = store.claim(SCOPE, "fp")
    assert isinstance(replay, StoredResponse) and replay.body == b"\xff\x00binary"


def test_the_sweep_purges_only_expired_keys(db: Database, clock: Clock) -> None:
    store = IdempotencyStore(db, ttl_seconds=60, now=clock)
    store.claim(IdempotencyScope("acme", "anna", "old"), "fp")
    clock.now += timedelta(seconds=30)
    store.claim(IdempotencyScope("acme", "anna", "new"), "fp")
    clock.now += timedelta(seconds=31)
    assert store.purge_expired() == 1
    with db.transaction() as s:
        assert [r.key for r in s.scalars(select(IdempotencyRecord))] == ["new"]


def test_the_fingerprint_ignores_json_key_order_but_not_values_or_paths() -> None:
    a = fingerprint("POST", "/v1/x", "", b'{"a": 1, "b": [1, 2]}')
    assert a == fingerprint("post", "/v1/x", "", b'{"b":[1,2],"a":1}')
    assert a != fingerprint("POST", "/v1/x", "", b'{"a": 2, "b": [1, 2]}')
    assert a != fingerprint("POST", "/v1/y", "", b'{"a": 1, "b": [1, 2]}')
    assert a != fingerprint("POST", "/v1/x", "q=1", b'{"a": 1, "b": [1, 2]}')
    assert fingerprint("POST", "/", "", b"\xff") != fingerprint("POST", "/", "", b"\xfe")

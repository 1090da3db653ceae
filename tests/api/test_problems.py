"""Every error is RFC 9457 problem+json: domain errors, framework errors, size and rate limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import APIRouter

from keel import errors
from keel.control.ratelimit import MemoryRateLimiter, RateLimitPolicy
from keel.settings import RateLimitSetting
from keel.store.database import Database
from tests.api.conftest import Api, assert_problem, build_app, client_for, make_settings


@pytest.fixture
async def raising(sqlite_db: Database, tmp_path: Any) -> AsyncIterator[Api]:
    """An app with extra routes raising each domain error."""
    app = build_app(sqlite_db, make_settings(tmp_path))
    router = APIRouter()
    raisers: dict[str, Exception] = {
        "not-found": errors.NotFound("widget", "w_1"),
        "conflict": errors.Conflict("already finished"),
        "invalid": errors.InvalidInput("bad colour", field="body.colour"),
        "unauthorized": errors.Unauthorized("nope"),
        "forbidden": errors.Forbidden("not yours"),
        "rate-limited": errors.RateLimited("slow down", retry_after=2.2),
        "mismatch": errors.IdempotencyMismatch("different request"),
        "budget": errors.BudgetExceeded("monthly budget spent"),
        "crash": RuntimeError("secret connection string postgres://u:p@db"),
    }

    def raiser(exc: Exception) -> Any:
        def endpoint() -> None:
            raise exc

        return endpoint

    for name, exc in raisers.items():
        router.add_api_route(f"/test/{name}", raiser(exc), methods=["GET"])
    app.include_router(router)
    async with client_for(app) as client:
        yield Api(app, client, sqlite_db)


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("not-found", 404, "not_found"),
        ("conflict", 409, "conflict"),
        ("invalid", 422, "invalid_input"),
        ("unauthorized", 401, "unauthorized"),
        ("forbidden", 403, "forbidden"),
        ("rate-limited", 429, "rate_limited"),
        ("mismatch", 422, "idempotency_mismatch"),
        ("budget", 402, "budget_exceeded"),
        ("crash", 500, "internal_error"),
    ],
)
async def test_domain_errors_map_to_their_status(
    raising: Api, name: str, status: int, code: str
) -> None:
    response = await raising.client.get(f"/test/{name}")
    body = assert_problem(response, status, code)
    assert body["type"] == "urn:keel:problem:" + code
    if name == "invalid":
        assert body["errors"] == [{"field": "body.colour", "message": "bad colour"}]
    if name == "rate-limited":
        assert response.headers["retry-after"] == "3"
    if name == "unauthorized":
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_an_unexpected_error_reveals_nothing_internal(raising: Api) -> None:
    response = await raising.client.get("/test/crash")
    body = assert_problem(response, 500)
    assert "postgres" not in response.text and "RuntimeError" not in response.text
    assert "reference err_" in body["detail"]


async def test_unknown_routes_and_methods_are_problems(api: Api) -> None:
    assert_problem(await api.client.get("/v2/nothing"), 404, "not_found")
    response = await api.client.patch("/v1/conversations", headers=api.headers())
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET, POST"


async def test_a_declared_oversized_body_is_413_before_reading(
    sqlite_db: Database, tmp_path: Any
) -> None:
    app = build_app(sqlite_db, make_settings(tmp_path, api_max_body_bytes=1024))
    async with client_for(app) as client:
        api = Api(app, client, sqlite_db)
        body = {"agent": "rune", "metadata": {"x": "y" * 2000}}
        response = await client.post("/v1/conversations", json=body, headers=api.headers())
        assert_problem(response, 413, "body_too_large")
        small = await client.post(
            "/v1/conversations", json={"agent": "rune"}, headers=api.headers()
        )
        assert small.status_code == 201


async def test_a_streamed_body_is_cut_off_at_the_limit(sqlite_db: Database, tmp_path: Any) -> None:
    app = build_app(sqlite_db, make_settings(tmp_path, api_max_body_bytes=1024))
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"agent": "rune", "metadata": {"x": "'
        for _ in range(10_000):  # would be 5 MB; must stop long before
            sent += 512
            yield b"y" * 512

    async with client_for(app) as client:
        api = Api(app, client, sqlite_db)
        headers = {**api.headers(), "content-type": "application/json"}
        response = await client.post("/v1/conversations", content=chunks(), headers=headers)
        assert "content-length" not in response.request.headers
        assert_problem(response, 413, "body_too_large")
        assert sent < 10_000 * 512


async def test_an_exhausted_bucket_is_429_with_retry_after(
    sqlite_db: Database, tmp_path: Any
) -> None:
    class Clock:
        now = 0.0

        def __call__(self) -> float:
            return self.now

    clock = Clock()
    limit = RateLimitSetting(capacity=2, refill_per_second=0.25)
    limiter = MemoryRateLimiter(
        RateLimitPolicy(dict.fromkeys(("turns", "runs", "reads", "writes"), limit)), clock=clock
    )
    app = build_app(sqlite_db, make_settings(tmp_path), rate_limiter=limiter)
    async with client_for(app) as client:
        api = Api(app, client, sqlite_db)
        for _ in range(2):
            assert (await client.get("/v1/conversations", headers=api.headers())).status_code == 200
        response = await client.get("/v1/conversations", headers=api.headers())
        assert_problem(response, 429, "rate_limited")
        assert response.headers["retry-after"] == "4"
        # another tenant has its own bucket; writes have their own class
        other = await client.get("/v1/conversations", headers=api.headers("globex", "g"))
        assert other.status_code == 200
        write = await client.post(
            "/v1/conversations", json={"agent": "rune"}, headers=api.headers()
        )
        assert write.status_code == 201
        clock.now += 4.0
        assert (await client.get("/v1/conversations", headers=api.headers())).status_code == 200

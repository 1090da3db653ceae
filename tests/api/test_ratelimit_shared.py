"""With KEEL_REDIS_URL set, API processes share one bucket per tenant and resource class."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis

from keel.api.agents import StaticAgentCatalog
from keel.api.app import create_app
from keel.control.ratelimit import MemoryRateLimiter, RedisRateLimiter, make_rate_limiter
from keel.identity.keys import create_key
from keel.settings import RateLimitSetting
from keel.store.database import Database
from tests.api.conftest import assert_problem, client_for, make_settings
from tests.conftest import REDIS_TEST_URL


def test_the_backend_is_chosen_from_settings(tmp_path: Any) -> None:
    assert isinstance(make_rate_limiter(make_settings(tmp_path)), MemoryRateLimiter)
    redis_backed = make_rate_limiter(make_settings(tmp_path, redis_url=REDIS_TEST_URL))
    assert isinstance(redis_backed, RedisRateLimiter)


@pytest.mark.redis
async def test_two_api_processes_share_one_redis_bucket(sqlite_db: Database, tmp_path: Any) -> None:
    tight = RateLimitSetting(capacity=10, refill_per_second=0.001)
    settings = make_settings(
        tmp_path,
        redis_url=REDIS_TEST_URL,
        rate_limits={"turns": tight, "runs": tight, "reads": tight, "writes": tight},
    )
    apps = [create_app(settings, sqlite_db, agents=StaticAgentCatalog(["rune"])) for _ in range(2)]
    tenant = f"t-{uuid.uuid4().hex[:12]}"  # a fresh bucket key in the shared Redis
    headers = {"Authorization": f"Bearer {create_key(sqlite_db, tenant, 'anna').secret}"}
    try:
        async with client_for(apps[0]) as a, client_for(apps[1]) as b:
            responses = await asyncio.gather(
                *[(a if i % 2 else b).get("/v1/conversations", headers=headers) for i in range(30)]
            )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] * 10 + [429] * 20
        limited = next(r for r in responses if r.status_code == 429)
        assert_problem(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1
    finally:
        for app in apps:
            await app.state.rate_limiter.close()
        cleaner = Redis.from_url(REDIS_TEST_URL)
        await cleaner.delete(*[f"keel:rl:{cls}:{tenant}" for cls in ("reads", "writes")])
        await cleaner.aclose()

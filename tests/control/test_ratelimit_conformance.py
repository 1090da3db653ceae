"""The conformance suite every `RateLimiter` backend passes (memory and Redis).

Time is a hand-moved clock injected into both backends, so refill is tested without
waiting; one Redis test at the end exercises the server-clock path for real.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from keel.control.ratelimit import (
    Decision,
    MemoryRateLimiter,
    RateKey,
    RateLimiter,
    RateLimitPolicy,
    RedisRateLimiter,
)
from keel.errors import InvalidInput
from keel.settings import RateLimitSetting
from tests.conftest import REDIS_TEST_URL


class ManualClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


POLICY = RateLimitPolicy(
    {
        "turns": RateLimitSetting(capacity=5, refill_per_second=2),
        "reads": RateLimitSetting(capacity=50, refill_per_second=10),
    },
    {"vip": {"turns": RateLimitSetting(capacity=10, refill_per_second=2)}},
)

LimiterFactory = Callable[[], RateLimiter]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def make_limiter(
    request: pytest.FixtureRequest, clock: ManualClock
) -> AsyncIterator[LimiterFactory]:
    """Builds limiters that share one bucket space (one prefix / one process state)."""
    if request.param == "memory":
        shared = MemoryRateLimiter(POLICY, clock=clock)
        yield lambda: shared
        return
    prefix = f"keel:test:{uuid.uuid4().hex}:"
    clients: list[Redis] = []

    def build() -> RateLimiter:
        client = Redis.from_url(REDIS_TEST_URL)
        clients.append(client)
        return RedisRateLimiter(client, POLICY, prefix=prefix, clock=clock)

    yield build
    if clients:
        keys = [k async for k in clients[0].scan_iter(match=prefix + "*")]
        if keys:
            await clients[0].delete(*keys)
    for c in clients:
        await c.aclose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def drain(limiter: RateLimiter, key: RateKey, n: int) -> list[Decision]:
    return [await limiter.acquire(key) for _ in range(n)]


async def test_a_full_bucket_admits_a_burst_of_exactly_its_capacity(
    make_limiter: LimiterFactory,
) -> None:
    limiter = make_limiter()
    decisions = await drain(limiter, RateKey("t1", "turns"), 6)
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]


async def test_tokens_refill_at_the_configured_rate(
    make_limiter: LimiterFactory, clock: ManualClock
) -> None:
    limiter = make_limiter()
    key = RateKey("t1", "turns")
    await drain(limiter, key, 5)
    clock.advance(1.0)  # 2 tokens/s
    decisions = await drain(limiter, key, 3)
    assert [d.allowed for d in decisions] == [True, True, False]
    clock.advance(100.0)  # never beyond capacity
    decisions = await drain(limiter, key, 6)
    assert [d.allowed for d in decisions] == [True] * 5 + [False]


async def test_retry_after_is_exactly_when_the_next_token_exists(
    make_limiter: LimiterFactory, clock: ManualClock
) -> None:
    limiter = make_limiter()
    key = RateKey("t1", "turns")
    await drain(limiter, key, 5)
    denied = await limiter.acquire(key)
    assert not denied.allowed
    assert denied.retry_after == pytest.approx(0.5)
    clock.advance(denied.retry_after - 0.01)
    assert not (await limiter.acquire(key)).allowed
    clock.advance(0.01)
    assert (await limiter.acquire(key)).allowed


async def test_a_denied_acquire_takes_nothing_and_a_cost_is_all_or_nothing(
    make_limiter: LimiterFactory, clock: ManualClock
) -> None:
    limiter = make_limiter()
    key = RateKey("t1", "turns")
    assert (await limiter.acquire(key, cost=4)).allowed
    denied = await limiter.acquire(key, cost=3)
    assert not denied.allowed
    assert denied.retry_after == pytest.approx(1.0)  # 1 token left, 2 more at 2/s
    assert (await limiter.acquire(key, cost=1)).allowed


async def test_keys_are_independent_across_tenants_and_resource_classes(
    make_limiter: LimiterFactory,
) -> None:
    limiter = make_limiter()
    await drain(limiter, RateKey("t1", "turns"), 5)
    assert not (await limiter.acquire(RateKey("t1", "turns"))).allowed
    assert (await limiter.acquire(RateKey("t2", "turns"))).allowed
    assert (await limiter.acquire(RateKey("t1", "reads"))).allowed


async def test_a_per_tenant_override_replaces_the_class_default(
    make_limiter: LimiterFactory,
) -> None:
    limiter = make_limiter()
    decisions = await drain(limiter, RateKey("vip", "turns"), 11)
    assert sum(d.allowed for d in decisions) == 10


async def test_concurrent_acquires_never_over_admit(make_limiter: LimiterFactory) -> None:
    key = RateKey("t1", "reads")
    limiters = [make_limiter(), make_limiter()]  # Redis: two separate client connections
    calls: list[Awaitable[Decision]] = [limiters[i % 2].acquire(key) for i in range(200)]
    decisions = await asyncio.gather(*calls)
    assert sum(d.allowed for d in decisions) == 50
    assert all(d.retry_after > 0 for d in decisions if not d.allowed)


async def test_a_cost_above_capacity_is_refused_as_invalid(make_limiter: LimiterFactory) -> None:
    limiter = make_limiter()
    with pytest.raises(InvalidInput):
        await limiter.acquire(RateKey("t1", "turns"), cost=6)
    with pytest.raises(InvalidInput):
        await limiter.acquire(RateKey("t1", "unknown-class"))


@pytest.mark.redis
async def test_redis_server_clock_refills_for_real() -> None:
    """No injected clock: the Lua script reads Redis TIME. Waits ~50 ms of real time."""
    policy = RateLimitPolicy({"turns": RateLimitSetting(capacity=2, refill_per_second=20)})
    client = Redis.from_url(REDIS_TEST_URL)
    prefix = f"keel:test:{uuid.uuid4().hex}:"
    limiter = RedisRateLimiter(client, policy, prefix=prefix)
    try:
        key = RateKey("t1", "turns")
        assert [d.allowed for d in await drain(limiter, key, 3)] == [True, True, False]
        denied = await limiter.acquire(key)
        assert 0 < denied.retry_after <= 0.05
        await asyncio.sleep(denied.retry_after + 0.01)
        assert (await limiter.acquire(key)).allowed
    finally:
        await client.delete(prefix + "turns:t1")
        await client.aclose()

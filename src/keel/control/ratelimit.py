"""Token-bucket rate limits per (tenant, resource class), behind one `RateLimiter` Protocol.

Two backends pass the same conformance suite (`tests/control/test_ratelimit_conformance.py`):

- `MemoryRateLimiter`: in process, the embedded default; exact for one API process.
- `RedisRateLimiter`: one atomic Lua script per acquire, timed by the Redis server's clock,
  so any number of API processes share one bucket per key.

A bucket holds at most `capacity` tokens (the burst) and refills continuously at
`refill_per_second`. An acquire that cannot be paid in full takes nothing and says how long
until it could (`retry_after`), so a denied caller never drains the bucket further.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from keel.errors import InvalidInput
from keel.settings import RateLimitSetting, Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

Clock = Callable[[], float]
"""Seconds as a float; monotonic in production, a hand-moved value in tests."""

RESOURCE_CLASSES: tuple[str, ...] = ("turns", "runs", "reads", "writes")


@dataclass(frozen=True)
class RateKey:
    """What a bucket is for: one tenant's use of one resource class."""

    tenant_id: str
    resource: str

    def __str__(self) -> str:
        return f"{self.resource}:{self.tenant_id}"


@dataclass(frozen=True)
class Decision:
    """The answer to one acquire. `retry_after` is 0 when allowed; `remaining` is whole tokens."""

    allowed: bool
    retry_after: float
    remaining: int


class RateLimitPolicy:
    """Resolves a `RateKey` to its bucket size: per-tenant override, else the class default."""

    def __init__(
        self,
        defaults: dict[str, RateLimitSetting],
        tenants: dict[str, dict[str, RateLimitSetting]] | None = None,
    ) -> None:
        self._defaults = dict(defaults)
        self._tenants = {t: dict(v) for t, v in (tenants or {}).items()}

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimitPolicy:
        return cls(settings.rate_limits, settings.rate_limit_tenants)

    def limit_for(self, key: RateKey) -> RateLimitSetting:
        override = self._tenants.get(key.tenant_id, {}).get(key.resource)
        if override is not None:
            return override
        limit = self._defaults.get(key.resource)
        if limit is None:
            raise InvalidInput(f"no rate limit configured for {key.resource!r}", field="resource")
        return limit


class RateLimiter(Protocol):
    """Takes `cost` tokens from the bucket for `key`, all or nothing."""

    async def acquire(self, key: RateKey, cost: float = 1) -> Decision: ...

    async def close(self) -> None: ...


def _check_cost(cost: float, limit: RateLimitSetting) -> None:
    if cost <= 0:
        raise InvalidInput("cost must be positive", field="cost")
    if cost > limit.capacity:
        raise InvalidInput(
            f"cost {cost} exceeds the bucket capacity {limit.capacity}", field="cost"
        )


def _refill(tokens: float, last: float, now: float, limit: RateLimitSetting) -> tuple[float, float]:
    elapsed = max(0.0, now - last)
    return min(limit.capacity, tokens + elapsed * limit.refill_per_second), max(last, now)


class MemoryRateLimiter:
    """In-process buckets. Exact under concurrency (one lock); not shared between processes."""

    def __init__(self, policy: RateLimitPolicy, clock: Clock = time.monotonic) -> None:
        self._policy = policy
        self._clock = clock
        self._buckets: dict[RateKey, tuple[float, float]] = {}
        self._lock = threading.Lock()

    async def acquire(self, key: RateKey, cost: float = 1) -> Decision:
        limit = self._policy.limit_for(key)
        _check_cost(cost, limit)
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(key, (limit.capacity, now))
            tokens, last = _refill(tokens, last, now, limit)
            if tokens >= cost:
                tokens -= cost
                self._buckets[key] = (tokens, last)
                return Decision(True, 0.0, math.floor(tokens))
            self._buckets[key] = (tokens, last)
            return Decision(False, (cost - tokens) / limit.refill_per_second, math.floor(tokens))

    async def close(self) -> None:
        return None


# KEYS[1] bucket hash; ARGV: capacity, refill/s, cost, now (seconds; "" = Redis server TIME).
# Returns {allowed 0/1, retry_after as string, remaining tokens as string}: Lua numbers
# become integers on the way out, so fractions travel as strings.
_ACQUIRE_LUA = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now
if ARGV[4] == "" then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[4])
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
if now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate)
  ts = now
end
local allowed = 0
local retry_after = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  retry_after = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.17g', ts))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity / rate) * 2000) + 1000)
return {allowed, string.format('%.17g', retry_after), string.format('%.17g', tokens)}
"""


class RedisRateLimiter:
    """Buckets in Redis, shared by every process using the same `prefix`.

    Time comes from the Redis server (`TIME` inside the script), so API hosts with skewed
    clocks still agree. `clock` replaces it for tests that must not wait on real time.
    """

    def __init__(
        self,
        client: Redis,
        policy: RateLimitPolicy,
        *,
        prefix: str = "keel:rl:",
        clock: Clock | None = None,
        owns_client: bool = False,
    ) -> None:
        self._client = client
        self._policy = policy
        self._prefix = prefix
        self._clock = clock
        self._owns_client = owns_client
        self._script = client.register_script(_ACQUIRE_LUA)

    @classmethod
    def from_url(
        cls, url: str, policy: RateLimitPolicy, *, prefix: str = "keel:rl:"
    ) -> RedisRateLimiter:
        from redis.asyncio import Redis

        return cls(Redis.from_url(url), policy, prefix=prefix, owns_client=True)

    async def acquire(self, key: RateKey, cost: float = 1) -> Decision:
        limit = self._policy.limit_for(key)
        _check_cost(cost, limit)
        now = "" if self._clock is None else repr(self._clock())
        raw = await self._script(
            keys=[self._prefix + str(key)],
            args=[repr(limit.capacity), repr(limit.refill_per_second), repr(float(cost)), now],
        )
        allowed, retry_after, tokens = raw
        return Decision(bool(int(allowed)), float(retry_after), math.floor(float(tokens)))

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def make_rate_limiter(settings: Settings) -> RateLimiter:
    """Redis when `KEEL_REDIS_URL` is set (several API processes), memory otherwise."""
    policy = RateLimitPolicy.from_settings(settings)
    if settings.redis_url:
        return RedisRateLimiter.from_url(settings.redis_url, policy)
    return MemoryRateLimiter(policy)

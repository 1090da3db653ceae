"""When and how long the client waits before trying a request again.

Retried: connection failures, and the statuses in `statuses` (429 and 5xx by default). A POST
always carries an `Idempotency-Key` (generated once per call, reused on every attempt), so
retrying it never runs anything twice; a DELETE is retried only when the request cannot
have reached the server (the connection was never made). `Retry-After` (seconds or an HTTP
date) is honoured up to `max_retry_after`; beyond it the error is raised at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` in all (1 = no retry); exponential backoff with full jitter."""

    attempts: int = 4
    backoff: float = 0.25
    max_backoff: float = 8.0
    max_retry_after: float = 60.0
    statuses: frozenset[int] = field(default_factory=lambda: frozenset({429, 500, 502, 503, 504}))

    def can_retry(self, method: str, error: httpx.TransportError) -> bool:
        if method.upper() == "DELETE":
            return isinstance(error, NOT_SENT)
        return True

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt number ATTEMPT+1 (ATTEMPT counts from 1)."""
        if retry_after is not None:
            return retry_after
        ceiling = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


def retry_after(response: httpx.Response) -> float | None:
    """The response's `Retry-After` in seconds, or None."""
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return float(raw)
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())

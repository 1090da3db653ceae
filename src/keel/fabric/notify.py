"""Live notification that a run has new events, so a stream can follow it without polling hard.

A notification is only a hint: the database is the truth. A follower reads events after its
last seq, and when there are none waits for a hint *or a timeout*, then reads again — so a
lost hint costs latency, never an event.

Backends (chosen from settings, see `make_notifier`):
- `LocalNotifier`: in-process fan-out (the embedded default: API and worker in one process).
- `PostgresNotifier`: `pg_notify` inside the writing transaction (delivered only if it
  commits) plus a `LISTEN` thread per process.
- `RedisNotifier`: publish after commit on a Redis channel plus a subscriber thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.orm import Session

CHANNEL = "keel_run_events"


class Notifier(Protocol):
    def in_transaction(self, session: Session, run_id: str) -> None:
        """Called inside the transaction that wrote events (for transactional backends)."""

    def published(self, run_id: str) -> None:
        """Called after that transaction committed."""

    async def wait(self, run_id: str, timeout: float) -> bool:
        """Wait until RUN_ID may have new events or TIMEOUT passes; True when notified."""

    def listen(self, run_id: str) -> AbstractAsyncContextManager[Listener]:
        """Subscribe *before* reading, then wait: a change committed between the read and the
        wait is not missed (it wakes the next `Listener.wait` at once)."""

    def close(self) -> None: ...


class Listener:
    """A subscription to one run's notifications (see `Notifier.listen`)."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.event = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        """True when notified since the last wait (or since subscribing); False on timeout."""
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
        except TimeoutError:
            return False
        self.event.clear()
        return True


class LocalNotifier:
    """Wakes waiters in this process, whatever thread or event loop they wait on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = (
            defaultdict(set)
        )

    def in_transaction(self, session: Session, run_id: str) -> None:
        return None

    def published(self, run_id: str) -> None:
        self.wake(run_id)

    def wake(self, run_id: str) -> None:
        with self._lock:
            waiters = list(self._waiters.get(run_id, ()))
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # the waiter's loop has closed
                loop.call_soon_threadsafe(event.set)

    @asynccontextmanager
    async def listen(self, run_id: str) -> AsyncIterator[Listener]:
        listener = Listener()
        entry = (listener.loop, listener.event)
        with self._lock:
            self._waiters[run_id].add(entry)
        try:
            yield listener
        finally:
            with self._lock:
                waiters = self._waiters.get(run_id)
                if waiters is not None:
                    waiters.discard(entry)
                    if not waiters:
                        del self._waiters[run_id]

    async def wait(self, run_id: str, timeout: float) -> bool:
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters[run_id].add(entry)
        try:
            await asyncio.wait_for(entry[1].wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                waiters = self._waiters.get(run_id)
                if waiters is not None:
                    waiters.discard(entry)
                    if not waiters:
                        del self._waiters[run_id]

    def close(self) -> None:
        return None


class PostgresNotifier(LocalNotifier):
    """`pg_notify` in the writing transaction; one LISTEN connection per process."""

    def __init__(self, url: str) -> None:
        super().__init__()
        import psycopg

        self._url = url.replace("postgresql+psycopg://", "postgresql://")
        self._stop = threading.Event()
        self._conn = psycopg.connect(self._url, autocommit=True)
        self._conn.execute(f"LISTEN {CHANNEL}")
        self._thread = threading.Thread(target=self._listen, name="keel-pg-listen", daemon=True)
        self._thread.start()

    def in_transaction(self, session: Session, run_id: str) -> None:
        session.execute(
            text("SELECT pg_notify(:channel, :run)"), {"channel": CHANNEL, "run": run_id}
        )

    def published(self, run_id: str) -> None:
        return None  # delivered by PostgreSQL on commit, to this process too

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                for note in self._conn.notifies(timeout=0.5, stop_after=None):
                    self.wake(note.payload)
            except Exception:
                if self._stop.is_set():
                    return
                self._stop.wait(0.5)

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            self._conn.close()
        self._thread.join(timeout=2)


class RedisNotifier(LocalNotifier):
    """Publish after commit on a Redis channel; a subscriber thread wakes local waiters."""

    def __init__(self, url: str) -> None:
        super().__init__()
        import redis

        self._client: Any = redis.Redis.from_url(url)
        self._pubsub: Any = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        self._pubsub.subscribe(CHANNEL)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="keel-redis-sub", daemon=True)
        self._thread.start()

    def published(self, run_id: str) -> None:
        try:
            self._client.publish(CHANNEL, run_id)
        except Exception:
            self.wake(run_id)  # Redis down: local followers still wake; others poll

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                message = self._pubsub.get_message(timeout=0.5)
            except Exception:
                self._stop.wait(0.5)
                continue
            if message and message.get("type") == "message":
                data = message["data"]
                self.wake(data.decode() if isinstance(data, bytes) else str(data))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        with contextlib.suppress(Exception):
            self._pubsub.close()
            self._client.close()


def make_notifier(kind: str, database_url: str, redis_url: str | None) -> Notifier:
    """`auto` picks Redis when configured, PostgreSQL LISTEN/NOTIFY on PostgreSQL, else local."""
    if kind == "auto":
        kind = (
            "redis"
            if redis_url
            else "postgres"
            if database_url.startswith("postgresql")
            else "local"
        )
    if kind == "redis":
        if not redis_url:
            raise ValueError("KEEL_EVENT_NOTIFIER=redis needs KEEL_REDIS_URL")
        return RedisNotifier(redis_url)
    if kind == "postgres":
        return PostgresNotifier(database_url)
    return LocalNotifier()

"""Notifier conformance: every backend wakes a follower on a committed change, across threads,
and lets it time out otherwise."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from keel.fabric.notify import LocalNotifier, Notifier, PostgresNotifier, RedisNotifier
from keel.store.database import Database
from tests.conftest import REDIS_TEST_URL


@pytest.fixture(
    params=[
        "local",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
def backend(request: pytest.FixtureRequest) -> Iterator[tuple[Notifier, Database | None]]:
    if request.param == "local":
        yield LocalNotifier(), None
        return
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_database_url")
        db = Database(url)
        notifier: Notifier = PostgresNotifier(url)
        yield notifier, db
        notifier.close()
        db.dispose()
        return
    notifier = RedisNotifier(REDIS_TEST_URL)
    yield notifier, None
    notifier.close()


def _publish(notifier: Notifier, db: Database | None, run_id: str) -> None:
    if db is None:
        notifier.published(run_id)
        return
    with db.transaction() as s:
        notifier.in_transaction(s, run_id)
    notifier.published(run_id)


async def test_a_commit_wakes_a_follower_waiting_on_another_thread(
    backend: tuple[Notifier, Database | None],
) -> None:
    notifier, db = backend
    waiter = asyncio.create_task(notifier.wait("run_A", timeout=10))
    await asyncio.sleep(0.05)  # the waiter is registered
    threading.Thread(target=_publish, args=(notifier, db, "run_A")).start()
    assert await waiter is True


async def test_another_runs_change_does_not_wake_the_follower(
    backend: tuple[Notifier, Database | None],
) -> None:
    notifier, db = backend
    waiter = asyncio.create_task(notifier.wait("run_B", timeout=0.5))
    await asyncio.sleep(0.05)
    _publish(notifier, db, "run_C")
    assert await waiter is False


async def test_a_rolled_back_change_notifies_nobody_on_transactional_backends(
    backend: tuple[Notifier, Database | None],
) -> None:
    notifier, db = backend
    if db is None:
        pytest.skip("only PostgreSQL delivers notifications transactionally")
    waiter = asyncio.create_task(notifier.wait("run_D", timeout=0.7))
    await asyncio.sleep(0.05)
    with pytest.raises(RuntimeError), db.transaction() as s:
        notifier.in_transaction(s, "run_D")
        raise RuntimeError("abort")
    assert await waiter is False


async def test_a_change_between_read_and_wait_is_not_missed(
    backend: tuple[Notifier, Database | None],
) -> None:
    """Subscribe, read, then wait: a commit that lands after the read but before the wait
    still wakes the wait at once (no poll timeout)."""
    notifier, db = backend
    async with notifier.listen("run_E") as listener:
        await asyncio.to_thread(_publish, notifier, db, "run_E")  # lands "between read and wait"
        await asyncio.sleep(0.2)  # a transactional backend delivers asynchronously
        assert await listener.wait(timeout=5) is True
        assert await listener.wait(timeout=0.2) is False  # one notification, one wake

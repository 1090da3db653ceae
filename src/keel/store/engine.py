"""One engine factory for SQLite (embedded default, WAL) and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def _sqlite_path(url: str) -> Path | None:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == "sqlite:///:memory:":
        return None
    return Path(url[len(prefix) :])


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN IMMEDIATE", "CREATE", "DROP", "ALTER")
_HELD = "keel_write_lock"
WRITE_LOCK_TIMEOUT = 30.0


class WriteLock:
    """One writer at a time per SQLite file *within this process*, queued in Python.

    SQLite allows one writer; a second one waits in SQLite's busy handler, which sleeps in
    growing steps (up to 100 ms) — under a handful of concurrent writers that sleep, not the
    write, is the latency. Taking a Python lock at a transaction's first write statement and
    releasing it at commit or rollback makes writers queue and wake at once. Reads never take
    it. Other processes still meet SQLite's own lock (and its busy timeout)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def install(self, engine: Engine) -> None:
        @event.listens_for(engine, "before_cursor_execute")
        def _before(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if conn.info.get(_HELD) or not statement.lstrip()[:15].upper().startswith(_WRITES):
                return
            if not self._lock.acquire(timeout=WRITE_LOCK_TIMEOUT):
                raise TimeoutError(f"no SQLite write slot within {WRITE_LOCK_TIMEOUT:g} s")
            conn.info[_HELD] = True

        def _release(conn: Any) -> None:
            if conn.info.pop(_HELD, False):
                self._lock.release()

        event.listen(engine, "commit", _release)
        event.listen(engine, "rollback", _release)


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for `url`. SQLite files get WAL, synchronous=NORMAL (a process crash loses
    nothing; a power loss may lose the last commits), foreign keys, IMMEDIATE write
    transactions and a busy timeout, so the API, the worker and DBOS share one file without
    "database is locked"."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30}
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # As DBOS's own SQLite engine does (it shares this engine): writers take the
            # lock when they start writing, so concurrent writers queue instead of failing.
            dbapi_conn.isolation_level = "IMMEDIATE"
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        WriteLock().install(engine)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session

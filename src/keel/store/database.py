"""`Database`: an engine plus a session factory, built from a URL (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from keel.settings import Settings
from keel.store.engine import make_engine, make_sessionmaker


class Database:
    """The storage handle every plane receives. Build one per process and pass it down."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        self.sessions: sessionmaker[Session] = make_sessionmaker(self.engine)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(settings.resolved_database_url)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self, *, lock: bool = False) -> Iterator[Session]:
        """A session that commits on success and rolls back on any error.

        `lock=True` is for read-then-write transactions that must see the state they
        change: on SQLite it takes the database write lock before the first read
        (`BEGIN IMMEDIATE`); on PostgreSQL the caller locks the rows it reads
        (`with_for_update()`), which this flag does not do for it."""
        with self.sessions() as session, session.begin():
            if lock and self.is_sqlite:
                session.connection().exec_driver_sql("BEGIN IMMEDIATE")
            yield session

    def upgrade(self) -> None:
        from keel.store import migrate

        migrate.upgrade(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

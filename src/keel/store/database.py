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
    def transaction(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any error."""
        with self.sessions() as session, session.begin():
            yield session

    def upgrade(self) -> None:
        from keel.store import migrate

        migrate.upgrade(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

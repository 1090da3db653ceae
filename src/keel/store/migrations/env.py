"""Alembic environment: the engine comes from `keel.store.migrate` (never from a URL in an ini)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from keel.store.tables import Base

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("run migrations through keel.store.migrate (keel db upgrade)")

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()

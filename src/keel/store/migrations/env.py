"""Alembic environment: the engine comes from `keel.store.migrate` (never from a URL in an ini)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from keel.store.tables import Base

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("run migrations through keel.store.migrate (keel db upgrade)")


def include_name(name: str | None, type_: str, _parent: object) -> bool:
    """Only Keel's own tables: DBOS keeps its system tables in the same database."""
    return type_ != "table" or name in Base.metadata.tables


with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_name=include_name,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()

from __future__ import annotations

from sqlalchemy import inspect

from keel.store import migrate
from keel.store.database import Database
from keel.store.tables import Base


def test_migrations_run_up_and_down_and_match_the_tables(database_url: str) -> None:
    database = Database(database_url)
    try:
        migrate.upgrade(database.engine)
        assert migrate.is_up_to_date(database.engine)
        tables = set(inspect(database.engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        migrate.downgrade(database.engine)
        assert set(inspect(database.engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(database.engine)
        assert migrate.is_up_to_date(database.engine)
    finally:
        database.dispose()


def test_models_and_migrations_do_not_drift(database_url: str) -> None:
    """Autogenerate against a migrated database finds nothing to add: tables.py == migrations."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    database = Database(database_url)
    try:
        migrate.upgrade(database.engine)
        with database.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": False})
            diff = compare_metadata(ctx, Base.metadata)
        assert diff == []
    finally:
        database.dispose()


def test_concurrent_sqlite_writers_queue_instead_of_failing(sqlite_db: Database) -> None:
    """Many threads writing at once through one engine: every write lands, none is lost."""
    from concurrent.futures import ThreadPoolExecutor

    from keel.identity.keys import ensure_tenant
    from keel.store.tables import Tenant

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda i: ensure_tenant(sqlite_db, f"t{i}"), range(200)))
    with sqlite_db.transaction() as s:
        assert s.query(Tenant).count() == 200

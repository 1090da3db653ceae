"""Shared fixtures: real SQLite and PostgreSQL databases, no real model requests.

PostgreSQL tests get a fresh database of their own (created and dropped here), so
test runs never share state with each other or with a developer's data.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pydantic_ai import models

from keel.settings import Settings
from keel.store.database import Database

if TYPE_CHECKING:
    from keel.fabric.service import Fabric
    from keel.identity.principal import Principal

models.ALLOW_MODEL_REQUESTS = False

PG_ADMIN_URL = os.environ.get(
    "KEEL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_TEST_URL = os.environ.get("KEEL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _pg_url(dbname: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + dbname


@pytest.fixture
def pg_database_url() -> Iterator[str]:
    """A brand-new PostgreSQL database, dropped after the test."""
    from sqlalchemy import create_engine, text

    name = f"keel_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield _pg_url(name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A PostgreSQL database migrated once per session (Keel's tables and DBOS's), cloned by
    `migrated_database_url` — creating and migrating a database per test costs seconds."""
    from dbos import DBOS
    from sqlalchemy import create_engine, text

    name = f"keel_tmpl_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        database = Database(_pg_url(name))
        database.upgrade()
        database.dispose()
        DBOS.migrate(_pg_url(name), schema="dbos")
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_migrated_url(pg_template: str) -> Iterator[str]:
    """A fresh PostgreSQL database already at the newest schema, dropped after the test."""
    from sqlalchemy import create_engine, text

    name = f"keel_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    try:
        yield _pg_url(name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def migrated_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Parametrises a test over both backends, with the schema already migrated on PostgreSQL
    (SQLite migrates in milliseconds, so it starts empty)."""
    if request.param == "sqlite":
        return f"sqlite:///{(tmp_path / 'keel.db').as_posix()}"
    url: str = request.getfixturevalue("pg_migrated_url")
    return url


@pytest.fixture
def sqlite_database_url(tmp_path: Path) -> str:
    return f"sqlite:///{(tmp_path / 'keel.db').as_posix()}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Parametrises a test over both backends."""
    if request.param == "sqlite":
        return f"sqlite:///{(tmp_path / 'keel.db').as_posix()}"
    url: str = request.getfixturevalue("pg_database_url")
    return url


@pytest.fixture
def db(migrated_database_url: str) -> Iterator[Database]:
    """A migrated database on each backend."""
    database = Database(migrated_database_url)
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(sqlite_database_url: str) -> Iterator[Database]:
    database = Database(sqlite_database_url)
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded-default settings with data under a temporary home."""
    return Settings(env="test", home=tmp_path / ".keel", _env_file=None)  # type: ignore[call-arg]


EXAMPLE_AGENTS = Path(__file__).resolve().parents[1] / "examples" / "agents"
TEST_AGENTS = Path(__file__).resolve().parent / "fabric" / "agents"


@pytest.fixture
def fabric_settings(tmp_path: Path, migrated_database_url: str) -> Settings:
    """Settings for a fabric on each backend, serving the examples and the test agents."""
    return Settings(  # type: ignore[call-arg]
        env="test",
        home=tmp_path / "home",
        database_url=migrated_database_url,
        agents_dirs=[EXAMPLE_AGENTS, TEST_AGENTS],
        approval_ttl_seconds=3600,
        _env_file=None,
    )


@pytest.fixture
def fabric(fabric_settings: Settings) -> Iterator[Fabric]:
    """A running fabric (DBOS launched in this process) with tenants t1 and t2."""
    from keel.fabric.catalog import AgentCatalog
    from keel.fabric.service import Fabric
    from keel.identity.keys import ensure_tenant

    database = Database.from_settings(fabric_settings)
    database.upgrade()
    for tenant in ("t1", "t2"):
        ensure_tenant(database, tenant)
    fab = Fabric(fabric_settings, database, AgentCatalog.load(fabric_settings, database))
    fab.start(execute=True)
    try:
        yield fab
    finally:
        fab.stop()
        database.dispose()


@pytest.fixture
def alice() -> Principal:
    from keel.identity.principal import Principal

    return Principal(tenant_id="t1", user_id="alice", scopes=("*",))


@pytest.fixture
def mallory() -> Principal:
    from keel.identity.principal import Principal

    return Principal(tenant_id="t2", user_id="mallory", scopes=("*",))


logging.getLogger("dbos").setLevel(logging.ERROR)

"""A throwaway PostgreSQL database for one benchmark run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text


@contextmanager
def scratch_database(admin_url: str, *, optional: bool = False) -> Iterator[str | None]:
    """Create a fresh database next to ADMIN_URL's, yield its URL, drop it afterwards.

    OPTIONAL: when PostgreSQL cannot be reached, say so and yield None instead of raising
    (PostgreSQL is optional for a local run)."""
    name = f"keel_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        if not optional:
            raise
        print(f"postgresql: skipped ({type(exc).__name__}: {exc})")
        yield None
        return
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

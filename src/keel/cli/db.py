"""`keel db …`: schema migrations."""

from __future__ import annotations

import typer

from keel.settings import get_settings
from keel.store import migrate
from keel.store.database import Database

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    db = Database.from_settings(get_settings())
    migrate.upgrade(db.engine, revision)
    typer.echo(
        f"database at {migrate.current_revision(db.engine)} ({db.engine.url.render_as_string()})"
    )


@app.command()
def downgrade(revision: str = typer.Argument(..., help="Target revision, or 'base'.")) -> None:
    """Revert migrations down to REVISION."""
    db = Database.from_settings(get_settings())
    migrate.downgrade(db.engine, revision)
    typer.echo(f"database at {migrate.current_revision(db.engine)}")


@app.command()
def current() -> None:
    """Print the applied revision and the newest one."""
    db = Database.from_settings(get_settings())
    typer.echo(f"current: {migrate.current_revision(db.engine)}  head: {migrate.head_revision()}")

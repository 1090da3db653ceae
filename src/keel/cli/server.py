"""`keel up` (everything in one process on the embedded default) and `keel serve`."""

from __future__ import annotations

import os
import stat

import typer

from keel.identity.keys import create_key
from keel.settings import Settings, get_settings
from keel.store.database import Database

DEV_TENANT = "dev"


def _dev_api_key(settings: Settings, db: Database) -> str:
    """The development key, created once and kept (0600) under the data folder."""
    path = settings.home / "dev-api-key"
    if path.exists():
        return path.read_text().strip()
    created = create_key(db, DEV_TENANT, user_id="developer", name="keel up")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(created.secret + "\n")
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    return created.secret


def up(
    host: str | None = typer.Option(None, help="Bind address (default 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port (default 8000)."),
) -> None:
    """Run Keel in one process: migrate, then the API and a worker, on the embedded default."""
    import uvicorn

    from keel.api.app import create_app

    settings = get_settings()
    db = Database.from_settings(settings)
    typer.echo(f"keel: database {db.engine.url.render_as_string()} — migrating…")
    db.upgrade()
    key = _dev_api_key(settings, db) if settings.env != "production" else None
    app = create_app(settings, db)
    bind_host, bind_port = host or settings.host, port or settings.port
    typer.echo(f"keel: serving on http://{bind_host}:{bind_port}  (docs: /docs)")
    if key:
        typer.echo(f"keel: development API key (tenant '{DEV_TENANT}'): {key}")
    uvicorn.run(app, host=bind_host, port=bind_port, log_level=settings.log_level.lower())

"""`keel up` (API and worker in one process, the embedded default), `keel serve` (API only:
submits runs) and `keel worker` (executes runs)."""

from __future__ import annotations

import os
import signal
import stat
import threading

import typer

from keel.cli.runtime import DEV_TENANT, runtime
from keel.control.audit import key_change_recorder
from keel.control.ledger import Ledger
from keel.fabric.engine import Lane
from keel.identity.keys import create_key
from keel.settings import Settings, get_settings
from keel.store.database import Database

SHUTDOWN_GRACE_SECONDS = 5


def _dev_api_key(settings: Settings, db: Database) -> str:
    """The development key, created once and kept (0600) under the data folder."""
    path = settings.home / "dev-api-key"
    if path.exists():
        return path.read_text().strip()
    created = create_key(
        db, DEV_TENANT, user_id="developer", name="keel up",
        on_change=key_change_recorder(Ledger(db), "keel up"),
    )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(created.secret + "\n")
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    return created.secret


def _serve_api(execute: bool, host: str | None, port: int | None) -> None:
    import uvicorn

    from keel.api.app import create_app

    settings = get_settings()
    typer.echo(
        f"keel: database {Database.from_settings(settings).engine.url.render_as_string()} — migrating…"
    )
    with runtime(execute=execute, settings=settings) as rt:
        key = _dev_api_key(settings, rt.db) if settings.env != "production" else None
        app = create_app(settings, rt.db, fabric=rt.fabric)
        bind_host, bind_port = host or settings.host, port or settings.port
        agents = ", ".join(rt.catalog.names()) or "none"
        typer.echo(
            f"keel: agents {agents}; {'executing runs in this process' if execute else 'submit only'}"
        )
        typer.echo(f"keel: serving on http://{bind_host}:{bind_port}  (docs: /docs)")
        if key:
            typer.echo(f"keel: development API key (tenant '{DEV_TENANT}'): {key}")
        # event streams stay open while runs wait for approval: on shutdown, give them a few
        # seconds, then close them (clients resume with Last-Event-ID)
        uvicorn.run(
            app,
            host=bind_host,
            port=bind_port,
            log_level=settings.log_level.lower(),
            timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        )


def up(
    host: str | None = typer.Option(None, help="Bind address (default 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port (default 8000)."),
) -> None:
    """Everything in one process: migrate, deploy the agents, serve the API and execute runs."""
    _serve_api(True, host, port)


def serve(
    host: str | None = typer.Option(None, help="Bind address."),
    port: int | None = typer.Option(None, help="Port."),
) -> None:
    """The API only: runs are submitted here and executed by `keel worker` processes."""
    _serve_api(False, host, port)


def worker(
    worker_id: str | None = typer.Option(
        None,
        "--id",
        help="This worker's stable id (KEEL_WORKER_ID); restarts recover its unfinished runs.",
    ),
    lanes: list[Lane] | None = typer.Option(
        None,
        "--lane",
        help="Execute only runs queued on this lane (repeatable; default: every lane), e.g. "
        "dedicated batch workers beside interactive ones.",
    ),
) -> None:
    """Execute runs from the queues until stopped (SIGINT/SIGTERM)."""
    settings = get_settings()
    if worker_id:
        settings = settings.model_copy(update={"worker_id": worker_id})
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with runtime(execute=True, settings=settings, lanes=lanes) as rt:
        served = ", ".join(lane.value for lane in (lanes or list(Lane)))
        typer.echo(
            f"keel: worker {settings.worker_id} executing {', '.join(rt.catalog.names())} "
            f"(lanes: {served})",
            err=True,
        )
        stop.wait()
    typer.echo("keel: worker stopped", err=True)

"""The FastAPI app factory. Built from settings; no module-level app, nothing at import time."""

from __future__ import annotations

from fastapi import FastAPI

from keel import __version__
from keel.fabric.service import Fabric
from keel.settings import Settings
from keel.store.database import Database


def create_app(
    settings: Settings, db: Database | None = None, *, fabric: Fabric | None = None
) -> FastAPI:
    database = db or Database.from_settings(settings)
    app = FastAPI(title="Keel", version=__version__, openapi_url="/openapi.json")
    app.state.settings = settings
    app.state.db = database
    app.state.fabric = fabric

    @app.get("/healthz", tags=["health"], summary="Liveness")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app

"""A running fabric with the eval plane's delivery half installed (router, checks, rollout
monitor, shadow launcher, online sampling), serving the examples and the `pitch` test agent."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from keel.evals.delivery import EvalsDelivery, install_delivery
from keel.evals.fabric_runner import EVAL_TENANT
from keel.fabric.catalog import AgentCatalog
from keel.fabric.extensions import FabricExtensions
from keel.fabric.runs import RunView
from keel.fabric.service import Fabric
from keel.identity.keys import ensure_tenant
from keel.settings import Settings
from keel.store.database import Database
from tests.conftest import EXAMPLE_AGENTS

EVAL_AGENTS = Path(__file__).resolve().parent / "agents"


@dataclass
class Listened:
    """A run-end listener installed after the delivery's own: once it saw a run, every
    delivery listener has handled that run."""

    views: dict[str, RunView] = field(default_factory=dict)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, view: RunView) -> None:
        with self.cond:
            self.views[view.id] = view
            self.cond.notify_all()

    def wait(self, run_id: str, timeout: float = 30.0) -> RunView:
        with self.cond:
            if not self.cond.wait_for(lambda: run_id in self.views, timeout):
                raise TimeoutError(f"run {run_id} did not finish within {timeout} s")
            return self.views[run_id]


@dataclass
class Delivered:
    fabric: Fabric
    delivery: EvalsDelivery
    db: Database
    catalog: AgentCatalog
    listened: Listened
    settings: Settings


@pytest.fixture
def delivery_settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        env="test",
        home=tmp_path / "home",
        database_url=database_url,
        agents_dirs=[EXAMPLE_AGENTS, EVAL_AGENTS],
        _env_file=None,
    )


@pytest.fixture
def delivered(delivery_settings: Settings) -> Iterator[Delivered]:
    db = Database.from_settings(delivery_settings)
    db.upgrade()
    for tenant in ("t1", EVAL_TENANT):
        ensure_tenant(db, tenant)
    catalog = AgentCatalog.load(delivery_settings, db)
    extensions = FabricExtensions()
    delivery = install_delivery(extensions, db, catalog)
    listened = Listened()
    extensions.on_finished.append(listened)
    fabric = Fabric(delivery_settings, db, catalog, extensions=extensions)
    fabric.start(execute=True)
    try:
        yield Delivered(fabric, delivery, db, catalog, listened, delivery_settings)
    finally:
        fabric.stop()
        db.dispose()
